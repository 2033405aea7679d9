"""Prompt tokens per LLM add: memvault vs mem0ai 2.2.1, same input, same tokenizer.

For every LoCoMo session (three dev conversations) both systems get the same
input: the session's messages as the new messages, and the ten most recent facts
known before the session (the dataset's own per-session observations, standing in
for previously extracted memories) as the existing memories. mem0 also gets what
its pipeline adds: its last 10 stored messages (here: the previous session's last
10 turns) and today's date. Prompts are built by each system's own code — mem0's in
a separate venv (benchmarks/setup_mem0_venv.sh) — and counted with one tokenizer,
cl100k (bpe-openai, tiktoken-compatible). Two granularities: one add per session,
and one add per turn (how mem0's own LoCoMo benchmark calls it).

    .venv/bin/python benchmarks/bench_prompt_tokens.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCOMO = REPO.parent / "shared" / "data" / "locomo"
MEM0_PY = REPO / "benchmarks" / ".work" / "mem0-venv" / "bin" / "python"

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
    out.append(ADDITIVE_EXTRACTION_PROMPT + "\n" + user)
json.dump({"instruction": ADDITIVE_EXTRACTION_PROMPT, "prompts": out}, sys.stdout)
"""


def cases() -> list[dict]:
    """One case per session and one per turn, with the same inputs for both systems."""
    from memvault.ingest_sources import parse_locomo_date

    out = []
    for path in sorted(LOCOMO.glob("*.json")):
        conv = json.loads(path.read_text())
        known: list[str] = []
        prev_turns: list[dict] = []
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
            out.append({**base, "kind": "session", "messages": turns})
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


def main() -> None:
    import bpe_openai

    from memvault.llm.prompts import EXTRACTION_PROMPT, Existing, build_extraction_input

    if not MEM0_PY.exists():
        sys.exit("run benchmarks/setup_mem0_venv.sh first (mem0ai 2.2.1 in its own venv)")
    enc = bpe_openai.get_encoding("cl100k_base")
    data = cases()
    mem0 = json.loads(
        subprocess.run(
            [str(MEM0_PY), "-c", MEM0_SIDE],
            input=json.dumps(data),
            capture_output=True,
            text=True,
            check=True,
            env={"MEM0_TELEMETRY": "False", "PATH": "/usr/bin:/bin"},
        ).stdout
    )
    mem0_prompts = mem0["prompts"]
    rows: dict[str, dict[str, list[int]]] = {
        "session": {"mv": [], "m0": []},
        "turn": {"mv": [], "m0": []},
    }
    for case, m0 in zip(data, mem0_prompts, strict=True):
        user = build_extraction_input(
            messages=[(m["name"], m["content"]) for m in case["messages"]],
            existing=[Existing(str(i), t) for i, t in enumerate(case["existing"])],
            observed=case["date"],
        )
        rows[case["kind"]]["mv"].append(len(enc.encode(EXTRACTION_PROMPT + "\n" + user)))
        rows[case["kind"]]["m0"].append(len(enc.encode(m0)))
    result = {
        "tokenizer": "cl100k_base (bpe-openai)",
        "instruction_tokens": {
            "memvault": len(enc.encode(EXTRACTION_PROMPT)),
            "mem0_2_2_1": len(enc.encode(mem0["instruction"])),
        },
    }
    for kind, r in rows.items():
        mv, m0 = statistics.mean(r["mv"]), statistics.mean(r["m0"])
        result[f"per_{kind}_add"] = {
            "adds": len(r["mv"]),
            "memvault_mean_prompt_tokens": round(mv, 1),
            "mem0_mean_prompt_tokens": round(m0, 1),
            "ratio": round(mv / m0, 3),
        }
    out = REPO / "benchmarks" / "results" / "prompt_tokens.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
