"""The cold path: bulk ingest that is exactly-once, resumable, rate-limit proof and cheap."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory
from memvault.costs import token_counter
from memvault.embedding import LocalEmbedder
from memvault.ingest_sources import parse_locomo_date, read_rows
from memvault.llm.prompts import EXTRACTION_PROMPT, FACTS_PROMPT
from tests.support.fake_openai import FakeOpenAI, Fault

REPO = Path(__file__).resolve().parents[2]
LOCOMO = REPO.parent / "shared" / "data" / "locomo" / "26.json"


def echo_facts(req: dict[str, Any]) -> dict[str, Any]:
    """Script: one ADD per new message, restating it (so each row yields known facts)."""
    user = req["messages"][-1]["content"] if "messages" in req else req["input"]
    new = user.split("NEW MESSAGES:\n", 1)[1]
    return {
        "memories": [
            {"event": "ADD", "text": "Fact: " + line.split(": ", 1)[1]}
            for line in new.splitlines()
            if ": " in line
        ]
    }


def rows(n: int, users: int = 5) -> list[dict[str, Any]]:
    return [
        {
            "user_id": f"user{i % users}",
            "text": f"message number {i} about topic {i * 7}",
            "timestamp": f"2024-01-{1 + i % 28:02d}T10:00:00Z",
        }
        for i in range(n)
    ]


def llm_cfg(base_url: str, path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "path": str(path),
        "llm": {
            "provider": "openai",
            "config": {
                "model": "gpt-4o-mini",
                "base_url": base_url,
                "api_key": "sk-test",
                "max_retries": 2,
                "timeout": 10,
                **extra,
            },
        },
    }


@pytest.fixture
def srv() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(chat_handler=echo_facts) as s:
        yield s


def count_memories(path: Path) -> tuple[int, int]:
    db = sqlite3.connect(path)
    try:
        total = db.execute("SELECT COUNT(*) FROM memories").fetchone()[0]
        distinct = db.execute("SELECT COUNT(DISTINCT memory) FROM memories").fetchone()[0]
        return total, distinct
    finally:
        db.close()


def test_raw_ingest_without_llm_is_resumable_and_reports_bad_rows(memory: Memory) -> None:
    data = [
        *rows(40),
        {"user_id": "has space", "text": "x"},
        {"user_id": "u"},
        {"_error": "line 99: invalid JSON", "_line": 99},
    ]
    rep = memory.ingest(data)
    assert (rep.total, rep.done, rep.failed, rep.mode) == (43, 40, 3, "raw")
    assert {e["line"] for e in rep.errors} >= {99}
    assert any("whitespace" in e["error"] for e in rep.errors)
    assert memory.stats()["memories"] == 40
    again = memory.ingest(data)
    assert (again.done, again.skipped) == (0, 40)
    assert memory.stats()["memories"] == 40
    hit = memory.search("topic 21", user_id="user3")["results"][0]
    assert hit["memory"] == "message number 3 about topic 21"


def test_live_ingest_survives_a_429_storm_exactly_once(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    srv.rate_limit(every_n=3, retry_after=0.01)
    with Memory(llm_cfg(srv.base_url, store_path, max_retries=1), embedder=embedder) as m:
        rep = m.ingest(rows(60), concurrency=16)
        assert rep.failed == 0, rep.errors
        assert rep.done == 60 and srv.rate_limited_count >= 15
        assert rep.retries > 0  # rows retried beyond the client's own retries
        assert rep.llm_calls == 60 and rep.prompt_tokens > 0
        assert count_memories(store_path) == (60, 60)
        assert m.ingest(rows(60)).skipped == 60


def test_dry_run_estimates_without_calling_or_writing(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    with Memory(llm_cfg(srv.base_url, store_path), embedder=embedder) as m:
        rep = m.ingest(rows(20), dry_run=True)
        assert rep.dry_run and rep.done == 20 and rep.prompt_tokens > 20 * 400
        assert rep.cost_usd is not None and rep.cost_usd > 0
        # the bound with a second pass on every row: more, but less than twice (a shorter input)
        assert rep.cost_usd_max is not None and rep.cost_usd < rep.cost_usd_max < 2 * rep.cost_usd
        cheap = m.ingest(rows(20), dry_run=True, mode="batch")
        assert cheap.cost_usd == pytest.approx(rep.cost_usd / 2)
        custom = m.ingest(rows(20), dry_run=True, prices={"gpt-4o-mini": (0.0, 0.0, 0.0)})
        assert custom.cost_usd == 0.0
    assert srv.count("chat.completions") == 0
    assert count_memories(store_path) == (0, 0)


def test_dry_run_counts_the_configured_prompt_and_instructions(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    """The estimate is of what would be sent: a long custom extraction prompt is asked both
    calls (2 x 20 rows more at worst), custom instructions ride in every call's input."""
    with Memory(llm_cfg(srv.base_url, store_path), embedder=embedder) as m:
        base = m.ingest(rows(20), dry_run=True)
    long_prompt = "Extract only facts about food and drink, in the third person. " * 60
    extra = token_counter()(long_prompt) - token_counter()(EXTRACTION_PROMPT)
    assert extra > 0
    cfg = {**llm_cfg(srv.base_url, store_path), "custom_fact_extraction_prompt": long_prompt}
    with Memory(cfg, embedder=embedder) as m:
        custom = m.ingest(rows(20), dry_run=True)
    assert custom.prompt_tokens - base.prompt_tokens == 20 * extra
    assert custom.cost_usd_max is not None and base.cost_usd_max is not None
    assert custom.cost_usd_max > base.cost_usd_max
    cfg = {**llm_cfg(srv.base_url, store_path), "custom_instructions": "Ignore small talk. " * 10}
    with Memory(cfg, embedder=embedder) as m:
        instructed = m.ingest(rows(20), dry_run=True)
    assert instructed.prompt_tokens > base.prompt_tokens
    assert srv.count("chat.completions") == 0


