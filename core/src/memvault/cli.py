"""The ``memvault`` command line: inspect, search, edit, back up and restore a store.

Why a CLI at all: memory an agent wrote is data a person must be able to audit
(what does it know about user X, when did that change, who changed it) and move
(back it up, restore it, copy one user to another machine) without writing
Python. Every command is a thin shell over the public ``Memory`` API or
``memvault.transfer``, so the CLI never behaves differently from the library.

Errors: anything memvault raises on purpose, a file that cannot be read or
written, and bad JSON in an option become ONE line on stderr
(``error: <message>``) and exit code 1; usage mistakes exit with 2 (typer's
convention). Unexpected exceptions are bugs and keep their traceback.

Startup: the embedding model loads lazily, on the first embed, so commands that
never embed (``list``, ``get``, ``history``, ``stats``, ``delete``, ``export``)
never load it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from memvault.errors import MemvaultError, NotFoundError

if TYPE_CHECKING:
    from rich.console import Console

    from memvault.memory import Memory


class CliError(Exception):
    """A mistake in what the user passed that typer cannot see (e.g. bad JSON in an option)."""


def _fail(message: str) -> NoReturn:
    """Print the one-line error and exit 1."""
    one_line = " ".join(message.split()) or "unknown error"
    typer.echo(f"error: {one_line}", err=True)
    raise typer.Exit(1)


def _os_message(e: OSError) -> str:
    if e.filename is not None and e.strerror:
        return f"{e.strerror}: {e.filename}"
    return str(e)


class _Group(TyperGroup):
    """Turns the errors a user can act on into one line on stderr (see module docstring)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader went away (``memvault export - | head``): not an error worth a line.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(1) from None
        except (MemvaultError, CliError) as e:
            _fail(str(e))
        except OSError as e:
            _fail(_os_message(e))
        except sqlite3.Error as e:  # anything the store did not already wrap
            _fail(f"storage: {e}")
        except UnicodeDecodeError as e:
            _fail(f"input is not valid UTF-8: {e}")


