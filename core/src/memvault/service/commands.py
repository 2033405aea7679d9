"""The service's CLI commands: ``memvault serve``, ``memvault keys ...``, ``memvault mcp``.

They live here, beside the service, and ``memvault.cli`` registers them (``register``).
``keys`` needs only the store, so it works from any install; ``serve`` and ``mcp``
import FastAPI / uvicorn / the ``mcp`` SDK when they run (the ``server`` extra) and
say so plainly when those are missing.
"""

# No ``from __future__ import annotations``: typer reads the annotations of the commands
# defined inside ``register``, which name options imported there.
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from memvault.service.ratelimit import MAX_RATE_LIMIT


def _rate(help: str, *, argument: bool = False) -> Any:
    """A calls-per-minute parameter (``serve`` / ``keys create`` options, ``keys limit``'s argument)."""
    make = typer.Argument if argument else typer.Option
    return make(min=1, max=MAX_RATE_LIMIT, help=help)


keys_app = typer.Typer(
    help="Create, list and revoke API keys (each belongs to a tenant).", no_args_is_help=True
)


def _need_server_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
        from mcp.server.mcpserver import MCPServer  # noqa: F401
    except ImportError as e:
        from memvault.cli import CliError

        raise CliError(
            f"the server needs the 'server' extra ({e}); install memvault[server] "
            "(in this repository: make setup builds .venv-server with it)"
        ) from e


