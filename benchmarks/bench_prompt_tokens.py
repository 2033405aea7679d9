"""Prompt tokens per LLM add: memvault vs mem0ai 2.2.1, same input, same tokenizer.

For every LoCoMo session (three dev conversations) both systems get the same
input: the session's messages as the new messages, and the ten most recent facts
known before the session (the dataset's own per-session observations, standing in
for previously extracted memories) as the existing memories. mem0 also gets what
its pipeline adds: its last 10 stored messages (here: the previous session's last
10 turns) and today's date. Prompts are built by each system's own code — mem0's in
a separate venv (benchmarks/setup_mem0_venv.sh) — and counted with one tokenizer.
Two granularities: one add per session, and one add per turn (how mem0's own
LoCoMo benchmark calls it).

Tokenizers (``--tokenizer``):

* ``cl100k`` (default; bpe-openai, tiktoken-compatible): system prompt + "\\n" + user
  payload, no chat template — what OpenAI's models would bill, less the few tokens of
  their message framing. Written to ``results/prompt_tokens.json``.
* ``qwen``: the real local model's own tokenizer (Qwen2.5-Coder-1.5B's GGUF, loaded
  with ``vocab_only`` by llama-cpp-python in the local server's venv: no server, no
  weights in memory). Each prompt is the ``[system, user]`` chat both systems send,
  rendered with the GGUF's own chat template (generation prompt included), so the
  template's fixed overhead is counted the same way for both and reported apart.
  Written to ``results/prompt_tokens_qwen.json``.

memvault may make a second call per add (the second pass: only the stated sentences its
first answer left uncovered, without the existing memories). Which sentences a model
drops depends on the model, so this reports the first call and an upper bound for the
second: every stated sentence of the add asked again (``memvault.llm.coverage``'s own
``statements``), and the two-call total against mem0's single call. With ``--measured``
(a real-model run of ``bench_llm_write_path.py``: its results JSON or its ``adds.jsonl``),
it also sets what the server counted for those sessions — both calls, real second pass —
against mem0's prompt for the same sessions (``--tokenizer qwen`` only: same tokenizer).

    .venv/bin/python benchmarks/bench_prompt_tokens.py [--tokenizer qwen]
        [--mem0-python PATH]   # default benchmarks/.work/mem0-venv/bin/python
        [--measured benchmarks/results/llm_write_path.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOCOMO = REPO.parent / "shared" / "data" / "locomo"
MEM0_PY = REPO / "benchmarks" / ".work" / "mem0-venv" / "bin" / "python"
RESULTS = {
    "cl100k": REPO / "benchmarks" / "results" / "prompt_tokens.json",
    "qwen": REPO / "benchmarks" / "results" / "prompt_tokens_qwen.json",
}

MEM0_SIDE = r"""
import json, sys
from mem0.configs.prompts import ADDITIVE_EXTRACTION_PROMPT, generate_additive_extraction_prompt
from mem0.memory.utils import parse_messages
out = []
for case in json.load(sys.stdin):
    user = generate_additive_extraction_prompt(
        existing_memories=[{"id": str(i), "text": t} for i, t in enumerate(case["existing"])],
        new_messages=parse_messages(case["messages"]),
        last_k_messages=case["last_k"],
    )
    out.append(user)
json.dump({"instruction": ADDITIVE_EXTRACTION_PROMPT, "users": out}, sys.stdout)
"""

# Runs in the local LLM server's venv (llama-cpp-python): counts tokens of chats rendered
# with the GGUF's chat template, and of bare texts. Input on stdin: {"model", "chats", "texts"}.
QWEN_SIDE = r"""
import json, sys
import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
job = json.load(sys.stdin)
llm = llama_cpp.Llama(model_path=job["model"], vocab_only=True, verbose=False)
template = llm.metadata.get("tokenizer.chat_template")
if not template:
    sys.exit("the GGUF carries no tokenizer.chat_template")