app = typer.Typer(
    name="memvault",
    cls=_Group,
    help="Long-term memory for AI agents: inspect, search, edit, export and import a store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


# -- shared options ----------------------------------------------------------------------------

PathOpt = Annotated[
    Path | None,
    typer.Option(
        "--path",
        "-p",
        help="Store file (default: $MEMVAULT_HOME/memvault.db).",
        dir_okay=True,
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
UserOpt = Annotated[str | None, typer.Option("--user", "-u", help="Scope: user id.")]
AgentOpt = Annotated[str | None, typer.Option("--agent", "-a", help="Scope: agent id.")]
RunOpt = Annotated[str | None, typer.Option("--run", "-r", help="Scope: run id.")]
FiltersOpt = Annotated[
    str | None,
    typer.Option("--filters", "-f", help='Metadata filter as JSON, e.g. \'{"topic": "food"}\'.'),
]


@dataclass(slots=True)
class _Globals:
    path: Path | None = None
    json: bool = False
    config: Path | None = None


def _version(value: bool) -> None:
    if value:
        from memvault import __version__

        typer.echo(f"memvault {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    path: PathOpt = None,
    json_out: JsonOpt = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="MEMVAULT_CONFIG",
            help="JSON config file (memvault or mem0 shape), e.g. to pick the embedder.",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Long-term memory for AI agents: inspect, search, edit, export and import a store."""
    ctx.obj = _Globals(path, json_out, config)


def _globals(ctx: typer.Context, path: Path | None, json_out: bool) -> _Globals:
    """Options may come before the command (global) or after it (per command)."""
    g: _Globals = ctx.find_object(_Globals) or _Globals()
    return _Globals(path or g.path, json_out or g.json, g.config)


@contextmanager
def _memory(g: _Globals, llm_overrides: dict[str, Any] | None = None) -> Iterator[Memory]:
    """Open the store, only once the arguments are known to be good (and close it after)."""
    from memvault.memory import Memory

    config = _read_json_file(g.config, "--config") if g.config else None
    if llm_overrides:
        if not config or not config.get("llm"):
            raise CliError("--service-tier needs an LLM: pass --config with an 'llm' section")
        llm = dict(config["llm"])
        llm["config"] = {**llm.get("config", {}), **llm_overrides}
        config = {**config, "llm": llm}
    with Memory(config, path=g.path) as m:
        yield m


def _read_json_file(path: Path, what: str) -> Any:
    text = path.read_text(encoding="utf-8-sig")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CliError(f"{what} {str(path)!r} is not valid JSON: {e}") from e


def _json_option(value: str | None, what: str) -> dict[str, Any] | None:
    """Parse a JSON-object option (``--metadata``, ``--filters``)."""
    if value is None:
        return None
    try:
        obj = json.loads(value)
    except json.JSONDecodeError as e:
        raise CliError(f"{what} is not valid JSON: {e}") from e
    if not isinstance(obj, dict):
        raise CliError(f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj


# -- output ------------------------------------------------------------------------------------


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _short_time(value: str | None) -> str:
    """``2024-05-01T12:00:00.123456+00:00`` -> ``2024-05-01 12:00`` (UTC): tables stay narrow."""
    return value[:16].replace("T", " ") if value else ""


def _cell(value: Any) -> Any:
    """A table cell that shows user text literally (``[bold]`` is not rich markup here)."""
    from rich.text import Text

    if isinstance(value, Text):
        return value
    if value is None:
        return Text("")
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    return Text(str(value))


def _table(
    columns: list[tuple[str, dict[str, Any]]], rows: list[list[Any]], title: str | None = None
) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False, title_justify="left")
    for name, opts in columns:
        table.add_column(name, **opts)
    for row in rows:
        table.add_row(*[_cell(v) for v in row])
    _console().print(table)


_ID_COL = ("ID", {"no_wrap": True, "style": "cyan"})
_MEMORY_COL = ("Memory", {"overflow": "fold", "ratio": 1, "min_width": 16})


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _print_records(results: list[dict[str, Any]], empty: str) -> None:
    if not results:
        typer.echo(empty)
        return
    _table(
        [_ID_COL, ("Updated (UTC)", {"no_wrap": True}), _MEMORY_COL],
        [[r["id"], _short_time(r.get("updated_at")), r["memory"]] for r in results],
    )


def _print_mapping(data: dict[str, Any]) -> None:
    _table(
        [("Field", {"style": "bold", "no_wrap": True}), ("Value", {"overflow": "fold"})],
        [[k, v] for k, v in data.items()],
    )


# -- commands ------------------------------------------------------------------------------------


@app.command()
def add(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="What to remember ('-' reads stdin).")],
    user: UserOpt = None,
    agent: AgentOpt = None,
    run: RunOpt = None,
    metadata: Annotated[
        str | None,
        typer.Option("--metadata", "-m", help='JSON object, e.g. \'{"topic": "food"}\'.'),
    ] = None,
    infer: Annotated[
        bool,
        typer.Option(
            "--infer/--no-infer",
            help="Extract facts with the configured LLM (without one: store the text as is).",
        ),
    ] = True,
    path: PathOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Remember TEXT in a scope (at least one of --user, --agent, --run)."""
    g = _globals(ctx, path, json_out)
    meta = _json_option(metadata, "--metadata")
    if text == "-":
        text = sys.stdin.read()
    with _memory(g) as m:
        out = m.add(text, user_id=user, agent_id=agent, run_id=run, metadata=meta, infer=infer)
    if g.json:
        _print_json(out)
        return
    _table(
        [("Event", {"no_wrap": True}), _ID_COL, _MEMORY_COL],
        [[r["event"], r["id"], r["memory"]] for r in out["results"]],
    )


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for (natural language).")],
    user: UserOpt = None,
    agent: AgentOpt = None,
    run: RunOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Results to show.")] = 10,
    filters: FiltersOpt = None,
    threshold: Annotated[
        float | None, typer.Option(help="Drop results scoring below this (0..1).")
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Show how each score was made (dense, keyword, neighbour, actor)."
        ),
    ] = False,
    path: PathOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Hybrid search (meaning + keywords) within a scope, best first."""
    g = _globals(ctx, path, json_out)
    flt = _json_option(filters, "--filters")
    with _memory(g) as m:
        out = m.search(
            query,
            user_id=user,
            agent_id=agent,
            run_id=run,
            filters=flt,
            top_k=top_k,
            threshold=threshold,
            explain=explain,
        )
    if g.json:
        _print_json(out)
        return
    results = out["results"]
    if not results:
        typer.echo("no matching memories")
        return
    rows = []
    for r in results:
        memory: Any = r["memory"]
        if explain:  # the signals go under the text: no extra columns to squeeze the table
            from rich.text import Text

            d = r["score_details"]
            memory = Text(memory)
            memory.append(
                f"\ndense {d['dense']:.3f} · keyword {d['keyword']:.3f} · "
                f"neighbour {d['neighbor']:.3f} · actor {d['actor']:.3f}",
                style="dim",
            )
        rows.append([f"{r['score']:.3f}", r["id"], memory])
    _table(
        [("Score", {"justify": "right", "no_wrap": True, "min_width": 5}), _ID_COL, _MEMORY_COL],
        rows,
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    user: UserOpt = None,
    agent: AgentOpt = None,
    run: RunOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="At most this many.")] = 100,
    filters: FiltersOpt = None,
    path: PathOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The memories of a scope, newest first."""
    g = _globals(ctx, path, json_out)
    flt = _json_option(filters, "--filters")
    with _memory(g) as m:
        out = m.get_all(user_id=user, agent_id=agent, run_id=run, filters=flt, top_k=top_k)
    if g.json:
        _print_json(out)
        return
    _print_records(out["results"], "no memories in this scope")
    if len(out["results"]) == top_k:
        typer.echo(f"(the newest {top_k}; use --top-k for more)", err=True)


@app.command()
def get(
    ctx: typer.Context,
    memory_id: Annotated[str, typer.Argument(metavar="ID", help="Memory id.")],
    user: UserOpt = None,
    agent: AgentOpt = None,
    run: RunOpt = None,
    path: PathOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """One memory, every field (optionally only if it is in the given scope)."""
    g = _globals(ctx, path, json_out)
    with _memory(g) as m:
        out = m.get(memory_id, user_id=user, agent_id=agent, run_id=run)
    if out is None:
        scoped = " in this scope" if user or agent or run else ""
        raise NotFoundError(f"no memory with id {memory_id!r}{scoped}")
    if g.json:
        _print_json(out)
        return
    _print_mapping(out)


@app.command()
def history(
    ctx: typer.Context,
    memory_id: Annotated[str, typer.Argument(metavar="ID", help="Memory id.")],
    path: PathOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Every ADD / UPDATE / DELETE of a memory, oldest first (kept after deletion)."""
    g = _globals(ctx, path, json_out)
    with _memory(g) as m:
        events = m.history(memory_id)
    if not events:
        raise NotFoundError(f"no memory with id {memory_id!r} (and no history for it)")
    if g.json:
        _print_json(events)
        return
    _table(
        [
            ("When (UTC)", {"no_wrap": True}),
            ("Event", {"no_wrap": True}),
            ("Old", {"overflow": "fold", "ratio": 1}),
            ("New", {"overflow": "fold", "ratio": 1}),
            ("By", {}),
        ],
        [
            [
                _short_time(e["created_at"]),
                e["event"],
                e["old_memory"],
                e["new_memory"],
                e["changed_by"],
            ]
            for e in events
        ],
        title=f"history of {memory_id}",
    )


@app.command()
def delete(
    ctx: typer.Context,
    memory_id: Annotated[
        str | None, typer.Argument(metavar="ID", help="Memory id (or --all with a scope).")
    ] = None,
    all_: Annotated[
        bool,
        typer.Option(
            "--all", help="Delete every memory of the scope given with --user/--agent/--run."
        ),
    ] = False,
    user: UserOpt = None,
    agent: AgentOpt = None,
    run: RunOpt = None,
    path: PathOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Delete one memory, or --all of a scope. History is kept (with a DELETE event)."""
    g = _globals(ctx, path, json_out)
    if (memory_id is None) == (not all_):
        raise typer.BadParameter(
            "give either a memory ID or --all (with a scope), not both",
            ctx=ctx,
            param_hint="ID / --all",
        )
    if all_ and not (user or agent or run):
        # The engine refuses too; saying it here avoids even opening the store.
        raise CliError(
            "delete --all needs a scope (--user, --agent or --run); "
            "memvault never deletes a whole store"
        )
    with _memory(g) as m:
        if all_:
            out = m.delete_all(user_id=user, agent_id=agent, run_id=run)
            message = f"deleted {_n(out['deleted'], 'memory', 'memories')}"
        else:
            out = m.delete(memory_id, user_id=user, agent_id=agent, run_id=run)
            message = f"deleted {out['id']}"
    if g.json:
        _print_json(out)
    else:
        typer.echo(message)


@app.command()
def export(
    ctx: typer.Context,
    dest: Annotated[str, typer.Argument(metavar="FILE|-", help="Output file, or - for stdout.")],
    user: UserOpt = None,
    agent: AgentOpt = None,
    run: RunOpt = None,
    vectors: Annotated[
        bool,
        typer.Option(
            "--vectors/--no-vectors",
            help="Include vectors (--no-vectors: smaller; the importer re-embeds).",
        ),
    ] = True,
    path: PathOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write the store (or one scope) as JSONL: memories, vectors and history."""
    from memvault.transfer import export_jsonl

    g = _globals(ctx, path, json_out)
    kw: dict[str, Any] = {
        "user_id": user,
        "agent_id": agent,
        "run_id": run,
        "include_vectors": vectors,
    }
    with _memory(g) as m:
        if dest == "-":
            out: Any = _Utf8Out(sys.stdout) if hasattr(sys.stdout, "buffer") else sys.stdout
            n = export_jsonl(m, out, **kw)
            out.flush()
        else:
            # Write next to the target and rename: a failed export never leaves half a file.
            target = Path(dest)
            if not target.parent.is_dir():
                raise CliError(
                    f"cannot write {dest!r}: directory {str(target.parent)!r} does not exist"
                )
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            try:
                with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                    n = export_jsonl(m, fh, **kw)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
    summary = {"memories": n, "file": dest}
    if dest == "-":  # stdout carries the data: the summary goes to stderr
        typer.echo(f"exported {_n(n, 'memory', 'memories')}", err=True)
    elif g.json:
        _print_json(summary)
    else:
        typer.echo(f"exported {_n(n, 'memory', 'memories')} to {dest}")


@app.command("import")
def import_(
    ctx: typer.Context,
    src: Annotated[str, typer.Argument(metavar="FILE|-", help="JSONL file, or - for stdin.")],
    path: PathOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Load a JSONL export or hand-written memory lines (safe to re-run: nothing doubles)."""
    from memvault.transfer import import_jsonl

    g = _globals(ctx, path, json_out)
    with _memory(g) as m:
        if src == "-":
            # Bytes lines: decoded as UTF-8 by the importer, whatever the locale says.
            counts = import_jsonl(m, getattr(sys.stdin, "buffer", sys.stdin))
        else:
            with open(src, encoding="utf-8-sig") as fh:
                counts = import_jsonl(m, fh)
    if g.json:
        _print_json(counts)
        return
    typer.echo(
        f"imported {_n(counts['memories'], 'memory', 'memories')} "
        f"({counts['skipped']} already present, {counts['embedded']} embedded), "
        f"{_n(counts['history'], 'history event', 'history events')} "
        f"({counts['history_skipped']} already present)"
    )


@app.command()
def stats(ctx: typer.Context, path: PathOpt = None, json_out: JsonOpt = False) -> None:
    """Counts, size and configuration of the store."""
    g = _globals(ctx, path, json_out)
    with _memory(g) as m:
        out = m.stats()
    spaces = out.get("spaces") or {}
    if g.json:
        out["spaces"] = {k: {"dims": v[0], "model": v[1]} for k, v in spaces.items()}
        _print_json(out)
        return
    shown = dict(out)
    shown["spaces"] = ", ".join(f"{k} ({v[0]} dims)" for k, v in spaces.items()) or "none"
    _print_mapping(shown)


@app.command()
def reindex(ctx: typer.Context, path: PathOpt = None, json_out: JsonOpt = False) -> None:
    """Rebuild the derived indexes (keyword FTS and the vector index) from the stored data."""
    g = _globals(ctx, path, json_out)
    with _memory(g) as m:
        engine = m._engine
        keyword = engine.store.rebuild_keyword_index()
        vector = engine.index.rebuild()
        out = {"keyword": keyword, "vector": vector, "vector_index": engine.index.name}
    if g.json:
        _print_json(out)
        return
    rebuilt = f"rebuilt ({vector} memories)" if vector else "rebuilt"
    typer.echo(
        f"keyword index: {keyword} memories; vector index ({out['vector_index']}): {rebuilt}"
    )


@app.command()
def migrate(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option("--to", help="Target store: a postgresql:// DSN, or a new SQLite file path."),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Empty the target first (finishes a broken copy).")
    ] = False,
    path: PathOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Copy the whole store (memories, vectors, queue, history, journal) to another backend."""
    from memvault.config import MemoryConfig
    from memvault.store import open_store
    from memvault.store.migrate import copy_store, open_location

    g = _globals(ctx, path, json_out)
    config = MemoryConfig.parse(_read_json_file(g.config, "--config") if g.config else None)
    src = open_store(config, g.path)
    try:
        dst = open_location(to)
        try:
            if force:
                dst.reset()
            counts = copy_store(src, dst)
        finally:
            dst.close()
    finally:
        src.close()
    if g.json:
        _print_json({"from": src.location, "to": dst.location, **counts})
        return
    typer.echo(
        f"copied {_n(counts['memories'], 'memory', 'memories')} "
        f"({counts['vectors']} vectors, {counts['queued']} queued), "
        f"{_n(counts['history'], 'history event', 'history events')}, "
        f"{counts['journal']} journal rows: {src.location} -> {dst.location}"
    )


@app.command()
def ingest(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSONL, CSV or LoCoMo JSON transcripts.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl, csv or locomo (default: by suffix).")
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="user_id for rows that name no scope.")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Rows in flight at once (live mode).")] = 8,
    mode: Annotated[str, typer.Option(help="live (concurrent calls) or batch (Batch API).")] = (
        "live"
    ),
    service_tier: Annotated[
        str | None, typer.Option("--service-tier", help="e.g. flex: queued, half price.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Estimate rows, tokens and cost; call nothing.")
    ] = False,
    poll_interval: Annotated[float, typer.Option(help="Seconds between batch polls.")] = 30.0,
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices",
            help='Price table JSON: {"model": [input, cached_input, output]} USD per 1M tokens.',
        ),
    ] = None,
    path: PathOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Bulk-ingest transcripts: resumable (re-run to continue), exactly-once, rate-limit safe."""
    from memvault.ingest import summary_table
    from memvault.ingest_sources import read_rows

    g = _globals(ctx, path, json_out)
    rows = list(read_rows(file, fmt))
    if user is not None:
        rows = [
            r
            if r.get("user_id") or r.get("agent_id") or r.get("run_id") or "_error" in r
            else {**r, "user_id": user}
            for r in rows
        ]
    overrides = {"service_tier": service_tier} if service_tier else None
    table = _read_json_file(prices, "--prices") if prices else None
    if table is not None and not (
        isinstance(table, dict)
        and all(
            isinstance(v, list) and len(v) == 3 and all(isinstance(x, int | float) for x in v)
            for v in table.values()
        )
    ):
        raise CliError("--prices must map model names to [input, cached_input, output] numbers")
    with _memory(g, overrides) as m:
        report = m.ingest(
            rows,
            concurrency=concurrency,
            mode=mode,
            dry_run=dry_run,
            progress=not g.json and sys.stderr.isatty(),
            poll_interval=poll_interval,
            prices={k: (v[0], v[1], v[2]) for k, v in table.items()} if table else None,
        )
    if g.json:
        _print_json(report.as_dict())
    else:
        _console().print(summary_table(report))
        for err in report.errors[:20]:
            typer.echo(f"row {err.get('line')}: {err['error']}", err=True)
    if report.failed:
        raise typer.Exit(1)


# The service commands (serve, keys, mcp) live beside the service (memvault.service.commands).
from memvault.service.commands import register as _register_service  # noqa: E402

_register_service(app, _globals, _memory)


class _Utf8Out:
    """stdout as UTF-8 whatever the locale says (an export must not depend on LANG)."""

    def __init__(self, stream: Any) -> None:
        stream.flush()
        self._buffer = stream.buffer

    def write(self, s: str) -> int:
        self._buffer.write(s.encode("utf-8"))
        return len(s)

    def flush(self) -> None:
        self._buffer.flush()


def main() -> None:
    """Console-script entry point (``memvault``)."""
    app(prog_name="memvault")


if __name__ == "__main__":
    main()
