"""The ``memvault`` command line: commands, JSON output, export/import, one-line errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from memvault import Memory
from memvault.cli import app
from memvault.embedding import LocalEmbedder

SCRIPT = Path(sys.executable).parent / "memvault"


@pytest.fixture(scope="module")
def emb() -> LocalEmbedder:
    """One loaded model for the module, for stores built directly (the CLI loads its own)."""
    e = LocalEmbedder()
    e.load()
    return e


@dataclasses.dataclass
class Seeded:
    path: Path
    ids: dict[str, str]


@pytest.fixture
def seeded(tmp_path: Path, emb: LocalEmbedder) -> Iterator[Seeded]:
    """A store with an updated memory, a deleted one, metadata and two users."""
    path = tmp_path / "seed.db"
    with Memory(path=path, embedder=emb) as m:
        ids = {
            "sushi": m.add("I love sushi and ramen", user_id="alice", metadata={"topic": "food"})[
                "results"
            ][0]["id"],
            "sister": m.add("My sister lives in Porto", user_id="alice")["results"][0]["id"],
            "cats": m.add("I am allergic to cats", user_id="alice")["results"][0]["id"],
            "bob": m.add("Bob plays the cello", user_id="bob")["results"][0]["id"],
        }
        m.update(ids["sister"], "My sister lives in Lisbon", changed_by="tester")
        m.delete(ids["cats"])
    yield Seeded(path, ids)


@pytest.fixture
def cli(tmp_path: Path, emb: LocalEmbedder, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Invoke the CLI in-process; MEMVAULT_HOME points into tmp_path, tables are wide.

    The stores the CLI opens share the module's loaded model instead of loading one per
    command (the installed-script tests below exercise the real, lazily loaded one).
    """
    monkeypatch.setattr("memvault.engine.make_embedder", lambda *a, **k: emb)
    runner = CliRunner()
    env = {"MEMVAULT_HOME": str(tmp_path / "home"), "MEMVAULT_CONFIG": None, "COLUMNS": "200"}

    def run(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=input, env=env)

    return run


