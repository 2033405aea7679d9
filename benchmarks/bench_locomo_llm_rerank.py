#!/usr/bin/env python3
"""Issue 12 experiment: the local LLM as a listwise reranker of the default search's top N.

Why try it: the weak categories (multi-hop, open-domain) miss evidence that resembles the
question neither in words nor in meaning, and asking the 1.5B model to *guess* answers
(query expansion) did not help. Judging whether a given message answers a question is an
easier task than guessing the answer, so the model is shown the default search's top N
(the whole hybrid pipeline, query embedding included) and asked which of them help.

Nothing is tuned on these conversations: the prompt, N and the two ways of using the
answer were fixed before the first question was scored. The two ways:

* ``model order``: the messages the model lists, in its order, then the rest in the
  search's order;
* ``search order``: the listed messages in the search's order, then the rest.

Which of the two to ship would be chosen held out (on two conversations, scored on the
third); both are recorded per question. Rows go to ``benchmarks/.work/locomo_rerank/rows.jsonl``
as they are scored (a stopped run resumes; ``--fresh`` starts over).

    .venv/bin/python benchmarks/bench_locomo_llm_rerank.py --categories 1 3 [--top 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _bench_util import RESULTS, WORK, git_rev, machine_facts, resume_rows
from bench_llm_write_path import server
from bench_locomo_cv import CATS, Case, dev_conversations, ingest, recalls

from memvault import Memory
from memvault.errors import LLMError
from memvault.llm.parse import extract_json

ROWS = Path(WORK) / "locomo_rerank" / "rows.jsonl"
OUT = Path(RESULTS) / "locomo_llm_rerank.json"
KS = (5, 10, 20, 30)

RERANK_PROMPT = """\
You help search the long-term memory of an AI assistant. You get a QUESTION and numbered \
MESSAGES from the user's past conversations. Pick the messages that help answer the \
question: they state something the answer needs, even only part of it, even when they do \
not repeat the question's words.

