"""A local PostgreSQL server for the read models' production path: Debian's binaries, data under var/."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import psycopg

from golive_platform.config import PlatformConfig
from golive_platform.errors import PlatformError
from golive_platform.process import Launch

DATABASE = "golive"
ROLE = "golive"
# PostgreSQL refuses to run as root; as root we run it as this account (created if missing).
SERVICE_ACCOUNTS = ("postgres", "golive-postgres")


def find_bindir(explicit: Path | None) -> Path:
    """Where initdb and postgres live: GOLIVE_POSTGRES_BINDIR, pg_config, Debian's layout, PATH."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(explicit)
    else:
        if pg_config := shutil.which("pg_config"):
            done = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=False
            )
            candidates.append(Path(done.stdout.strip()))
        versions = sorted(
            glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
        )
        candidates.extend(Path(p) for p in reversed(versions))
        if initdb := shutil.which("initdb"):
            candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    raise PlatformError(
        "PostgreSQL server binaries (initdb, postgres) not found: run `make postgres-install` "
        "(Debian's postgresql package) or set GOLIVE_POSTGRES_BINDIR"
    )


def _service_account() -> pwd.struct_passwd | None:
    """None when we are not root; else the account PostgreSQL runs as."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_ACCOUNTS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_ACCOUNTS[1],
        ],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(SERVICE_ACCOUNTS[1])


def _make_traversable(path: Path) -> None:
    """Let the service account reach its data dir: add search (x) permission to each ancestor."""
    for ancestor in [path, *path.parents]:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(mode | stat.S_IXOTH)


class PostgresNode:
    name = "postgres"

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self.home = config.data_dir / "postgres"
        self.pgdata = self.home / "data"
        self.log = self.home / "postgres.log"
        self.account = _service_account()
        self.bindir = find_bindir(config.postgres_bindir)

    def _ids(self) -> tuple[int | None, int | None]:
        return (self.account.pw_uid, self.account.pw_gid) if self.account else (None, None)

    def prepare(self) -> None:
        """initdb on first start (trust auth, loopback only), data kept across restarts."""
        bindir = self.bindir
        self.home.mkdir(parents=True, exist_ok=True)
        uid, gid = self._ids()
        if uid is not None and gid is not None:
            _make_traversable(self.home)
            os.chown(self.home, uid, gid)
        if (self.pgdata / "PG_VERSION").exists():
            return
        argv = [
            str(bindir / "initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            ROLE,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        done = subprocess.run(
            argv, capture_output=True, text=True, user=uid, group=gid, check=False
        )
        if done.returncode != 0:
            raise PlatformError(
                "postgres initdb failed", detail=(done.stdout + done.stderr)[-2000:]
            )

    def launch(self) -> Launch:
        uid, gid = self._ids()
        argv = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.pgdata),
            "-p",
            str(self.config.postgres_port),
            # TCP only: every client here uses 127.0.0.1, and a Unix socket path under a deep
            # data dir can exceed the 107-byte limit, which stops the server from starting.
            "-k",
            "",
            "-c",
            f"listen_addresses={self.config.host}",
            "-c",
            "shared_buffers=64MB",
            "-c",
            "max_connections=100",
        ]
        if uid is not None:
            self.log.touch()
            os.chown(self.log, uid, gid or 0)
        return Launch(self.name, argv, self.log, marker=str(self.pgdata), user=uid, group=gid)


def ensure_database(config: PlatformConfig, name: str) -> str:
    """Create a database on the local server unless it exists; its URL."""
    base = f"host={config.host} port={config.postgres_port} user={ROLE} connect_timeout=5"
    with psycopg.connect(f"{base} dbname=postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://{ROLE}@{config.host}:{config.postgres_port}/{name}"


def database_ready(config: PlatformConfig) -> bool:
    """Ready when the golive database answers a query (created on first start)."""
    base = f"host={config.host} port={config.postgres_port} user={ROLE} connect_timeout=2"
    try:
        with psycopg.connect(f"{base} dbname=postgres", autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
        with psycopg.connect(f"{base} dbname={DATABASE}") as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True