fmt = Jinja2ChatFormatter(
    template,
    eos_token=llm.detokenize([llm.token_eos()]).decode(),
    bos_token=llm.detokenize([llm.token_bos()]).decode(),
    add_generation_prompt=True,
)
def count(text):
    return len(llm.tokenize(text.encode(), add_bos=False, special=True))
chats = [
    count(fmt(messages=[{"role": "system", "content": s}, {"role": "user", "content": u}]).prompt)
    for s, u in job["chats"]
]
texts = [len(llm.tokenize(t.encode(), add_bos=False, special=False)) for t in job["texts"]]
json.dump({"chats": chats, "texts": texts}, sys.stdout)
"""


def cases() -> list[dict[str, Any]]:
    """One case per session and one per turn, with the same inputs for both systems."""
    from memvault.ingest_sources import parse_locomo_date

    out: list[dict[str, Any]] = []
    for path in sorted(LOCOMO.glob("*.json")):
        conv = json.loads(path.read_text())
        known: list[str] = []
        prev_turns: list[dict[str, Any]] = []
        s = 1
        while f"session_{s}" in conv:
            turns = [
                {"role": "user", "name": t["speaker"], "content": t["text"]}
                for t in conv[f"session_{s}"]
            ]
            date = parse_locomo_date(conv.get(f"session_{s}_date_time", "")) or ""
            base = {
                "existing": known[-10:],
                "last_k": [{"role": m["role"], "content": m["content"]} for m in prev_turns[-10:]],
                "date": date,
            }
            out.append(
                {**base, "kind": "session", "conv": path.stem, "session": s, "messages": turns}
            )
            for i, t in enumerate(turns):
                last = (prev_turns + turns[:i])[-10:]
                out.append(
                    {
                        **base,
                        "kind": "turn",
                        "messages": [t],
                        "last_k": [{"role": m["role"], "content": m["content"]} for m in last],
                    }
                )
            for facts in (conv.get(f"session_{s}_observation") or {}).values():
                known.extend(f[0] if isinstance(f, list) else str(f) for f in facts)
            prev_turns = turns
            s += 1
    return out


def memvault_prompts(case: dict[str, Any]) -> tuple[str, tuple[str, str] | None]:
    """memvault's first user payload, and its worst-case second-pass (system, user) or None.

    The second pass asks only about the stated sentences the first answer left uncovered;
    at worst that is every stated sentence (``statements``), built by the write path's own
    ``second_pass_prompt``. An add with no stated sentence can never make a second call.
    """
    from memvault.llm.coverage import statements
    from memvault.llm.prompts import Existing, build_extraction_input
    from memvault.write.second_pass import second_pass_prompt

    msgs = case["messages"]
    first = build_extraction_input(
        messages=[(m["name"], m["content"]) for m in msgs],
        existing=[Existing(str(i), t) for i, t in enumerate(case["existing"])],
        observed=case["date"],
    )
    said = statements([(m["role"], m["name"], m["content"]) for m in msgs])
    return first, (second_pass_prompt(said, case["date"], None, None) if said else None)


def mem0_side(python: Path, data: list[dict[str, Any]]) -> dict[str, Any]:
    """mem0's instruction and user payloads, built by mem0ai 2.2.1's own code in its venv."""
    if not python.exists():
        sys.exit(
            f"no mem0 venv python at {python}: run benchmarks/setup_mem0_venv.sh "
            "(mem0ai 2.2.1 in its own venv) or pass --mem0-python"
        )
    out = subprocess.run(
        [str(python), "-c", MEM0_SIDE],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        env={"MEM0_TELEMETRY": "False", "PATH": "/usr/bin:/bin"},
    )
    if out.returncode != 0:
        sys.exit(f"mem0's prompt code failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


Counter = Callable[[Sequence[tuple[str, str]], Sequence[str]], tuple[list[int], list[int]]]


def cl100k_counter() -> tuple[str, Counter]:
    """System + "\\n" + user with cl100k, no chat template (as in earlier runs)."""
    import bpe_openai

    enc = bpe_openai.get_encoding("cl100k_base")

    def count(
        chats: Sequence[tuple[str, str]], texts: Sequence[str]
    ) -> tuple[list[int], list[int]]:
        return (
            [len(enc.encode(s + "\n" + u)) for s, u in chats],
            [len(enc.encode(t)) for t in texts],
        )

    return "cl100k_base (bpe-openai); no chat template", count


def qwen_counter() -> tuple[str, Counter]:
    """The local model's GGUF tokenizer and chat template, in the server's venv."""
    sys.path.insert(0, str(REPO))
    from tools import local_llm

    paths = local_llm.Paths(
        local_llm.cache_dir(), os.environ.get("MEMVAULT_LLM_MODEL", local_llm.DEFAULT_MODEL)
    )
    for what, p in (("server python", paths.python), ("model", paths.model_file)):
        if not p.exists():
            sys.exit(f"no local LLM {what} at {p}: run `python tools/local_llm.py install`")

    def count(
        chats: Sequence[tuple[str, str]], texts: Sequence[str]
    ) -> tuple[list[int], list[int]]:
        job = {"model": str(paths.model_file), "chats": list(chats), "texts": list(texts)}
        out = subprocess.run(
            [str(paths.python), "-c", QWEN_SIDE],
            input=json.dumps(job),
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            sys.exit(f"counting with the GGUF tokenizer failed:\n{out.stderr[-2000:]}")
        got = json.loads(out.stdout)
        return got["chats"], got["texts"]

    name = f"{paths.spec.file_name} (llama-cpp-python, vocab_only), with its chat template"
    return name, count


def measured(
    path: Path, mem0_by_session: dict[tuple[str, int], int], per_estimate: float
) -> dict[str, Any]:
    """A real-model run's prompt tokens per add (all its calls) against mem0's, same sessions.

    Why: the second pass's real size depends on what the model dropped; the server's own
    count of both calls is the realistic figure. Its inputs differ slightly from this
    benchmark's (image captions in the turns; the memories the model itself extracted as
    the existing ones), so it is reported beside the like-for-like figures, not instead.

    A run with ``stop_repeats`` streams, and llama-cpp-python reports no usage in a stream:
    its prompt tokens are the client's estimate (characters / 4). ``per_estimate`` turns
    that into Qwen tokens: the tokenizer's count of this benchmark's own memvault prompts
    divided by the same estimate of them.
    """
    if not path.exists():
        sys.exit(f"--measured: no file at {path}")
    text = path.read_text()
    try:
        doc = json.loads(text)
        adds = doc["adds"] if isinstance(doc, dict) else doc
    except json.JSONDecodeError:
        adds = [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = [
        a
        for a in adds
        if isinstance(a, dict)
        and not a.get("error")
        and (str(a.get("conv")), a.get("session")) in mem0_by_session
    ]
    if not rows:
        sys.exit(f"--measured: no successful add of a known session in {path}")
    estimated = sum(a.get("estimated_calls", 0) for a in rows)
    calls = sum(a.get("calls", 1) for a in rows)
    if estimated not in (0, calls):
        sys.exit("--measured: a run mixing counted and estimated prompt tokens")
    raw = statistics.mean(a["prompt_tokens"] for a in rows)
    mine = raw * per_estimate if estimated else raw
    theirs = statistics.mean(mem0_by_session[(str(a["conv"]), a["session"])] for a in rows)
    out = {
        "source": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path),
        "adds": len(rows),
        "llm_calls_per_add": round(statistics.mean(a.get("calls", 1) for a in rows), 2),
        "memvault_mean_prompt_tokens_all_calls": round(mine, 1),
        "mem0_mean_prompt_tokens_same_sessions": round(theirs, 1),
        "ratio": round(mine / theirs, 3),
    }
    if estimated:
        out["memvault_prompt_tokens_estimated_chars_per_4"] = round(raw, 1)
        out["qwen_tokens_per_estimated_token"] = round(per_estimate, 3)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--tokenizer", choices=sorted(RESULTS), default="cl100k")
    ap.add_argument("--mem0-python", type=Path, default=MEM0_PY)
    ap.add_argument("--measured", type=Path, help="a real-model run's results (qwen only)")
    args = ap.parse_args(argv)
    if args.measured and args.tokenizer != "qwen":
        ap.error("--measured needs --tokenizer qwen (the server counted with that tokenizer)")

    from memvault.llm.client import CHARS_PER_TOKEN
    from memvault.llm.prompts import EXTRACTION_PROMPT

    tokenizer, count = qwen_counter() if args.tokenizer == "qwen" else cl100k_counter()
    data = cases()
    mem0 = mem0_side(args.mem0_python, data)
    mine = [memvault_prompts(case) for case in data]
    seconds = [(i, u) for i, (_, u) in enumerate(mine) if u is not None]
    chats = (
        [(EXTRACTION_PROMPT, first) for first, _ in mine]
        + list(second for _, second in seconds)
        + [(mem0["instruction"], u) for u in mem0["users"]]
        + [(EXTRACTION_PROMPT, ""), (mem0["instruction"], "")]
    )
    counted, texts = count(chats, [EXTRACTION_PROMPT, mem0["instruction"]])
    n, k = len(mine), len(seconds)
    mv_first = counted[:n]
    mv_second = [0] * n
    for (i, _), c in zip(seconds, counted[n : n + k], strict=True):
        mv_second[i] = c
    m0 = counted[n + k : n + k + n]
    mv_bare, m0_bare = counted[-2:]
    result: dict[str, Any] = {
        "tokenizer": tokenizer,
        "instruction_tokens": {"memvault": texts[0], "mem0_2_2_1": texts[1]},
        # An empty user turn: what the chat framing and the instruction cost on their own.
        "chat_with_empty_user_tokens": {"memvault": mv_bare, "mem0_2_2_1": m0_bare},
        "second_pass": "upper bound: every stated sentence of the add asked again",
    }
    for kind in ("session", "turn"):
        idx = [i for i, case in enumerate(data) if case["kind"] == kind]
        first = statistics.mean(mv_first[i] for i in idx)
        second = statistics.mean(mv_second[i] for i in idx)
        theirs = statistics.mean(m0[i] for i in idx)
        result[f"per_{kind}_add"] = {
            "adds": len(idx),
            "memvault_mean_prompt_tokens": round(first, 1),
            "mem0_mean_prompt_tokens": round(theirs, 1),
            "ratio": round(first / theirs, 3),
            "memvault_second_pass_max_mean_tokens": round(second, 1),
            "adds_that_can_make_a_second_call": sum(1 for i in idx if mv_second[i]),
            "memvault_two_calls_max_mean_tokens": round(first + second, 1),
            "ratio_two_calls_max": round((first + second) / theirs, 3),
        }
    sessions = [i for i, case in enumerate(data) if case["kind"] == "session"]
    if args.measured:
        by_session = {(data[i]["conv"], data[i]["session"]): m0[i] for i in sessions}
        # the client's estimate of the same prompts (memvault.llm.client._Streamed)
        firsts = [(EXTRACTION_PROMPT, first) for first, _ in mine]
        est = sum(-(-(len(a) + len(b)) // CHARS_PER_TOKEN) for a, b in firsts + chats[n : n + k])
        per_estimate = (sum(mv_first) + sum(mv_second)) / est
        result["measured_real_model"] = measured(args.measured, by_session, per_estimate)
    result["sessions"] = [
        {
            "conv": data[i]["conv"],
            "session": data[i]["session"],
            "memvault_first": mv_first[i],
            "memvault_second_pass_max": mv_second[i],
            "mem0": m0[i],
        }
        for i in sessions
    ]
    out = RESULTS[args.tokenizer]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "sessions"}, indent=2))


if __name__ == "__main__":
    main()