def register(
    app: typer.Typer, globals_of: Callable[..., Any], memory_of: Callable[..., Any]
) -> None:
    """Add the service commands to the ``memvault`` CLI (``globals_of`` / ``memory_of``:
    the CLI's own option and store helpers, so ``--path`` / ``--config`` mean the same)."""
    from memvault.cli import JsonOpt, PathOpt, _print_json

    @app.command()
    def serve(
        ctx: typer.Context,
        host: Annotated[
            str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
        no_mcp: Annotated[
            bool, typer.Option("--no-mcp", help="Leave out the /mcp endpoint.")
        ] = False,
        max_body: Annotated[int, typer.Option(help="Largest request body in bytes.")] = 8
        * 1024
        * 1024,
        limit_concurrency: Annotated[
            int, typer.Option(help="Connections served at once; more get 503.")
        ] = 256,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
        pool_size: Annotated[
            int, typer.Option(min=1, help="Threads for storage and model work.")
        ] = 16,
        rate_limit: Annotated[
            int | None,
            _rate("Calls per minute for each key without a limit of its own (default: none)."),
        ] = None,
        path: PathOpt = None,
    ) -> None:
        """Serve the HTTP API (mem0-compatible routes, OpenAPI at /docs) and MCP at /mcp."""
        _need_server_extra()
        import uvicorn

        from memvault.config import MemoryConfig
        from memvault.service.app import create_app

        g = globals_of(ctx, path, False)
        config = json.loads(Path(g.config).read_text("utf-8-sig")) if g.config else None
        MemoryConfig.parse(config)  # a bad config fails here, with the CLI's one-line error
        shown = f"[{host}]" if ":" in host else host
        app = create_app(
            path=g.path,
            config=config,
            mcp=not no_mcp,
            host=host,
            base_url=f"http://{shown}:{port}",
            max_body_bytes=max_body,
            pool_size=pool_size,
            rate_limit=rate_limit,
        )
        typer.echo(
            f"memvault {_version()} serving on http://{shown}:{port} (docs: /docs, MCP: /mcp)",
            err=True,
        )
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            limit_concurrency=limit_concurrency,
            timeout_graceful_shutdown=10,
        )

    @app.command()
    def mcp(
        ctx: typer.Context,
        key: Annotated[
            str | None,
            typer.Option(
                envvar="MEMVAULT_API_KEY",
                help="API key (limited to a user id) whose memory to serve.",
            ),
        ] = None,
        path: PathOpt = None,
    ) -> None:
        """Serve MCP on stdin/stdout for one API key (what a desktop agent launches)."""
        _need_server_extra()
        import asyncio

        from memvault.cli import CliError
        from memvault.memory import AsyncMemory
        from memvault.service.mcp import run_stdio

        if not key:
            raise CliError("pass --key or set MEMVAULT_API_KEY (see: memvault keys create)")
        g = globals_of(ctx, path, False)
        config = json.loads(Path(g.config).read_text("utf-8-sig")) if g.config else None

        async def main() -> None:
            async with AsyncMemory(config, path=g.path) as memory:
                await run_stdio(memory, key)

        asyncio.run(main())

    @keys_app.command("create")
    def create(
        ctx: typer.Context,
        tenant: Annotated[str, typer.Argument(help="Tenant the key belongs to (a-z, 0-9, _ -).")],
        user: Annotated[
            list[str] | None,
            typer.Option("--user", "-u", help="Limit to this user id (repeatable)."),
        ] = None,
        agent: Annotated[
            list[str] | None,
            typer.Option("--agent", "-a", help="Limit to this agent id (repeatable)."),
        ] = None,
        read_only: Annotated[bool, typer.Option("--read-only", help="Reads only.")] = False,
        rate_limit: Annotated[
            int | None, _rate("Calls per minute (in each server process); default: the server's.")
        ] = None,
        name: Annotated[str | None, typer.Option(help="A note saying what the key is for.")] = None,
        path: PathOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Create a key and print its token (shown once; only its hash is stored)."""
        from memvault.service.keys import create_key

        g = globals_of(ctx, path, json_out)
        with memory_of(g) as m:
            token, info = create_key(
                m,
                tenant,
                user_ids=user or None,
                agent_ids=agent or None,
                read_only=read_only,
                name=name,
                rate_limit=rate_limit,
            )
        if g.json:
            _print_json({"token": token, **info})
        else:
            typer.echo(token)
            typer.echo(
                f"key {info['key_id']} for tenant {tenant} (store the token now: it is not kept)",
                err=True,
            )

    @keys_app.command("list")
    def list_(
        ctx: typer.Context,
        tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
        path: PathOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """List keys (ids, tenants, limits, revoked or not; never tokens)."""
        from memvault.service.keys import list_keys

        g = globals_of(ctx, path, json_out)
        with memory_of(g) as m:
            keys = list_keys(m, tenant)
        if g.json:
            _print_json(keys)
            return
        for k in keys:
            limits = [
                f"users={','.join(k['user_ids'])}" if k["user_ids"] else "",
                f"agents={','.join(k['agent_ids'])}" if k["agent_ids"] else "",
                "read-only" if k["read_only"] else "",
                f"rate={k['rate_limit']}/min" if k.get("rate_limit") else "",
                "REVOKED" if k["revoked"] else "",
            ]
            typer.echo(
                f"{k['key_id']}  {k['tenant']}  {k['created_at']}  {' '.join(x for x in limits if x)}  {k.get('name') or ''}".rstrip()
            )

    @keys_app.command("revoke")
    def revoke(
        ctx: typer.Context,
        key_id: Annotated[str, typer.Argument(help="The key id (from 'keys list' or the token).")],
        path: PathOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Revoke a key (servers stop accepting it within 2 seconds)."""
        from memvault.service.keys import key_id_of, revoke_key

        g = globals_of(ctx, path, json_out)
        with memory_of(g) as m:
            info = revoke_key(m, key_id_of(key_id) or key_id)
        if g.json:
            _print_json(info)
        else:
            typer.echo(f"revoked key {info['key_id']} of tenant {info['tenant']}")

    @keys_app.command("limit")
    def limit(
        ctx: typer.Context,
        key_id: Annotated[str, typer.Argument(help="The key id (from 'keys list' or the token).")],
        rate_limit: Annotated[
            int | None,
            _rate("Calls per minute; leave out for the server's default.", argument=True),
        ] = None,
        path: PathOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Change a key's rate limit, keeping its token (servers apply it within 2 seconds)."""
        from memvault.service.keys import key_id_of, set_rate_limit

        g = globals_of(ctx, path, json_out)
        with memory_of(g) as m:
            info = set_rate_limit(m, key_id_of(key_id) or key_id, rate_limit)
        if g.json:
            _print_json(info)
        else:
            shown = f"{rate_limit} calls per minute" if rate_limit else "the server's default"
            typer.echo(f"key {info['key_id']} of tenant {info['tenant']}: {shown}")

    app.add_typer(keys_app, name="keys")


def _version() -> str:
    from memvault import __version__

    return __version__