INGEST_SCRIPT = textwrap.dedent("""
    import json, sys
    from memvault import Memory
    cfg, rows_file, mode = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    rows = [json.loads(line) for line in open(rows_file)]
    with Memory(cfg) as m:
        rep = m.ingest(rows, concurrency=4, mode=mode, poll_interval=0.1)
    print(json.dumps(rep.as_dict()))
""")


def _start_fake(tmp: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    port_file = tmp / "port"
    port_file.unlink(missing_ok=True)  # a restarted server must not be taken as ready early
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.fake_openai",
            "--port-file",
            str(port_file),
            "--script",
            str(Path(__file__)),
            *extra,
        ],
        cwd=REPO,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for _ in range(1200):  # 60 s: a loaded machine starts Python slowly
        if port_file.exists() and port_file.read_text().strip():
            return proc, f"http://127.0.0.1:{port_file.read_text().strip()}/v1"
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("fake server did not start")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# The standalone fake server imports this module as its --script: it uses chat_handler.
chat_handler = echo_facts


def test_kill_9_mid_ingest_then_resume_applies_each_row_once(tmp_path: Path) -> None:
    server, url = _start_fake(tmp_path, "--latency-ms", "150")
    store = tmp_path / "ingest.db"
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows(40)) + "\n")
    cfg_file = tmp_path / "config.json"
    cfg_file.write_text(json.dumps(llm_cfg(url, store)))
    cli = [sys.executable, "-c", "from memvault.cli import main; main()"]
    try:  # the real `memvault ingest` command, killed mid-run
        proc = subprocess.Popen(
            [*cli, "--config", str(cfg_file), "ingest", str(data), "--concurrency", "4"],
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.time() + 120
            while time.time() < deadline:  # kill once some, not all, rows are in
                time.sleep(0.2)
                try:
                    if store.exists() and 5 <= count_memories(store)[0] < 35:
                        break
                except sqlite3.OperationalError:  # the schema is not created yet
                    continue
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        partial = count_memories(store)[0]
        assert 0 < partial < 40
        # Re-running the same command continues where it stopped.
        out = subprocess.run(
            [*cli, "--config", str(cfg_file), "ingest", str(data), "--json"],
            cwd=REPO,
            text=True,
            capture_output=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        rep = json.loads(out.stdout)
        assert rep["failed"] == 0 and rep["skipped"] >= partial
        assert rep["done"] + rep["skipped"] == 40
        assert count_memories(store) == (40, 40)  # every row once: none lost, none twice
        (tmp_path / "prices.json").write_text(json.dumps({"gpt-4o-mini": [1.0, 0.5, 2.0]}))
        dry = subprocess.run(
            [*cli, "--config", str(cfg_file), "ingest", str(data), "--json", "--dry-run"],
            cwd=REPO,
            text=True,
            capture_output=True,
            timeout=300,
        )
        assert dry.returncode == 0 and json.loads(dry.stdout)["prompt_tokens"] > 0
        priced = subprocess.run(
            [
                *cli,
                "--config",
                str(cfg_file),
                "ingest",
                str(data),
                "--json",
                "--dry-run",
                "--prices",
                str(tmp_path / "prices.json"),
            ],
            cwd=REPO,
            text=True,
            capture_output=True,
            timeout=300,
        )
        est = json.loads(priced.stdout)
        expected = (est["prompt_tokens"] * 1.0 + est["completion_tokens"] * 2.0) / 1e6
        assert est["cost_usd"] == pytest.approx(expected)
    finally:
        _stop(server)


def test_batch_mode_survives_a_restart_between_submit_and_results(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    state = tmp_path / "fake-state"
    server, url = _start_fake(tmp_path, "--state-dir", str(state), "--batch-step-polls", "1000")
    store = tmp_path / "batch.db"
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows(12)) + "\n")
    cfg = llm_cfg(url, store)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", INGEST_SCRIPT, json.dumps(cfg), str(data), "batch"],
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.time() + 120
            submitted = 0
            while time.time() < deadline and not submitted:
                time.sleep(0.2)
                if store.exists():
                    db = sqlite3.connect(store)
                    try:
                        submitted = db.execute(
                            "SELECT COUNT(*) FROM journal WHERE state='submitted'"
                        ).fetchone()[0]
                    except sqlite3.OperationalError:
                        submitted = 0
                    finally:
                        db.close()
            assert submitted == 12, proc.stderr.read() if proc.poll() is not None else ""
            proc.send_signal(signal.SIGKILL)  # the process dies while polling
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        _stop(server)  # and the provider side restarts too: batch state is on disk
        server, url2 = _start_fake(
            tmp_path,
            "--state-dir",
            str(state),
            "--port",
            url.rsplit(":", 1)[1].split("/")[0],
            "--batch-step-polls",
            "1",
        )
        with Memory(cfg, embedder=embedder) as m:
            rep = m.ingest(rows(12), mode="batch", poll_interval=0.05)
            assert rep.failed == 0, rep.errors
            assert rep.done == 12 and len(rep.batch_ids) == 1  # resumed, not resubmitted
            assert count_memories(store) == (12, 12)
            assert m.get_all(user_id="user0")["results"][0]["memory"].startswith("Fact: ")
            assert m.ingest(rows(12), mode="batch").skipped == 12
        stats = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import json,sys,urllib.request;print(urllib.request."
                    f"urlopen('{url2.rsplit('/v1', 1)[0]}/_fake/stats').read().decode())",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert stats["counts"].get("batches.create", 0) == 0  # only the first process created
    finally:
        _stop(server)


def test_locomo_reader_yields_sessions_with_dates() -> None:
    got = list(read_rows(LOCOMO))
    assert len(got) >= 10 and all(r["user_id"] and r["messages"] for r in got)
    assert got[0]["timestamp"] == parse_locomo_date(
        json.loads(LOCOMO.read_text())["session_1_date_time"]
    )
    assert got[0]["messages"][0]["name"]
    assert parse_locomo_date("1:56 pm on 8 May, 2023") == "2023-05-08T13:56:00+00:00"


def test_jsonl_and_csv_readers_report_bad_lines(tmp_path: Path) -> None:
    j = tmp_path / "rows.jsonl"
    j.write_text('{"user_id": "a", "text": "hi"}\nnot json\n[1]\n')
    got = list(read_rows(j))
    assert got[0]["text"] == "hi" and "invalid JSON" in got[1]["_error"]
    assert "JSON object" in got[2]["_error"]
    c = tmp_path / "rows.csv"
    c.write_text('user_id,text,metadata\nb,hello,"{""k"": 1}"\nc,bad,{oops\n')
    got = list(read_rows(c))
    assert got[0]["metadata"] == {"k": 1} and "metadata is not JSON" in got[1]["_error"]


def test_ingest_env_is_clean() -> None:
    # The standalone server used above must not leak into other tests' environment.
    assert "OPENAI_BASE_URL" not in os.environ


def test_two_llm_ingests_in_one_process(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    # Each sync ingest runs its own event loop; the async client must not outlive it.
    with Memory(llm_cfg(srv.base_url, store_path), embedder=embedder) as m:
        assert m.ingest(rows(5)).done == 5
        assert m.ingest(rows(10)).done == 5
        assert count_memories(store_path) == (10, 10)


# -- Batch API: the second pass (issue 16) -------------------------------------------------------

DROPPY_ROWS = [
    {"user_id": "ana", "text": "I adopted a cat named Pixel. My brother Tiago is a pilot in Faro."},
    {"user_id": "bo", "text": "I keep bees in my garden."},
]
ANA = {"User says: I adopted a cat named Pixel", "User says: My brother Tiago is a pilot in Faro"}


class SmallModel:
    """Script: drops every sentence about Tiago unless it is the only one asked about.

    That is what the real small model did (issue 16): a fact among others silently gone,
    answered when asked alone. Records each prompt's user part.
    """

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.systems: list[str] = []

    def __call__(self, req: dict[str, Any]) -> dict[str, Any]:
        user = req["messages"][-1]["content"]
        self.prompts.append(user)
        self.systems.append(req["messages"][0]["content"])
        said = [
            s
            for line in user.split("NEW MESSAGES:\n", 1)[1].splitlines()
            for s in re.split(r"(?<=[.!?])\s+", line.partition(": ")[2])
            if s
        ]
        keep = said if len(said) == 1 else [s for s in said if "Tiago" not in s]
        return {"memories": [{"event": "ADD", "text": "User says: " + s.rstrip(".")} for s in keep]}


class Crash(Exception):
    """Stands for the process dying at a chosen point (not a MemvaultError: nothing catches it)."""


def memories_of(m: Memory, user: str) -> list[str]:
    return sorted(r["memory"] for r in m.get_all(user_id=user)["results"])


def test_batch_row_whose_answer_dropped_a_fact_gets_it_in_a_second_round(
    store_path: Path, embedder: LocalEmbedder
) -> None:
    model = SmallModel()
    with (
        FakeOpenAI(chat_handler=model) as srv,
        Memory(llm_cfg(srv.base_url, store_path), embedder=embedder) as m,
    ):
        rep = m.ingest(DROPPY_ROWS, mode="batch", poll_interval=0.01)
        assert rep.failed == 0, rep.errors
        assert rep.done == 2 and len(rep.batch_ids) == 2  # the first round, then one follow-up
        assert srv.count("batch_line.chat.completions") == 3  # two rows + one second question
        assert srv.count("chat.completions") == 0  # no live call: both rounds at batch price
        second = model.prompts[-1]
        assert "My brother Tiago is a pilot in Faro." in second and "Pixel" not in second
        # as the live second pass asks it: the facts-only instruction, no memories shown
        assert model.systems[-1] == FACTS_PROMPT and "EXISTING MEMORIES" not in second
        assert memories_of(m, "ana") == sorted(ANA)
        assert memories_of(m, "bo") == ["User says: I keep bees in my garden"]
        assert rep.llm_calls == 3  # ana's row cost two calls, bo's one
        row = m._engine.store.journal_get(_key_of(m, "ana"))
        assert row is not None and row["state"] == "done" and "first" not in row["payload"]
        assert row["payload"]["missed"] == [["user", "My brother Tiago is a pilot in Faro."]]
        again = m.ingest(DROPPY_ROWS, mode="batch", poll_interval=0.01)
        assert (again.done, again.skipped) == (0, 2)
        assert srv.count("batch_line.chat.completions") == 3
    assert count_memories(store_path) == (3, 3)


def _key_of(m: Memory, user: str) -> str:
    rows = [
        r
        for r in m._engine.store.journal_all()
        if json.loads(r["payload"])["add"].get("user_id") == user
    ]
    assert len(rows) == 1
    return str(rows[0]["key"])


def test_batch_rows_fully_covered_make_no_second_request(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    with Memory(llm_cfg(srv.base_url, store_path), embedder=embedder) as m:
        rep = m.ingest(rows(8), mode="batch", poll_interval=0.01)
        assert rep.failed == 0 and rep.done == 8 and rep.llm_calls == 8
        assert len(rep.batch_ids) == 1 and srv.count("batches.create") == 1
        assert srv.count("batch_line.chat.completions") == 8
    assert count_memories(store_path) == (8, 8)


@pytest.mark.parametrize("crash_at", ["mid_first_round", "before_followup", "after_followup"])
def test_batch_resumes_between_rounds_without_losing_or_repeating(
    crash_at: str, store_path: Path, embedder: LocalEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run dies between the rounds; the next run finishes each row once, paying nothing twice.

    ``mid_first_round``: ana's answer was journaled as awaiting its follow-up, bo's not yet
    applied. ``before_followup``: every first answer taken, no follow-up batch yet.
    ``after_followup``: the follow-up batch exists and is journaled, never collected.
    """
    from memvault import batch_api

    model = SmallModel()
    take, submit = batch_api._take_line, batch_api._submit_followup
    calls = {"take": 0}

    def take_then_die(*a: Any) -> bool:
        calls["take"] += 1
        if calls["take"] == 2:
            raise Crash
        return take(*a)

    def die_before(*a: Any) -> str:
        raise Crash

    def die_after(*a: Any) -> str:
        submit(*a)
        raise Crash

    patch = {
        "mid_first_round": ("_take_line", take_then_die),
        "before_followup": ("_submit_followup", die_before),
        "after_followup": ("_submit_followup", die_after),
    }[crash_at]
    with FakeOpenAI(chat_handler=model) as srv:
        cfg = llm_cfg(srv.base_url, store_path)
        with Memory(cfg, embedder=embedder) as m:
            monkeypatch.setattr(batch_api, *patch)
            with pytest.raises(Crash):
                m.ingest(DROPPY_ROWS, mode="batch", poll_interval=0.01)
            monkeypatch.undo()
            assert memories_of(m, "ana") == []  # nothing of the row applied between rounds
        with Memory(cfg, embedder=embedder) as m:
            rep = m.ingest(DROPPY_ROWS, mode="batch", poll_interval=0.01)
            assert rep.failed == 0, rep.errors
            assert rep.done + rep.skipped == 2
            assert memories_of(m, "ana") == sorted(ANA)
            assert memories_of(m, "bo") == ["User says: I keep bees in my garden"]
        assert srv.count("batch_line.chat.completions") == 3  # no question asked twice
        assert srv.count("batches.create") == 2  # the first round and one follow-up
    assert count_memories(store_path) == (3, 3)


def second_round_fails_once(model: SmallModel) -> Callable[[dict[str, Any]], Any]:
    """``model``, except that the first question about Tiago alone gets a 500."""
    failures = [Fault.server_error()]

    def answer(req: dict[str, Any]) -> Any:
        out = model(req)
        if len(out["memories"]) == 1 and "Tiago" in out["memories"][0]["text"] and failures:
            return failures.pop()
        return out

    return answer


def test_a_failed_second_round_line_fails_the_row_and_a_rerun_completes_it(
    store_path: Path, embedder: LocalEmbedder
) -> None:
    """As in a live add, a failed second call fails the row (journaled, nothing applied)."""
    with (
        FakeOpenAI(chat_handler=second_round_fails_once(SmallModel())) as srv,
        Memory(llm_cfg(srv.base_url, store_path), embedder=embedder) as m,
    ):
        rep = m.ingest(DROPPY_ROWS, mode="batch", poll_interval=0.01)
        assert (rep.done, rep.failed) == (1, 1) and "batch line failed" in rep.errors[0]["error"]
        assert memories_of(m, "ana") == []  # the first round's fact waits with its row
        assert m._engine.store.journal_get(_key_of(m, "ana"))["state"] == "failed"  # type: ignore[index]
        again = m.ingest(DROPPY_ROWS, mode="batch", poll_interval=0.01)
        assert (again.done, again.skipped, again.failed) == (1, 1, 0)
        assert memories_of(m, "ana") == sorted(ANA)
    assert count_memories(store_path) == (3, 3)


def test_a_failed_batch_row_is_retried_live_by_retry_pending(
    store_path: Path, embedder: LocalEmbedder
) -> None:
    """``pending()`` lists failed batch rows too; ``retry_pending()`` runs them as live adds."""
    with (
        FakeOpenAI(chat_handler=second_round_fails_once(SmallModel())) as srv,
        Memory(llm_cfg(srv.base_url, store_path), embedder=embedder) as m,
    ):
        assert m.ingest(DROPPY_ROWS, mode="batch", poll_interval=0.01).failed == 1
        assert [p["payload"]["add"]["user_id"] for p in m.pending()] == ["ana"]
        assert m.retry_pending() == {"retried": 1, "done": 1, "failed": []}
        assert memories_of(m, "ana") == sorted(ANA)  # live, with its own second pass
        assert m.pending() == []
        assert m.ingest(DROPPY_ROWS, mode="batch", poll_interval=0.01).skipped == 2