Answer with JSON only: {"relevant": [message numbers, most useful first]}, or \
{"relevant": []} when none helps."""


def rerank_input(question: str, messages: list[str]) -> str:
    lines = [f"QUESTION: {question}", "", "MESSAGES:"]
    lines += [f"[{i}] {m}" for i, m in enumerate(messages, 1)]
    return "\n".join(lines)


def decode(raw: str, n: int) -> list[int]:
    """Zero-based indices the model listed (valid, first mention kept, in its order)."""
    try:
        data = extract_json(raw, allow_list=True)
    except LLMError:
        return []
    items: Any = data.get("relevant", []) if isinstance(data, dict) else data
    out: list[int] = []
    for x in items if isinstance(items, list) else []:
        try:
            i = int(str(x).strip("[] ")) - 1
        except ValueError:
            continue
        if 0 <= i < n and i not in out:
            out.append(i)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--top", type=int, default=30, help="messages shown to the model")
    ap.add_argument("--base-url")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--budget-minutes", type=float)
    ap.add_argument("--categories", type=int, nargs="*", default=sorted(CATS))
    ap.add_argument("--every", type=int, default=1, help="score every k-th question only")
    args = ap.parse_args()

    from openai import OpenAI

    done = resume_rows(ROWS, fresh=args.fresh, keep=lambda r: r["top"] == args.top)

    convs, emb = dev_conversations()
    deadline = None if args.budget_minutes is None else time.monotonic() + 60 * args.budget_minutes
    with server(args.base_url) as url, tempfile.TemporaryDirectory(dir=WORK) as tmp:
        client = OpenAI(base_url=url, api_key="local", timeout=600, max_retries=0)
        with Memory(path=os.path.join(tmp, "x.db"), embedder=emb) as memory:
            maps = ingest(memory, convs, timestamps=True)
            emb.save()
            with ROWS.open("a") as sink:
                for scope, items, questions, _info in convs:
                    speaker = {it.id: it.metadata.get("speaker") for it in items}
                    for n, q in enumerate(questions):
                        if q.category not in args.categories or n % args.every:
                            continue
                        if (scope, q.question) in done:
                            continue
                        if deadline is not None and time.monotonic() > deadline:
                            break
                        case = Case(scope, q.category, q.question, q.evidence)
                        smap = maps[scope]
                        t = time.perf_counter()
                        res = memory.search(q.question, user_id=scope, top_k=args.top)["results"]
                        search_ms = (time.perf_counter() - t) * 1000
                        ids = [r["metadata"]["item_id"] for r in res]
                        shown = [
                            f"{speaker[i]}: {r['memory'][:300]}"
                            for i, r in zip(ids, res, strict=True)
                        ]
                        t = time.perf_counter()
                        reply = client.chat.completions.create(
                            model="qwen",
                            messages=[
                                {"role": "system", "content": RERANK_PROMPT},
                                {"role": "user", "content": rerank_input(q.question, shown)},
                            ],
                            temperature=0,
                            max_tokens=120,
                            response_format={"type": "json_object"},
                        )
                        llm_ms = (time.perf_counter() - t) * 1000
                        raw = reply.choices[0].message.content or ""
                        picked = decode(raw, len(ids))
                        rest = [i for i in range(len(ids)) if i not in picked]
                        model_order = [ids[i] for i in picked + rest]
                        search_order = [ids[i] for i in sorted(picked) + rest]
                        row = {
                            "conv": scope,
                            "question": q.question,
                            "category": q.category,
                            "top": args.top,
                            "raw": raw,
                            "picked": picked,
                            "plain": list(recalls(ids, case, smap, KS)),
                            "model_order": list(recalls(model_order, case, smap, KS)),
                            "search_order": list(recalls(search_order, case, smap, KS)),
                            "search_ms": round(search_ms, 2),
                            "llm_ms": round(llm_ms, 1),
                            "prompt_tokens": reply.usage.prompt_tokens if reply.usage else None,
                            "completion_tokens": reply.usage.completion_tokens
                            if reply.usage
                            else None,
                        }
                        sink.write(json.dumps(row) + "\n")
                        sink.flush()
                        done[(scope, q.question)] = row
                        print(
                            f"{len(done):4d} cat{q.category} plain {row['plain'][1]:.2f} "
                            f"model {row['model_order'][1]:.2f} search "
                            f"{row['search_order'][1]:.2f} picked {picked} {llm_ms / 1000:.1f}s",
                            flush=True,
                        )
    rows = [r for r in done.values() if r["category"] in args.categories]
    total = sum(1 for c in convs for q in c[2] if q.category in args.categories)
    out: dict[str, Any] = {
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "git": git_rev(),
        "top": args.top,
        "categories": args.categories,
        "questions_scored": len(rows),
        "questions_total": total,
        "listed_20_or_more": sum(1 for r in rows if len(r["picked"]) >= 20),
        "r10_changed": sum(1 for r in rows if r["model_order"][1] != r["plain"][1]),
        "llm_ms_p50": round(statistics.median(r["llm_ms"] for r in rows), 1) if rows else None,
        "prompt_tokens_mean": round(statistics.mean(r["prompt_tokens"] or 0 for r in rows), 1)
        if rows
        else None,
        "machine": machine_facts(),
    }
    for key in ("plain", "model_order", "search_order"):
        out[key] = {
            f"cat{c}": {
                "n": len(g),
                **{
                    f"R@{k}": round(float(np.mean([r[key][j] for r in g])), 3)
                    for j, k in enumerate(KS)
                },
            }
            for c in CATS
            if (g := [r for r in rows if r["category"] == c])
        }
    print(json.dumps({k: out[k] for k in ("plain", "model_order", "search_order")}, indent=1))
    path = OUT if len(rows) == total else OUT.with_name("locomo_llm_rerank-partial.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
