"""LangGraph's own store, checkpointer and agent tests, run against memvault.

No upstream code is committed: the PyPI sdists of the *installed* versions of
langgraph-checkpoint, langgraph-checkpoint-sqlite and langgraph-prebuilt ship
their tests; they are downloaded (``pip download --no-deps --no-binary :all:``)
into the pytest cache at test time, and the harness in ``tests/upstream/``
rebinds the stores and savers those tests construct (``MemvaultStore``,
``MemvaultSaver``). The checkpointer suite also runs LangGraph's conformance
package (langgraph-checkpoint-conformance, a test dependency), capability by
capability. Each suite runs twice in a
subprocess (its own rootdir, ini and ``tests`` package): once against
LangGraph's ``InMemoryStore`` (the reference) and once against memvault. The
contract: every selected upstream test passes on memvault (including all that
pass on the reference, and the TTL tests the reference cannot run), except the
documented ones in ``EXPECTED_FAILURES``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.sdists import sdist_tests

pytestmark = pytest.mark.peer

HARNESS = Path(__file__).parent / "upstream"
SDISTS = ("langgraph-checkpoint", "langgraph-checkpoint-sqlite", "langgraph-prebuilt")

#: Upstream tests that cannot pass on memvault, by test id (pattern: prefix match), and why.
EXPECTED_FAILURES: dict[str, str] = {
    "peer_store.py::test_sqlite__vector_store_initialization": (
        "asserts SqliteStore internals: index_config['text_fields'] (our IndexConfig key is "
        "LangGraph's 'fields') and sqlite-vec tables on store.conn"
    ),
    "peer_store.py::test_sqlite__sql_injection_vulnerability": (
        "expects SqliteStore's ValueError('Invalid filter key') for a key with quotes; memvault "
        "filters never build SQL, so that key is simply a (missing) value key: no match"
    ),
    "peer_store.py::test_ttl__ttl_override_default": (
        "SqliteStore semantics: its reads refresh no TTL unless refresh_on_read=True; memvault "
        "follows PostgresStore (reads refresh by default), so the get at 2 s extends the 5 s "
        "default TTL and the item is still there at 6 s"
    ),
    "peer_checkpoint.py::TestSqliteSaver::test_checkpoint_search_sql_injection_prevention": (
        "expects SqliteSaver's ValueError('Invalid filter key') for a metadata filter key with "
        "quotes; memvault filters never build SQL, so that key is a (missing) metadata key: "
        "no match, nothing leaks (InMemorySaver also accepts any key)"
    ),
}


@dataclass(frozen=True)
class Outcome:
    status: str  # passed | failed | error | skipped | xfailed
    message: str


def _cache_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("memvault-langgraph-upstream"))
    return tmp_path_factory.mktemp("upstream-cache")


def _prepare_store_suite(run: Path, cache: Path) -> None:
    tests = run / "tests"
    tests.mkdir(parents=True)
    (tests / "__init__.py").write_text("")
    sqlite = sdist_tests("langgraph-checkpoint-sqlite", cache)
    core = sdist_tests("langgraph-checkpoint", cache)
    for name in ("test_store.py", "test_async_store.py", "test_ttl.py"):
        shutil.copy(sqlite / name, tests / name)
    shutil.copy(core / "test_store.py", tests / "test_inmem_store.py")
    shutil.copy(core / "embed_test_utils.py", tests / "embed_test_utils.py")
    for name in ("memvault_peer.py", "peer_store.py"):
        shutil.copy(HARNESS / name, run / name)


def _prepare_checkpoint_suite(run: Path, cache: Path) -> None:
    tests = run / "tests"
    tests.mkdir(parents=True)
    (tests / "__init__.py").write_text("")
    sqlite = sdist_tests("langgraph-checkpoint-sqlite", cache)
    core = sdist_tests("langgraph-checkpoint", cache)
    for name in (
        "test_sqlite.py",
        "test_aiosqlite.py",
        "test_get_delta_channel_history.py",
        "test_delta_parent_walk.py",
    ):
        shutil.copy(sqlite / name, tests / name)
    shutil.copy(core / "test_memory.py", tests / "test_memory.py")
    for name in ("memvault_peer.py", "peer_checkpoint.py"):
        shutil.copy(HARNESS / name, run / name)


def _prepare_agent_suite(run: Path, cache: Path) -> None:
    shutil.copytree(sdist_tests("langgraph-prebuilt", cache), run / "tests")
    for name in ("memvault_peer.py", "peer_agent.py"):
        shutil.copy(HARNESS / name, run / name)


INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
pythonpath = .
python_files = peer_*.py
timeout = 300
markers =
    flaky: upstream marker; the harness retries such tests itself
filterwarnings =
    ignore::DeprecationWarning
"""


