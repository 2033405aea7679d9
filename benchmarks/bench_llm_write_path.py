"""The LLM write path with a real local model on LoCoMo dev conversations (issue 16).

Each session of each conversation is one ``add(messages, user_id=conv, infer=True,
timestamp=session date)``, as docs/write-path.md describes, against Qwen2.5-Coder-1.5B-Instruct
served by llama-cpp-python on 127.0.0.1 (``make llm``; the script starts and stops its own
server unless ``--base-url`` is given). Per add: prompt / completion tokens, LLM calls, seconds,
LLM errors. Per session: facts extracted, and their coverage of LoCoMo's own session
observations (an observation is covered when some fact extracted from that session has cosine
>= 0.5 with it, bundled MiniLM). Retrieval: evidence recall@10 of the QA questions whose
evidence lies in the sessions added, searching the extracted memories (each memory is linked
to the two turns of its session closest to it), beside the same figure for the raw turns
(one ``infer=False`` add per session, as in bench_locomo_recall.py).

``--mem0 N`` runs mem0ai 2.2.1 (benchmarks/.work/mem0-venv) on the first N sessions of the
first conversation with the same model (its own server, 16k context: mem0's prompt does not fit
in 4k) and the same MiniLM embedder, and reports tokens and seconds per add beside memvault's
for the same sessions.

    .venv/bin/python benchmarks/bench_llm_write_path.py --sessions 4 [--mem0 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LOCOMO = REPO.parent / "shared" / "data" / "locomo"
MEM0_PY = REPO / "benchmarks" / ".work" / "mem0-venv" / "bin" / "python"
OUT = REPO / "benchmarks" / "results" / "llm_write_path.json"
WORK = REPO / "benchmarks" / ".work" / "llm_write_path"
COVERED = 0.5


def session_numbers(conv: dict[str, Any]) -> list[int]:
    return sorted(
        int(k.split("_")[1])
        for k, v in conv.items()
        if k.startswith("session_") and k.count("_") == 1 and isinstance(v, list)
    )


def messages_of(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for t in turns:
        text = t.get("text", "")
        if t.get("blip_caption"):
            text += f" [shares image: {t['blip_caption']}]"
        out.append({"role": "user", "name": t["speaker"], "content": text})
    return out


def observations(conv: dict[str, Any], s: int) -> list[str]:
    return [text for text, _ in observed(conv, s)]


def observed(conv: dict[str, Any], s: int) -> list[tuple[str, list[str]]]:
    """LoCoMo's observations of session ``s`` with the turns (dia_ids) each came from."""
    out = []
    for facts in (conv.get(f"session_{s}_observation") or {}).values():
        for f in facts:
            if not isinstance(f, list | tuple):
                out.append((str(f), []))
                continue
            ev = f[1] if len(f) > 1 else []
            parts = ev if isinstance(ev, list) else [ev]
            ids = [i.strip() for e in parts for i in re.split(r"[;,]", str(e)) if i.strip()]
            out.append((str(f[0]), ids))
    return out


