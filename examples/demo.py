"""memvault's main job, offline, in seconds: remember a long conversation, answer questions.

What it does (the job `make demo` runs):
1. Opens a fresh store (a temporary directory; nothing touches your home).
2. Ingests one LoCoMo conversation from ../shared/data/locomo (or the small sample
   bundled in examples/data when ../shared is absent): every turn becomes a memory
   of its speaker (one user per speaker, one run per session), with a progress bar.
   No API key and no network: the embedding model ships inside a pip package.
3. Answers a few questions for each of the two users, printing scores and the
   signals behind them, and shows that one user's memories never leak to the other.

    .venv/bin/python examples/demo.py [--file CONVERSATION.json] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memvault import Memory
from memvault.ingest_sources import read_rows

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "locomo" / "26.json"
SAMPLE = REPO / "examples" / "data" / "sample_conversation.json"


def rows_per_speaker(path: Path) -> list[dict]:
    """One ingest row per (session, speaker): each speaker is a user of their own."""
    rows = []
    for session in read_rows(path, "locomo"):
        by_speaker: dict[str, list[dict]] = {}
        for msg in session["messages"]:
            by_speaker.setdefault(msg["name"], []).append(msg)
        for name, msgs in by_speaker.items():
            rows.append(
                {
                    "user_id": name.lower(),
                    "run_id": session["run_id"],
                    "messages": msgs,
                    "timestamp": session["timestamp"],
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=SHARED if SHARED.exists() else SAMPLE)
    ap.add_argument("--keep", action="store_true", help="keep the store and print its path")
    args = ap.parse_args()
    console = Console()
    workdir = Path(tempfile.mkdtemp(prefix="memvault-demo-"))
    rows = rows_per_speaker(args.file)
    users = sorted({r["user_id"] for r in rows})
    console.print(
        f"[bold]memvault demo[/]: {sum(len(r['messages']) for r in rows)} turns of "
        f"{args.file.name} for users {', '.join(users)} -> {workdir / 'memvault.db'}"
    )
    t0 = time.perf_counter()
    with Memory(path=workdir / "memvault.db") as m:
        report = m.ingest(rows, progress=True)
        console.print(
            f"ingested {report.done} sessions ({m.count(user_id=users[0])} + "
            f"{m.count(user_id=users[1])} memories) in {time.perf_counter() - t0:.1f} s, "
            "no API key, no network"
        )
        questions = {
            users[0]: [
                f"What did {users[0].title()} research?",
                f"Where did {users[0].title()} move from?",
                "What career path is being considered?",
            ],
            users[1]: [
                f"What activities does {users[1].title()} do with her family?",
                f"What does {users[1].title()} do to destress?",
                "What did the kids like?",
            ],
        }
        for user, qs in questions.items():
            for q in qs:
                t = time.perf_counter()
                hits = m.search(q, user_id=user, top_k=3, explain=True)["results"]
                ms = (time.perf_counter() - t) * 1000
                table = Table(title=f"[{user}] {q}  ({ms:.1f} ms)", title_justify="left")
                table.add_column("score", justify="right")
                table.add_column("dense/keyword/context/speaker", justify="right")
                table.add_column("memory")
                for h in hits:
                    d = h["score_details"]
                    table.add_row(
                        f"{h['score']:.3f}",
                        f"{d['dense']:.2f}/{d['keyword']:.2f}/{d['neighbor']:.2f}/{d['actor']:.2f}",
                        h["memory"][:110],
                    )
                console.print(table)
        leak = [
            h
            for h in m.search(questions[users[0]][0], user_id=users[1], top_k=20)["results"]
            if h["user_id"] != users[1]
        ]
        console.print(
            f"scope check: searching {users[1]}'s memories returned {len(leak)} of {users[0]}'s"
        )
    if args.keep:
        console.print(f"store kept at {workdir / 'memvault.db'} (try: memvault --path ... list)")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
