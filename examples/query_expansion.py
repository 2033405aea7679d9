"""Opt-in query expansion: ask the model what an answer would look like, then search for it.

    python examples/query_expansion.py                   # offline: a local stand-in LLM
    make llm-start   # then, with the base URL it prints:
    python examples/query_expansion.py --base-url http://127.0.0.1:PORT/v1 --model qwen \
        --api-key local                                  # the local 1.5B model

Some questions share no words and little meaning with the memory that answers them:
"Would Caroline enjoy a Dr. Seuss book?" is answered by "I collect classic children's
books", while a memory about Dr. Pepper shares the question's words. With
``retrieval={"expansions": N}`` the configured LLM writes N statements an answer would hold;
each is searched too and the rankings fused (docs/retrieval.md#opt-in-query-expansion).
It costs one LLM call per search, so it is off by default.

Offline, the "LLM" is the test suite's OpenAI-compatible server (`tests/support/fake_openai.py`)
answering with a fixed guess, so the real `openai` client runs end to end with no key.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from memvault import Memory

MEMORIES = [
    "Caroline: I asked my friend whether Dr. Seuss was a real doctor.",
    "Caroline: Dr. Pepper is my favourite drink, way better than cola.",
    "Caroline: I went to the doctor for a check-up last week.",
    "Caroline: I've been collecting classic children's books for my future kids.",
    "Melanie: I ran a charity race for mental health on Saturday.",
]
QUESTION = "Would Caroline likely have Dr. Seuss books on her shelf?"


def guessing_model(request: dict[str, Any]) -> dict[str, Any]:
    """A stand-in for a real model: the statements a model would guess for the question."""
    return {
        "statements": [
            "Caroline collects classic children's books",
            "Caroline reads picture books to kids",
            "Caroline owns books by Dr. Seuss",
        ]
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--base-url", help="an OpenAI-compatible endpoint (default: a local stand-in)")
    ap.add_argument("--model", default="gpt-4.1-mini")
    ap.add_argument("--api-key", default=None, help="default: $OPENAI_API_KEY")
    args = ap.parse_args()

    with ExitStack() as stack:
        if args.base_url:
            llm: dict[str, Any] = {"model": args.model, "base_url": args.base_url}
            if args.api_key:
                llm["api_key"] = args.api_key
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root
            from tests.support.fake_openai import FakeOpenAI

            srv = stack.enter_context(FakeOpenAI(chat_handler=guessing_model))
            llm = {"model": "stand-in", "base_url": srv.base_url, "api_key": "sk-offline"}
        store = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "memvault.db"
        m = stack.enter_context(
            Memory({"path": str(store), "llm": {"provider": "openai", "config": llm}})
        )
        for text in MEMORIES:
            m.add(text, user_id="friends", infer=False)

        plain = m.search(QUESTION, user_id="friends", top_k=2)
        print(f"{QUESTION}\n\nplain search (no LLM call):")
        for r in plain["results"]:
            print(f"   {r['score']:.3f}  {r['memory']}")
        res = m.search(QUESTION, user_id="friends", top_k=2, retrieval={"expansions": 3})
        print("\nthe model's statements:")
        for s in res["expansions"]:
            print(f"   - {s}")
        print("with expansion (question + statements searched, rankings fused):")
        for r in res["results"]:
            print(f"   {r['score']:.3f}  {r['memory']}")
        print(f"\nLLM usage so far: {m.stats()['llm_usage']}")


if __name__ == "__main__":
    main()