@contextlib.contextmanager
def server(base_url: str | None, n_ctx: int = 4096) -> Iterator[str]:
    """A local model server (ours, stopped at the end) or the one given."""
    if base_url:
        yield base_url
        return
    from tools import local_llm

    paths = local_llm.Paths(
        local_llm.cache_dir(), os.environ.get("MEMVAULT_LLM_MODEL", "qwen-1.5b")
    )
    port = local_llm.free_port()
    cmd = local_llm.server_command(paths, port)
    cmd[cmd.index("--n_ctx") + 1] = str(n_ctx)
    log = tempfile.NamedTemporaryFile(prefix="llm-bench-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        local_llm.wait_ready(url, proc, timeout=300)
        yield url
    except BaseException:
        print(f"server log kept: {log.name}", file=sys.stderr)
        raise
    else:
        os.unlink(log.name)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


class _PassLog(logging.Handler):
    """Collects what the write path logs about its second pass (sentences asked, facts kept)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.asked: list[str] = []
        self.kept: list[str] = []
        self.verbatim: list[str] = []
        self.cut: list[int] = []  # looping answers stopped early (stop_repeats): chunks read

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "cut_after_chunks"):
            self.cut.append(record.cut_after_chunks)
        self.asked += getattr(record, "sentences", [])
        self.kept += getattr(record, "facts", [])
        self.verbatim += getattr(record, "verbatim", [])


def _coverage(emb: Any, facts: list[str], obs: list[str]) -> float | None:
    if not obs:
        return None
    if not facts:
        return 0.0
    v = unit(emb.embed(facts + obs))
    return round(float(((v[len(facts) :] @ v[: len(facts)].T).max(axis=1) >= COVERED).mean()), 3)


#: The code whose behaviour the figures describe: a resumed run must not mix two versions.
WRITE_PATH = ("write", "llm")


def write_path_digest() -> str:
    """sha256 over the write path's source files (core/src/memvault)."""
    import hashlib

    root = REPO / "core" / "src" / "memvault"
    h = hashlib.sha256()
    for name in WRITE_PATH:
        p = root / name
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _same_write_path(workdir: Path) -> None:
    """Refuse to resume a run begun with another write path (``--fresh`` starts over)."""
    stamp = workdir / "write_path.sha256"
    now = write_path_digest()
    if stamp.exists() and stamp.read_text().strip() != now:
        raise SystemExit(
            f"{workdir} holds sessions added by another version of the write path; "
            "rerun with --fresh to start over"
        )
    stamp.write_text(now + "\n")


def run_memvault(
    url: str, files: list[Path], sessions: int | None, workdir: Path, budget_s: float | None
) -> dict[str, Any]:
    """One ``add(infer=True)`` per session, resumable.

    The store and one JSON line per finished session live in ``workdir``; a later run skips
    the sessions already there (an add interrupted half-way is replayed: its idempotency key
    returns the stored result if it had committed). ``budget_s`` stops starting new sessions
    after that many seconds, so a long run can be spread over several sittings.
    """
    from memvault import LLMError, Memory
    from memvault.embedding import LocalEmbedder

    emb = LocalEmbedder()
    workdir.mkdir(parents=True, exist_ok=True)
    _same_write_path(workdir)
    rows_file = workdir / "adds.jsonl"
    done = {}
    if rows_file.exists():
        for line in rows_file.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[(r["conv"], r["session"])] = r
    cfg = {
        "path": str(workdir / "llm.db"),
        "embedding_mode": "sync",
        "llm": {
            "provider": "openai",
            "config": {
                "model": "qwen",
                "openai_base_url": url,
                "api_key": "local",
                "timeout": 900,
                "max_retries": 1,
                # bounds a looping answer (~3.5 min at 3.6 tokens/s); its whole items are kept
                "max_tokens": 800,
                # ...and streaming stops it once it repeats itself (docs/write-path.md)
                "stop_repeats": True,
            },
        },
    }
    from benchmarks.locomo_memvault import session_time

    passlog = _PassLog()
    logging.getLogger("memvault").addHandler(passlog)
    # Every call's question and answer, kept in the add's row: when a fact goes missing,
    # the model's own words show whether the model or the write path dropped it.
    from memvault.llm.client import LLMClient

    calls: list[dict[str, str]] = []
    call = LLMClient.call

    def recorded(self: Any, system: str, user: str) -> Any:
        out = yield from call(self, system, user)
        calls.append({"system": system[:60], "user": user, "answer": out.text})
        return out

    LLMClient.call = recorded  # type: ignore[method-assign]
    logging.getLogger("memvault").setLevel(logging.INFO)
    t_start = time.perf_counter()
    stopped = False
    with Memory(cfg, embedder=emb) as m:
        for f in files:
            conv = json.loads(f.read_text())
            user = f.stem
            for s in session_numbers(conv)[:sessions]:
                if (user, s) in done:
                    continue
                if budget_s is not None and time.perf_counter() - t_start > budget_s:
                    stopped = True
                    break
                turns = conv[f"session_{s}"]
                msgs = messages_of(turns)
                when = session_time(conv.get(f"session_{s}_date_time", ""))
                passlog.asked, passlog.kept, passlog.verbatim, passlog.cut = [], [], [], []
                calls.clear()
                t0 = time.perf_counter()
                row: dict[str, Any] = {"conv": user, "session": s, "turns": len(turns)}
                try:
                    res = m.add(msgs, user_id=user, timestamp=when)
                    row.update(res["usage"])
                    row["error"] = None
                except LLMError as e:
                    res = {"results": []}
                    row["error"] = str(e)[:300]
                row["seconds"] = round(time.perf_counter() - t0, 2)
                facts = [
                    r for r in res["results"] if r["event"] in ("ADD", "UPDATE") and r.get("memory")
                ]
                row["facts"] = len(facts)
                row["events"] = {
                    e: sum(r["event"] == e for r in res["results"])
                    for e in ("ADD", "UPDATE", "DELETE", "NONE")
                }
                row["second_pass_sentences"] = len(passlog.asked)
                row["second_pass_facts"] = len(passlog.kept)
                row["verbatim"] = len(passlog.verbatim)
                row["loops_cut"] = len(passlog.cut)
                obs = observations(conv, s)
                row["observations"] = len(obs)
                texts = [r["memory"] for r in facts]
                kept = set(passlog.kept) | set(passlog.verbatim)
                row["coverage"] = _coverage(emb, texts, obs)
                row["coverage_first_pass"] = _coverage(
                    emb, [t for t in texts if t not in kept], obs
                )
                # each memory linked to the two turns of its session closest to it (for recall)
                row["links"] = {}
                if facts:
                    dia = [t["dia_id"] for t in turns]
                    v = unit(emb.embed(texts + [t["text"] for t in turns]))
                    for r, sims in zip(facts, v[: len(texts)] @ v[len(texts) :].T, strict=True):
                        row["links"][r["id"]] = [dia[i] for i in np.argsort(-sims)[:2]]
                row["asked_again"] = list(passlog.asked)
                row["kept_verbatim"] = list(passlog.verbatim)
                row["calls_log"] = list(calls)
                done[(user, s)] = row
                with rows_file.open("a") as out:
                    out.write(json.dumps(row) + "\n")
                quiet = ("links", "asked_again", "kept_verbatim", "calls_log")
                print(json.dumps({k: v for k, v in row.items() if k not in quiet}), flush=True)
            if stopped:
                break
        adds = [
            done[(f.stem, s)]
            for f in files
            for s in session_numbers(json.loads(f.read_text()))[:sessions]
            if (f.stem, s) in done
        ]
        recall = _recall(m, emb, files, adds, workdir)
        retired = _supersessions(m, emb, sorted({a["conv"] for a in adds}))
        missed = _missed(m, emb, files, adds)
    logging.getLogger("memvault").removeHandler(passlog)
    LLMClient.call = call  # type: ignore[method-assign]
    return {
        "adds": adds,
        "recall": recall,
        "complete": not stopped,
        "supersessions": retired,
        "missed": missed,
    }


def _supersessions(m: Any, emb: Any, users: list[str]) -> list[dict[str, Any]]:
    """Every memory the run retired (UPDATE / DELETE), with what replaced it and their cosine.

    Why listed in full: "an unrelated memory is never superseded" (issue 16) is a judgment
    no threshold can make for us; the list is small enough to read, and the doc shows it.
    """
    out = []
    for user in users:
        for r in m.get_all(user_id=user, include_superseded=True, limit=100_000)["results"]:
            for h in m.history(r["id"]):
                if h["event"] not in ("SUPERSEDE", "INVALIDATE"):
                    continue
                old, new = h["old_memory"] or "", h["new_memory"] or ""
                cos = None
                if old and new:
                    v = unit(emb.embed([old, new]))
                    cos = round(float(v[0] @ v[1]), 2)
                out.append({"conv": user, "event": h["event"], "old": old, "new": new, "cos": cos})
    return out


def _missed(m: Any, emb: Any, files: list[Path], adds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each observation the session's facts do not cover, and whether an earlier session's do.

    Why: coverage below 1 mixes three things the bar ("every stated fact extracted, never
    silently dropped") must tell apart: a fact rightly answered as already known (stated in an
    earlier session: covered by a memory from one), a fact LoCoMo observed from an image
    caption or by inference, and a stated fact the write path lost. The first is counted here;
    the rest are listed with their turns, to be read.
    """
    facts: dict[tuple[str, int], list[str]] = {}
    for a in adds:
        texts = []
        for mid in a.get("links", {}):
            r = m.get(mid)
            if r is not None:
                texts.append(r["memory"])
        facts[(a["conv"], a["session"])] = texts
    texts = sorted({t for ts in facts.values() for t in ts})
    vec = dict(zip(texts, unit(emb.embed(texts)), strict=True)) if texts else {}
    rows, known = [], 0
    for f in files:
        conv = json.loads(f.read_text())
        turn = {t["dia_id"]: t for s in session_numbers(conv) for t in conv.get(f"session_{s}", [])}
        done = sorted(s for c, s in facts if c == f.stem)
        for s in done:
            mine = facts[(f.stem, s)]
            earlier = [t for e in done if e < s for t in facts[(f.stem, e)]]
            pool = [*mine, *earlier]
            obs = observed(conv, s)
            if not obs:
                continue
            ov = unit(emb.embed([text for text, _ in obs]))
            pv = np.array([vec[t] for t in pool]) if pool else np.zeros((0, ov.shape[1]))
            for (text, ev), sims in zip(obs, ov @ pv.T, strict=True):
                if mine and sims[: len(mine)].max() >= COVERED:
                    continue
                before = float(sims[len(mine) :].max()) if earlier else 0.0
                if before >= COVERED:
                    known += 1
                    continue
                best = int(np.argmax(sims)) if len(sims) else None
                rows.append(
                    {
                        "conv": f.stem,
                        "session": s,
                        "observation": text,
                        "turns": [
                            {
                                "dia_id": d,
                                "text": turn[d].get("text", ""),
                                "image": turn[d].get("blip_caption"),
                            }
                            for d in ev
                            if d in turn
                        ],
                        "closest": [*mine, *earlier][best] if best is not None else None,
                        "cos": round(float(sims[best]), 2) if best is not None else None,
                    }
                )
    return {"known_earlier": known, "not_covered": rows}


def _recall(
    m: Any, emb: Any, files: list[Path], adds: list[dict[str, Any]], workdir: Path
) -> dict[str, list[float]]:
    """Evidence recall@10 over the sessions added: extracted memories vs the raw turns."""
    from benchmarks.locomo_memvault import session_time
    from memvault import Memory

    link = {mid: d for a in adds for mid, d in a.get("links", {}).items()}
    raw_link: dict[str, list[str]] = {}
    raw_path = workdir / "raw.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(raw_path) + suffix).unlink(missing_ok=True)
    recall: dict[str, list[float]] = {"extracted": [], "raw": []}
    added = {(a["conv"], a["session"]) for a in adds}
    with Memory({"path": str(raw_path), "embedding_mode": "sync"}, embedder=emb) as raw:
        for f in files:
            conv = json.loads(f.read_text())
            for s in session_numbers(conv):
                if (f.stem, s) not in added:
                    continue
                turns = conv[f"session_{s}"]
                when = session_time(conv.get(f"session_{s}_date_time", ""))
                rr = raw.add(messages_of(turns), user_id=f.stem, infer=False, timestamp=when)
                for r, t in zip(rr["results"], turns, strict=True):
                    raw_link.setdefault(r["id"], []).append(t["dia_id"])
        for f in files:
            conv = json.loads(f.read_text())
            sess = {f"D{s}" for (c, s) in added if c == f.stem}
            for q in conv.get("qa", []):
                ev = [e for e in q.get("evidence", []) if str(e).split(":")[0] in sess]
                if (
                    int(q.get("category", 0)) not in (1, 2, 3, 4)
                    or not ev
                    or len(ev) != len(q["evidence"])
                ):
                    continue
                for name, store, links in (("extracted", m, link), ("raw", raw, raw_link)):
                    hits = store.search(q["question"], user_id=f.stem, top_k=10)["results"]
                    found = {d for h in hits for d in links.get(h["id"], [])}
                    recall[name].append(len(set(ev) & found) / len(set(ev)))
    return recall


MEM0_SIDE = r"""
import json, sys, time, os
sys.path.insert(0, os.path.join(sys.argv[1], "benchmarks")); sys.path.insert(0, os.path.join(sys.argv[1], "core", "src"))
import openai.resources.chat.completions as cc
usage = {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0}
orig = cc.Completions.create
def create(self, *a, **kw):
    # openai's default 600 s timeout (and its retries) cut a ~9,200-token prompt on 2 cores
    kw.setdefault("timeout", 3600)
    r = orig(self, *a, **kw)
    if r.usage:
        usage["prompt_tokens"] += r.usage.prompt_tokens; usage["completion_tokens"] += r.usage.completion_tokens
    usage["calls"] += 1
    return r
cc.Completions.create = create
import mem0_minilm_embedder
from memvault.embedding import LocalEmbedder
mem0_minilm_embedder.install(LocalEmbedder())
from mem0 import Memory
job = json.load(sys.stdin)
m = Memory.from_config({
    "embedder": {"provider": "huggingface", "config": {"embedding_dims": 384}},
    "vector_store": {"provider": "qdrant", "config": {"path": job["workdir"], "on_disk": True, "embedding_model_dims": 384}},
    "llm": {"provider": "openai", "config": {"model": "qwen", "openai_base_url": job["url"], "api_key": "local", "temperature": 0, "max_tokens": 1500}},
})
for s in job["sessions"]:
    for k in usage: usage[k] = 0
    t0 = time.perf_counter(); err = None
    try:
        res = m.add(s["messages"], user_id=job["user"])
        n = len(res.get("results", []))
    except Exception as e:
        err, n = f"{type(e).__name__}: {e}"[:300], 0
    print(json.dumps({"session": s["n"], "seconds": round(time.perf_counter() - t0, 2), "facts": n, "error": err, **usage}), flush=True)
"""


def run_mem0(url: str, f: Path, sessions: int, workdir: Path) -> list[dict[str, Any]]:
    conv = json.loads(f.read_text())
    job = {
        "url": url,
        "user": f.stem,
        "workdir": str(workdir / "mem0-qdrant"),
        "sessions": [
            {
                "n": s,
                "messages": [
                    {"role": "user", "content": f"{m['name']}: {m['content']}"}
                    for m in messages_of(conv[f"session_{s}"])
                ],
            }
            for s in session_numbers(conv)[:sessions]
        ],
    }
    env = {**os.environ, "MEM0_TELEMETRY": "False", "ANONYMIZED_TELEMETRY": "False"}
    p = subprocess.run(
        [str(MEM0_PY), "-c", MEM0_SIDE, str(REPO)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env=env,
        timeout=7200,
    )
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    if p.returncode != 0 and not rows:
        raise RuntimeError(p.stderr[-3000:])
    return rows


def summary(res: dict[str, Any], mem0: list[dict[str, Any]] | None) -> dict[str, Any]:
    adds = res["adds"]
    ok = [a for a in adds if not a["error"]]
    cov = [a["coverage"] for a in adds if a.get("coverage") is not None]
    out: dict[str, Any] = {
        "adds": len(adds),
        "llm_errors": sum(1 for a in adds if a["error"]),
        "facts_per_session": round(statistics.fmean(a["facts"] for a in adds), 2),
        "observations_per_session": round(statistics.fmean(a["observations"] for a in adds), 2),
        "observation_coverage": round(statistics.fmean(cov), 3) if cov else None,
        "prompt_tokens_per_add": round(statistics.fmean(a["prompt_tokens"] for a in ok), 1)
        if ok
        else None,
        "completion_tokens_per_add": round(statistics.fmean(a["completion_tokens"] for a in ok), 1)
        if ok
        else None,
        "llm_calls_per_add": round(statistics.fmean(a["calls"] for a in ok), 2) if ok else None,
        "second_pass_adds": sum(1 for a in ok if a.get("calls", 1) > 1),
        # stop_repeats: answers cut once they looped; calls whose tokens are estimates
        # (cut, or llama-cpp-python sending no usage in a stream: then every call)
        "loops_cut": sum(a.get("loops_cut", 0) for a in adds),
        "estimated_token_calls": sum(a.get("estimated_calls", 0) for a in ok),
        "second_pass_facts_per_add": round(
            statistics.fmean(a.get("second_pass_facts", 0) for a in ok), 2
        )
        if ok
        else None,
        "verbatim_per_add": round(statistics.fmean(a.get("verbatim", 0) for a in ok), 2)
        if ok
        else None,
        "observation_coverage_first_pass": round(
            statistics.fmean(
                a["coverage_first_pass"] for a in adds if a.get("coverage_first_pass") is not None
            ),
            3,
        )
        if any(a.get("coverage_first_pass") is not None for a in adds)
        else None,
        "seconds_per_add_median": round(statistics.median(a["seconds"] for a in adds), 1),
        "questions": len(res["recall"]["extracted"]),
        "recall@10_extracted": round(statistics.fmean(res["recall"]["extracted"]), 3)
        if res["recall"]["extracted"]
        else None,
        "recall@10_raw_turns": round(statistics.fmean(res["recall"]["raw"]), 3)
        if res["recall"]["raw"]
        else None,
        "supersessions": len(res.get("supersessions", [])),
    }
    if res.get("missed") is not None:
        out["observations"] = sum(a["observations"] for a in adds)
        out["observations_known_earlier"] = res["missed"]["known_earlier"]
        out["observations_not_covered"] = len(res["missed"]["not_covered"])
    if mem0:
        mine = [a for a in adds if a["conv"] == adds[0]["conv"]][: len(mem0)]
        good = [r for r in mem0 if not r["error"]]
        out["mem0"] = {
            "adds": len(mem0),
            "errors": len(mem0) - len(good),
            "prompt_tokens_per_add": round(statistics.fmean(r["prompt_tokens"] for r in mem0), 1),
            "completion_tokens_per_add": round(
                statistics.fmean(r["completion_tokens"] for r in mem0), 1
            ),
            "calls_per_add": round(statistics.fmean(r["calls"] for r in mem0), 2),
            "seconds_per_add_median": round(statistics.median(r["seconds"] for r in mem0), 1),
            "memvault_same_sessions": {
                "prompt_tokens_per_add": round(
                    statistics.fmean(a.get("prompt_tokens", 0) for a in mine), 1
                ),
                "completion_tokens_per_add": round(
                    statistics.fmean(a.get("completion_tokens", 0) for a in mine), 1
                ),
                "seconds_per_add_median": round(statistics.median(a["seconds"] for a in mine), 1),
            },
        }
        m0, mv = out["mem0"], out["mem0"]["memvault_same_sessions"]
        if m0["prompt_tokens_per_add"]:
            mv["tokens_ratio_vs_mem0"] = round(
                (mv["prompt_tokens_per_add"] + mv["completion_tokens_per_add"])
                / (m0["prompt_tokens_per_add"] + m0["completion_tokens_per_add"]),
                3,
            )
            mv["time_ratio_vs_mem0"] = round(
                mv["seconds_per_add_median"] / m0["seconds_per_add_median"], 3
            )
    return out


def _cell(text: str, limit: int = 110) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _facts(rows: list[dict[str, Any]]) -> str:
    """Memories written per add, as the per-session counts (``"19, 28"``)."""
    return ", ".join(str(r.get("facts", 0)) for r in rows)


def render(out: dict[str, Any]) -> str:
    """The docs/benchmarks.md section for one results file."""
    s = out["summary"]
    n_conv = len(out["files"])
    which = (
        f"the first {out['sessions']} sessions of each"
        if out.get("sessions")
        else f"every session: {s['adds']} adds"
    )
    if not out.get("complete", True):
        which = (
            f"the first {s['adds']} of its {out.get('planned', '?')} session adds: the run "
            "stopped at its time budget; rerun, it resumes where it stopped as long as the "
            "write path's code is unchanged (it refuses otherwise)"
        )
    lines = [
        f"`benchmarks/bench_llm_write_path.py` on the {n_conv} LoCoMo dev conversations "
        f"({', '.join(out['files'])}; {which}). Model: "
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M on llama-cpp-python 0.3.36 (`make llm`), "
        "temperature 0, JSON mode, `max_tokens=800`, `stop_repeats`; each session one `add(infer=True)` with "
        "its date as timestamp, into one scope per conversation (so later sessions are "
        "reconciled against what earlier ones stored). Results: "
        "`benchmarks/results/llm_write_path.json`.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| adds (sessions) | {s['adds']} |",
        f"| LLM errors (target 0) | {s['llm_errors']} |",
        f"| facts extracted per session | {s['facts_per_session']} |",
        f"| LoCoMo observations per session | {s['observations_per_session']} |",
        f"| observations covered by an extracted fact (cosine >= {COVERED}) | "
        f"{s['observation_coverage']} |",
        f"| the same, first call's facts only (no second pass, nothing verbatim) | "
        f"{s.get('observation_coverage_first_pass')} |",
        f"| adds that took a second pass | {s.get('second_pass_adds')} |",
        f"| facts kept from the second pass, per add | {s.get('second_pass_facts_per_add')} |",
        f"| sentences kept verbatim (no answer covered them), per add | "
        f"{s.get('verbatim_per_add')} |",
        f"| prompt / completion tokens per add | {s['prompt_tokens_per_add']} / "
        f"{s['completion_tokens_per_add']} |",
        f"| LLM calls per add (a second pass when a fact was dropped) | {s['llm_calls_per_add']} |",
        f"| looping answers stopped early (`stop_repeats`) | {s.get('loops_cut')} |",
        f"| LLM calls with estimated tokens (streamed, no usage report) | "
        f"{s.get('estimated_token_calls')} |",
        f"| seconds per add (median) | {s['seconds_per_add_median']} |",
        f"| evidence recall@10, extracted memories ({s['questions']} questions) | "
        f"{s['recall@10_extracted']} |",
        f"| evidence recall@10, raw turns (same questions) | {s['recall@10_raw_turns']} |",
    ]
    retired = out.get("supersessions") or []
    if retired:
        lines += [
            "",
            f"Every memory the run retired ({len(retired)}), with what replaced it "
            "(`SUPERSEDE`: an UPDATE; `INVALIDATE`: a DELETE, with the text said) and their "
            "cosine — the guard's work, to be read:",
            "",
            "| conv | event | retired | by | cosine |",
            "|---|---|---|---|---|",
        ]
        for r in retired:
            cell = [_cell(r["old"]), _cell(r["new"])]
            lines.append(f"| {r['conv']} | {r['event']} | {cell[0]} | {cell[1]} | {r['cos']} |")
    missed = out.get("missed")
    if missed is not None:
        rows = missed["not_covered"]
        lines += [
            "",
            f"Of the {s['observations']} LoCoMo observations, "
            f"{s['observations'] - s['observations_known_earlier'] - len(rows)} are covered by a "
            f"fact of their session, {s['observations_known_earlier']} by a fact an earlier "
            f"session stored (rightly not stored twice), and {len(rows)} by none — each below "
            "with the turn it came from (an image caption in brackets) and the closest stored "
            "fact, to be read: a fact LoCoMo saw in a photo or inferred is not a stated one.",
        ]
        if rows:
            lines += ["", "| conv/session | observation | turn | closest fact | cosine |"]
            lines += ["|---|---|---|---|---|"]
            for r in rows:
                said = " ".join(
                    t["text"] + (f" [{t['image']}]" if t.get("image") else "") for t in r["turns"]
                )
                lines.append(
                    f"| {r['conv']}/{r['session']} | {_cell(r['observation'], 90)} | "
                    f"{_cell(said, 140)} | {_cell(r['closest'] or '', 90)} | {r['cos']} |"
                )
    m0 = s.get("mem0")
    if m0:
        mv = m0["memvault_same_sessions"]
        first = out["adds"][0]["conv"] if out["adds"] else None
        mine = [a for a in out["adds"] if a["conv"] == first][: m0["adds"]]
        lines += [
            "",
            f"mem0ai 2.2.1 on the first {m0['adds']} sessions of {out['files'][0]}, same model "
            "(its own server with a 16k context: its prompt does not fit in 4k) and the same "
            "MiniLM embedder:",
            "",
            "| per add | memvault | mem0 2.2.1 |",
            "|---|---|---|",
            f"| prompt tokens | {mv['prompt_tokens_per_add']} | {m0['prompt_tokens_per_add']} |",
            f"| completion tokens | {mv['completion_tokens_per_add']} | "
            f"{m0['completion_tokens_per_add']} |",
            f"| LLM calls | {s['llm_calls_per_add']} | {m0['calls_per_add']} |",
            f"| seconds (median) | {mv['seconds_per_add_median']} | "
            f"{m0['seconds_per_add_median']} |",
            f"| errors | {s['llm_errors']} | {m0['errors']} |",
            f"| memories written (ADD/UPDATE) | {_facts(mine)} | {_facts(out.get('mem0') or [])} |",
            "",
            f"Tokens per add (prompt + completion): memvault / mem0 = "
            f"{mv.get('tokens_ratio_vs_mem0')}; time per add: {mv.get('time_ratio_vs_mem0')}. "
            "mem0's tokens are the server's count (no stream); memvault's are the client's "
            "characters / 4 estimates (it streams, and llama-cpp-python reports no usage in a "
            "stream; see the prompt-token section for the tokenizer's factor). Two sessions "
            "only: mem0's ~9k-token prompt takes minutes per add on this 2-core machine.",
        ]
    for note in out.get("notes", []):  # context written with a partial run
        lines += ["", note]
    lines += [
        "",
        "What this does not show: the machine was shared with other work, so seconds vary "
        "several-fold between runs; the link from an extracted memory to LoCoMo turns (its two "
        "closest turns of the session) is an approximation; coverage by embedding match counts "
        "paraphrases and misses facts worded very differently.",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--sessions", type=int, default=None, help="sessions per conversation (default: all)"
    )
    ap.add_argument(
        "--conversations", nargs="*", default=None, help="LoCoMo files (default: all dev)"
    )
    ap.add_argument("--base-url", default=None)
    ap.add_argument(
        "--mem0", type=int, default=0, help="sessions of the first conversation for mem0"
    )
    ap.add_argument("--work", default=str(WORK), help="store + finished sessions (resumable)")
    ap.add_argument("--fresh", action="store_true", help="forget earlier sessions in --work")
    ap.add_argument(
        "--budget-minutes", type=float, default=None, help="start no new session after this"
    )
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--render", action="store_true", help="only rewrite the docs section")
    args = ap.parse_args()
    if args.render:
        from benchmarks._bench_util import write_doc_section

        body = render(json.loads(Path(args.out).read_text()))
        write_doc_section("llm_write_path", "The write path with a real local model", body)
        return
    files = (
        [Path(p) for p in args.conversations]
        if args.conversations
        else sorted(LOCOMO.glob("*.json"))
    )
    work = Path(args.work)
    if args.fresh:
        shutil.rmtree(work, ignore_errors=True)
    budget = args.budget_minutes * 60 if args.budget_minutes is not None else None
    with server(args.base_url) as url:
        res = run_memvault(url, files, args.sessions, work, budget)
    mem0_file = work / "mem0.json"  # kept, so a later run (or --render) still reports it
    mem0 = json.loads(mem0_file.read_text()) if mem0_file.exists() else None
    if args.mem0 and (mem0 is None or len(mem0) < args.mem0):
        with tempfile.TemporaryDirectory() as tmp, server(None, n_ctx=16384) as url:
            mem0 = run_mem0(url, files[0], args.mem0, Path(tmp))
            for r in mem0:
                print("mem0", json.dumps(r), flush=True)
        mem0_file.write_text(json.dumps(mem0))
    out = {
        "summary": summary(res, mem0),
        "adds": [
            {k: v for k, v in a.items() if k not in ("links", "calls_log")} for a in res["adds"]
        ],
        "supersessions": res.get("supersessions", []),
        "missed": res.get("missed"),
        "mem0": mem0,
        "sessions": args.sessions,
        "complete": res["complete"],
        "planned": sum(
            len(session_numbers(json.loads(f.read_text()))[: args.sessions]) for f in files
        ),
        "files": [f.name for f in files],
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["summary"], indent=2))


if __name__ == "__main__":
    main()