def _run(
    run: Path, module: str, mode: str, noconftest: bool, pg_dsn: str | None = None
) -> dict[str, Outcome]:
    """Run one upstream suite; ``pg_dsn``: memvault's stores in that PostgreSQL database."""
    (run / "pytest.ini").write_text(INI)
    tag = f"{mode}-postgres" if pg_dsn else mode
    report = run / f"report-{tag}.xml"
    scratch = run / f"scratch-{tag}"
    scratch.mkdir()
    env = {
        **os.environ,
        "MEMVAULT_PEER_STORE": mode,
        "MEMVAULT_PEER_TMP": str(scratch),
        "MEMVAULT_HOME": str(scratch / "home"),
        "LANGCHAIN_TRACING_V2": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if pg_dsn:
        env["MEMVAULT_PEER_PG_DSN"] = pg_dsn
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(run / "pytest.ini"),
        "--rootdir",
        str(run),
        "-p",
        "no:cacheprovider",
        "-q",
        "--junitxml",
        str(report),
        module,
    ]
    if noconftest:
        cmd.append("--noconftest")
    proc = subprocess.run(cmd, cwd=run, env=env, capture_output=True, text=True, timeout=1800)
    if not report.exists():
        pytest.fail(
            f"upstream run ({module}, {mode}) produced no report:\n{proc.stdout[-5000:]}"
            f"\n{proc.stderr[-5000:]}"
        )
    return _parse(report, module)


def _parse(report: Path, module: str) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for case in ET.parse(report).iter("testcase"):
        classname = case.get("classname", "")
        cls = classname.split(".", 1)[1] + "::" if "." in classname else ""
        test_id = f"{module}::{cls}{case.get('name')}"
        status, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                status, message = (
                    "failed" if child.tag == "failure" else "error",
                    (child.get("message") or "").splitlines()[0][:300]
                    if child.get("message")
                    else "",
                )
                break
            if child.tag == "skipped":
                xfail = child.get("type") == "pytest.xfail"
                status, message = ("xfailed" if xfail else "skipped", child.get("message") or "")
        outcomes[test_id] = outcome_merge(outcomes.get(test_id), Outcome(status, message))
    return outcomes


def outcome_merge(old: Outcome | None, new: Outcome) -> Outcome:
    """A test id reported twice (call + teardown error) keeps the worse outcome."""
    if old is None or old.status == "passed":
        return new
    return old


@dataclass(frozen=True)
class SuiteResult:
    reference: dict[str, Outcome]
    memvault: dict[str, Outcome]


@pytest.fixture(scope="module")
def upstream(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, SuiteResult]]:
    cache = _cache_dir(request, tmp_path_factory)
    root = tmp_path_factory.mktemp("upstream")
    suites = {
        "peer_store.py": (_prepare_store_suite, False),
        "peer_checkpoint.py": (_prepare_checkpoint_suite, False),
        "peer_agent.py": (_prepare_agent_suite, True),
    }
    for module, (prepare, _) in suites.items():
        prepare(root / module.removesuffix(".py"), cache)
    # Reference runs are quick and in parallel; memvault runs one at a time, as the TTL tests
    # measure wall-clock time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        refs = {
            m: pool.submit(_run, root / m.removesuffix(".py"), m, "reference", nc)
            for m, (_, nc) in suites.items()
        }
        ours = {
            m: _run(root / m.removesuffix(".py"), m, "memvault", nc)
            for m, (_, nc) in suites.items()
        }
        yield {m: SuiteResult(refs[m].result(), ours[m]) for m in suites}


