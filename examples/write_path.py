"""The write path: an assistant that remembers, changes its mind, and keeps the past.

    python examples/write_path.py                       # offline: a local stand-in LLM
    python examples/write_path.py --base-url https://api.openai.com/v1 --model gpt-4.1-mini
                                                        # a real endpoint (OPENAI_API_KEY)
    make llm-start   # then, with the base URL it prints:
    python examples/write_path.py --base-url http://127.0.0.1:PORT/v1 --model qwen \
        --api-key local --small-model                   # the local 1.5B model

What it shows, in order:
1. Per-turn `add` with LLM extraction: one call per add extracts facts and reconciles them
   with what the user's scope already holds (ADD / UPDATE / DELETE / NONE), token usage
   reported per add.
2. A changed fact supersedes the old one instead of destroying it: `search` returns what is
   true now, `as_of=` what was known then, `history()` the whole trail.
3. Raw adds (`infer=False`) return in about a millisecond; the very next search finds them
   by meaning (it embeds the scope's queued memories first).

Offline, the "LLM" is the test suite's OpenAI-compatible server (`tests/support/fake_openai.py`)
answering with a few rules below, so the real `openai` client runs end to end with no key.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from memvault import Memory

TURNS = [
    ("2026-03-02T09:00:00Z", "Hi! I'm Ana. I live in Porto and I'm vegetarian."),
    ("2026-05-10T18:30:00Z", "Big news: I moved to Lisbon last week!"),
    ("2026-05-11T08:00:00Z", "I still don't eat meat, by the way."),
]


def rule_based_extractor(request: dict[str, Any]) -> dict[str, Any]:
    """A stand-in for a real model: a few hand rules over the prompt memvault sends."""
    user = request["messages"][-1]["content"]
    # the second pass (facts only, about sentences the first answer left out) shows none
    shown = user.split("EXISTING MEMORIES:\n", 1)
    lines = shown[1].split("\n\n", 1)[0].splitlines() if len(shown) == 2 else []
    # one "[id] text" line per memory ("[]" when there are none)
    existing = [
        {"id": m["id"], "text": m["text"]}
        for line in lines
        if (m := re.match(r"\[(?P<id>[^\]]+)\] (?P<text>.*)", line))
    ]
    new = user.split("NEW MESSAGES:\n", 1)[1]
    out: list[dict[str, Any]] = []
    lives = next((m for m in existing if m["text"].startswith("Ana lives in")), None)
    veggie = next((m for m in existing if "vegetarian" in m["text"]), None)
    if m := re.search(r"live in (\w+)|moved to (\w+)", new):
        city = m.group(1) or m.group(2)
        fact = {"text": f"Ana lives in {city}", "attributed_to": "Ana"}
        out.append(
            {"event": "UPDATE", "id": lives["id"], **fact} if lives else {"event": "ADD", **fact}
        )
    if "vegetarian" in new or "don't eat meat" in new:
        if veggie:
            out.append({"event": "NONE", "id": veggie["id"]})
        else:
            out.append({"event": "ADD", "text": "Ana is vegetarian", "attributed_to": "Ana"})
    return {"memories": out}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--base-url", help="an OpenAI-compatible endpoint (default: a local stand-in)")
    ap.add_argument("--model", default="gpt-4.1-mini")
    ap.add_argument("--api-key", default=None, help="default: $OPENAI_API_KEY")
    ap.add_argument(
        "--small-model",
        action="store_true",
        help="settings for a small local model: stop a looping answer early, bound its length",
    )
    args = ap.parse_args()

    with ExitStack() as stack:
        if args.base_url:
            llm: dict[str, Any] = {"model": args.model, "base_url": args.base_url}
            if args.api_key:
                llm["api_key"] = args.api_key
            if args.small_model:  # docs/write-path.md: small models loop until max_tokens
                llm.update({"stop_repeats": True, "max_tokens": 800, "timeout": 600})
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root
            from tests.support.fake_openai import FakeOpenAI

            srv = stack.enter_context(FakeOpenAI(chat_handler=rule_based_extractor))
            llm = {"model": "stand-in", "base_url": srv.base_url, "api_key": "sk-offline"}
        store = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "memvault.db"
        m = stack.enter_context(
            Memory({"path": str(store), "llm": {"provider": "openai", "config": llm}})
        )

        print("1) one LLM call per add: extract + reconcile")
        for when, text in TURNS:
            res = m.add([{"role": "user", "content": text}], user_id="ana", timestamp=when)
            events = ", ".join(f"{r['event']} {r['memory']!r}" for r in res["results"])
            print(
                f"   [{when[:10]}] {text}\n      -> {events or 'nothing'}  (tokens {res['usage']})"
            )

        print("\n2) superseded, not destroyed")
        now = m.search("Where does Ana live?", user_id="ana", top_k=1)["results"][0]
        then = m.search("Where does Ana live?", user_id="ana", top_k=1, as_of="2026-04-01")
        print(f"   now:              {now['memory']}")
        print(f"   as of 2026-04-01: {then['results'][0]['memory']}")
        old = m.get_all(user_id="ana", include_superseded=True)["results"]
        porto = next(r for r in old if r["memory"].endswith("Porto"))
        for h in m.history(porto["id"]):
            print(
                f"   history: {h['event']:<10} {h['old_memory'] or '':<22} -> {h['new_memory'] or ''}"
            )

        print("\n3) raw adds return at once; the next search still finds them by meaning")
        t0 = time.perf_counter()
        for note in ("I booked a cello lesson for Thursday", "We adopted a grey cat called Miso"):
            m.add({"role": "user", "content": note}, user_id="ana", infer=False)
        ms = (time.perf_counter() - t0) * 1000 / 2
        hit = m.search("Do I have a pet?", user_id="ana", top_k=1)["results"][0]
        print(f"   {ms:.1f} ms per add; 'Do I have a pet?' -> {hit['memory']}")
        print(
            f"\nstats: {json.dumps({k: m.stats()[k] for k in ('memories', 'active', 'history_events')})}"
        )


if __name__ == "__main__":
    main()