def _one_error_line(result: Any) -> str:
    """Errors are exactly one ``error: ...`` line on stderr, nothing on stdout."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


# -- commands -------------------------------------------------------------------------------------


def test_add_then_search_finds_it(cli: Any, tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    r = cli(
        "add",
        "I moved to Berlin in 2021",
        "--user",
        "u1",
        "--metadata",
        '{"city": "Berlin"}',
        "--no-infer",
        "--path",
        db,
    )
    assert r.exit_code == 0, r.stderr
    assert "ADD" in r.stdout and "Berlin" in r.stdout
    cli("add", "My favourite colour is green", "-u", "u1", "--path", db)

    r = cli("search", "where do I live", "--user", "u1", "--path", db, "--json")
    assert r.exit_code == 0, r.stderr
    hits = json.loads(r.stdout)["results"]
    assert hits[0]["memory"] == "I moved to Berlin in 2021"
    assert hits[0]["metadata"] == {"city": "Berlin"}

    r = cli("search", "where do I live", "-u", "u1", "--path", db, "--explain", "-k", "1")
    assert r.exit_code == 0, r.stderr
    assert hits[0]["id"] in r.stdout and "dense" in r.stdout
    assert "favourite" not in r.stdout  # --top-k 1

    r = cli(
        "search",
        "where do I live",
        "-u",
        "u1",
        "--path",
        db,
        "--json",
        "--filters",
        '{"city": "Paris"}',
    )
    assert json.loads(r.stdout)["results"] == []


def test_list_get_history_output(cli: Any, seeded: Seeded) -> None:
    db, ids = str(seeded.path), seeded.ids
    r = cli("list", "--user", "alice", "--path", db)
    assert r.exit_code == 0, r.stderr
    assert ids["sushi"] in r.stdout and ids["sister"] in r.stdout
    assert ids["cats"] not in r.stdout and ids["bob"] not in r.stdout  # deleted; other user
    assert "Lisbon" in r.stdout

    r = cli("get", ids["sushi"], "--path", db)
    assert r.exit_code == 0, r.stderr
    assert "I love sushi and ramen" in r.stdout and '{"topic": "food"}' in r.stdout

    r = cli("history", ids["sister"], "--path", db)
    assert r.exit_code == 0, r.stderr
    assert "ADD" in r.stdout and "UPDATE" in r.stdout and "tester" in r.stdout
    assert "Porto" in r.stdout and "Lisbon" in r.stdout

    # A deleted memory's history is still there.
    r = cli("history", ids["cats"], "--path", db, "--json")
    assert [e["event"] for e in json.loads(r.stdout)] == ["ADD", "DELETE"]


def test_json_output_parses(cli: Any, seeded: Seeded) -> None:
    db, ids = str(seeded.path), seeded.ids
    # --json works before the command (global) and after it.
    r = cli("--json", "--path", db, "list", "-u", "alice", "--top-k", "1")
    assert [x["id"] for x in json.loads(r.stdout)["results"]] == [ids["sister"]]
    got = json.loads(cli("get", ids["sushi"], "--path", db, "--json").stdout)
    assert got["memory"] == "I love sushi and ramen" and got["user_id"] == "alice"
    stats = json.loads(cli("stats", "--path", db, "--json").stdout)
    assert stats["memories"] == 3 and stats["history_events"] == 6
    assert stats["spaces"]["default"]["dims"] == 384
    hist = json.loads(cli("history", ids["sister"], "--path", db, "--json").stdout)
    assert [e["event"] for e in hist] == ["ADD", "UPDATE"]


def test_stats_table(cli: Any, seeded: Seeded) -> None:
    r = cli("stats", "--path", str(seeded.path))
    assert r.exit_code == 0, r.stderr
    assert "memories" in r.stdout and "default (384 dims)" in r.stdout


def test_delete_one_and_all(cli: Any, seeded: Seeded) -> None:
    db, ids = str(seeded.path), seeded.ids
    r = cli("delete", ids["sushi"], "--path", db)
    assert r.exit_code == 0 and ids["sushi"] in r.stdout
    r = cli("delete", "--all", "--user", "alice", "--path", db, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["deleted"] == 1
    assert json.loads(cli("list", "-u", "alice", "--path", db, "--json").stdout)["results"] == []
    assert len(json.loads(cli("list", "-u", "bob", "--path", db, "--json").stdout)["results"]) == 1


def test_reindex(cli: Any, seeded: Seeded) -> None:
    db = str(seeded.path)
    r = cli("reindex", "--path", db, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["keyword"] == 3
    r = cli("reindex", "--path", db)
    assert "keyword index: 3" in r.stdout


# -- export / import --------------------------------------------------------------------------------


def _dump(path: Path, emb: LocalEmbedder) -> dict[str, Any]:
    with Memory(path=path, embedder=emb) as m:
        store = m._engine.store
        memories = []
        for r in store.iter_all():
            d = dataclasses.asdict(r)
            d.pop("seq")
            memories.append((d, {k: v.tobytes() for k, v in store.all_vectors(r.seq).items()}))
        return {"memories": memories, "history": list(store.history_rows())}


def test_export_import_round_trip(
    cli: Any, seeded: Seeded, tmp_path: Path, emb: LocalEmbedder
) -> None:
    out, db2 = tmp_path / "backup.jsonl", tmp_path / "restored.db"
    r = cli("export", str(out), "--path", str(seeded.path))
    assert r.exit_code == 0, r.stderr
    assert "exported 3 memories" in r.stdout
    r = cli("import", str(out), "--path", str(db2), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == {
        "memories": 3,
        "skipped": 0,
        "history": 6,
        "history_skipped": 0,
        "embedded": 0,
    }
    assert _dump(db2, emb) == _dump(seeded.path, emb)

    r = cli("import", str(out), "--path", str(db2))  # again: nothing new
    assert r.exit_code == 0, r.stderr
    assert "imported 0 memories (3 already present" in r.stdout
    assert _dump(db2, emb) == _dump(seeded.path, emb)


def test_export_stdout_import_stdin_scoped(cli: Any, seeded: Seeded, tmp_path: Path) -> None:
    r = cli("export", "-", "--user", "bob", "--path", str(seeded.path))
    assert r.exit_code == 0, r.stderr
    assert r.stderr.strip() == "exported 1 memory"  # the summary stays off stdout
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0]["type"] == "memvault-export"
    assert [x["memory"] for x in lines if x["type"] == "memory"] == ["Bob plays the cello"]

    db2 = str(tmp_path / "bob.db")
    r = cli("import", "-", "--path", db2, "--json", input=r.stdout)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["memories"] == 1
    got = json.loads(cli("get", seeded.ids["bob"], "--path", db2, "--json").stdout)
    assert got["memory"] == "Bob plays the cello"


def test_import_hand_written_jsonl(cli: Any, tmp_path: Path) -> None:
    src = tmp_path / "notes.jsonl"
    src.write_text(
        '{"type": "memory", "memory": "I take the 8:15 train to work", "user_id": "carol"}\n',
        encoding="utf-8",
    )
    db = str(tmp_path / "c.db")
    r = cli("import", str(src), "--path", db)
    assert r.exit_code == 0, r.stderr
    assert "imported 1 memory (0 already present, 1 embedded)" in r.stdout
    r = cli("search", "how do I commute", "-u", "carol", "--path", db, "--json")
    assert json.loads(r.stdout)["results"][0]["memory"] == "I take the 8:15 train to work"


# -- errors -------------------------------------------------------------------------------------


def test_unknown_memory_id_is_one_line(cli: Any, seeded: Seeded) -> None:
    db = str(seeded.path)
    assert "no memory with id 'nope'" in _one_error_line(cli("get", "nope", "--path", db))
    assert "nope" in _one_error_line(cli("history", "nope", "--path", db))
    assert "nope" in _one_error_line(cli("delete", "nope", "--path", db))
    # In another user's scope, the memory is not found either.
    line = _one_error_line(cli("get", seeded.ids["bob"], "-u", "alice", "--path", db))
    assert "in this scope" in line


def test_malformed_json_options(cli: Any, seeded: Seeded) -> None:
    db = str(seeded.path)
    line = _one_error_line(cli("list", "-u", "alice", "--filters", "{bad", "--path", db))
    assert "--filters is not valid JSON" in line
    line = _one_error_line(cli("add", "x", "-u", "a", "--metadata", "[1]", "--path", db))
    assert "--metadata must be a JSON object" in line
    line = _one_error_line(
        cli("list", "-u", "alice", "--filters", '{"n": {"$bogus": 1}}', "--path", db)
    )
    assert "bogus" in line  # the engine's FilterError, as one line


def test_store_path_is_a_directory(cli: Any, tmp_path: Path) -> None:
    line = _one_error_line(cli("stats", "--path", str(tmp_path)))
    assert "is a directory" in line


def test_delete_all_needs_a_scope(cli: Any, seeded: Seeded) -> None:
    line = _one_error_line(cli("delete", "--all", "--path", str(seeded.path)))
    assert "needs a scope" in line
    assert json.loads(cli("stats", "--path", str(seeded.path), "--json").stdout)["memories"] == 3


def test_usage_errors_exit_2(cli: Any, seeded: Seeded) -> None:
    assert cli("delete", "--path", str(seeded.path)).exit_code == 2  # neither ID nor --all
    assert cli("delete", "x", "--all", "-u", "a", "--path", str(seeded.path)).exit_code == 2
    assert cli("search").exit_code == 2
    assert cli("frobnicate").exit_code == 2


def test_scope_required(cli: Any, seeded: Seeded) -> None:
    assert "no scope given" in _one_error_line(cli("list", "--path", str(seeded.path)))


def test_import_errors(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"type": "memory", "memory": "ok", "user_id": "u", "vectors": {}}\n{oops\n',
        encoding="utf-8",
    )
    line = _one_error_line(cli("import", str(bad), "--path", str(tmp_path / "x.db")))
    assert "line 2" in line and "not valid JSON" in line
    line = _one_error_line(
        cli("import", str(tmp_path / "missing.jsonl"), "--path", str(tmp_path / "x.db"))
    )
    assert "missing.jsonl" in line
    line = _one_error_line(
        cli("export", str(tmp_path / "no" / "such" / "dir.jsonl"), "--path", str(tmp_path / "x.db"))
    )
    assert "does not exist" in line


# -- the installed script, in a real process --------------------------------------------------


def _script(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEMVAULT_HOME": str(home), "COLUMNS": "200"}
    env.pop("MEMVAULT_CONFIG", None)
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_installed_script_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"  # default store location: $MEMVAULT_HOME/memvault.db
    r = _script("add", "I keep my passport in the blue drawer", "-u", "dana", home=home)
    assert r.returncode == 0, r.stderr
    assert (home / "memvault.db").exists()
    r = _script("search", "where is my passport", "-u", "dana", "--json", home=home)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"][0]["memory"] == "I keep my passport in the blue drawer"
    r = _script("get", "does-not-exist", home=home)
    assert r.returncode == 1
    assert r.stderr == "error: no memory with id 'does-not-exist'\n" and r.stdout == ""
    r = _script("--version", home=home)
    assert r.returncode == 0 and r.stdout.startswith("memvault ")


def test_read_commands_do_not_load_the_model(seeded: Seeded, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from memvault.cli import app\n"
        f"db, mid = {str(seeded.path)!r}, {seeded.ids['sister']!r}\n"
        "for args in (['list', '-u', 'alice'], ['get', mid], ['history', mid], ['stats'],\n"
        f"             ['export', {str(tmp_path / 'e.jsonl')!r}], ['reindex']):\n"
        "    r = CliRunner().invoke(app, [*args, '--path', db])\n"
        "    assert r.exit_code == 0, (args, r.output)\n"
        "print('onnxruntime' in sys.modules, 'tokenizers' in sys.modules)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False False"