def _expected_failure(test_id: str) -> str | None:
    for prefix, reason in EXPECTED_FAILURES.items():
        if test_id == prefix or test_id.startswith(prefix + "["):
            return reason
    return None


def _check(result: SuiteResult, minimum: int) -> str:
    """Every selected upstream test passes on memvault, bar the documented expected failures.

    That includes every test passing on the reference (a test the harness failed to
    collect on memvault counts as failing) and the TTL tests the reference cannot run.
    Returns a one-line summary.
    """
    required = set(result.memvault) | {
        t for t, o in result.reference.items() if o.status == "passed"
    }
    assert len(required) >= minimum, (
        f"only {len(required)} upstream tests selected (expected >= {minimum}); "
        "did the upstream suite change?"
    )
    broken, stale, expected = [], [], []
    for test_id in sorted(required):
        got = result.memvault.get(test_id, Outcome("missing", "not collected on memvault"))
        reason = _expected_failure(test_id)
        if got.status == "passed" and reason is not None:
            stale.append(test_id)
        elif got.status != "passed" and reason is None:
            broken.append(f"{test_id}: {got.status}: {got.message}")
        elif got.status != "passed":
            expected.append(test_id)
    assert not broken, "upstream tests failing on MemvaultStore:\n" + "\n".join(broken)
    assert not stale, "expected failures now pass; remove them from EXPECTED_FAILURES:\n" + (
        "\n".join(stale)
    )
    ref_passed = sum(o.status == "passed" for o in result.reference.values())
    return (
        f"{len(required) - len(expected)} passed, {len(expected)} expected failures "
        f"(reference implementation: {ref_passed} passed of {len(result.reference)})"
    )


def test_langgraph_store_suite(upstream: dict[str, SuiteResult]) -> None:
    """langgraph-checkpoint(-sqlite) store tests: sync, async, vector, namespaces, TTL."""
    print(_check(upstream["peer_store.py"], minimum=150))


@pytest.fixture(scope="module")
def upstream_store_postgres(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SuiteResult]:
    """The store suite with MemvaultStore on the PostgreSQL backend (a database of its own).

    Its own run directory and reference run, so it does not wait for the other suites.
    """
    server = request.getfixturevalue("pg_server")
    cache = _cache_dir(request, tmp_path_factory)
    run = tmp_path_factory.mktemp("upstream-pg") / "peer_store"
    _prepare_store_suite(run, cache)
    dsn = server.new_database()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            ref = pool.submit(_run, run, "peer_store.py", "reference", False)
            ours = _run(run, "peer_store.py", "memvault", False, pg_dsn=dsn)
            yield SuiteResult(ref.result(), ours)
    finally:
        server.drop_database(dsn)


def test_langgraph_store_suite_postgres(upstream_store_postgres: SuiteResult) -> None:
    """The same store suite (TTL and omit_expired included) on the PostgreSQL backend."""
    print(_check(upstream_store_postgres, minimum=150))


def test_langgraph_checkpointer_suite(upstream: dict[str, SuiteResult]) -> None:
    """langgraph-checkpoint(-sqlite) saver tests and the conformance suite, on MemvaultSaver."""
    print(_check(upstream["peer_checkpoint.py"], minimum=35))


def test_langgraph_prebuilt_agent_store_suite(upstream: dict[str, SuiteResult]) -> None:
    """langgraph-prebuilt tests that give an agent / ToolNode a store."""
    print(_check(upstream["peer_agent.py"], minimum=5))
