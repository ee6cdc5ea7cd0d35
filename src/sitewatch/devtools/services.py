"""Run real servers locally (Mosquitto, InfluxDB 1.x, PostgreSQL) on free ports in a directory.

Used by the demo (a broker when Mosquitto is installed), by the benchmarks and by the test
fixtures. Each service can be stopped, killed (SIGKILL) and started again on the same port with
the same data, which is what the fault tests need.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from ..ports import free_port, port_open

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A local service could not be started."""


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``check`` until it is true, with a bounded deadline; raise ServiceError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except ServiceError:
            raise
        except Exception:  # a service half-up may fail the check in many ways
            pass
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)
    raise ServiceError(f"{what} not ready after {timeout:.0f} s")


def find_binary(name: str, *extra_dirs: str) -> str | None:
    """Path of an executable on PATH or in one of ``extra_dirs``."""
    found = shutil.which(name)
    if found:
        return found
    for directory in extra_dirs:
        for candidate in sorted(Path("/").glob(directory.lstrip("/")), reverse=True):
            path = candidate / name
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    return None


class LocalService:
    """A server process in its own directory on its own port."""

    name = "service"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: object | None = None

    # subclasses provide these
    def command(self) -> list[str]:
        """Command line of the server."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the server answers."""
        return port_open(self.port)

    def prepare(self) -> None:
        """One-time set-up of the work directory before the first start."""

    def popen_kwargs(self) -> dict[str, Any]:
        """Extra arguments for subprocess.Popen."""
        return {}

    @property
    def log_path(self) -> Path:
        """Where the server's output goes."""
        return self.workdir / f"{self.name}.log"

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it answers."""
        if self.running:
            return
        self.prepare()
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process lifetime
        self._log_file = log_file
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self.popen_kwargs(),
        )
        try:
            wait_until(
                lambda: self._alive_or_raise() and self.ready(), timeout, f"{self.name} on port {self.port}"
            )
        except ServiceError as exc:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            self.kill()
            raise ServiceError(f"{exc}; its log ends with:\n{tail}") from None
        log.debug("%s started on port %s (pid %s)", self.name, self.port, self.proc.pid)

    def _alive_or_raise(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServiceError(f"{self.name} exited with code {self.proc.returncode}")
        return True

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """Stop gracefully (SIGTERM), killing after ``timeout``."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash would."""
        self._signal(signal.SIGKILL, 10.0)

    def restart(self) -> None:
        """Stop and start again on the same port with the same data."""
        self.stop()
        self.start()

    def _signal(self, sig: int, timeout: float) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None
        # the port must really be free before a restart reuses it
        wait_until(lambda: not port_open(self.port), 10, f"{self.name} port {self.port} to close")

    def __enter__(self) -> LocalService:
        self.start()
        return self

    def __exit__(
        self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
    ) -> None:
        self.stop()


class MosquittoService(LocalService):
    """Mosquitto with persistence on, unlimited queues for persistent sessions."""

    name = "mosquitto"

    def __init__(self, workdir: Path, port: int | None = None, extra_config: str = "") -> None:
        super().__init__(workdir, port)
        self.extra_config = extra_config
        self.binary = find_binary("mosquitto", "/usr/sbin")
        if self.binary is None:
            raise ServiceError(
                "mosquitto is not installed: apt-get install mosquitto (scripts/test.sh does it)"
            )

    @property
    def url(self) -> str:
        """Broker URL for settings."""
        return f"mqtt://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        """Write the configuration file."""
        (self.workdir / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            "max_queued_bytes 0\n"
            "max_inflight_messages 0\n"
            # as root, Mosquitto drops to the 'mosquitto' user, which cannot write the persistence
            # file into a root-owned temporary directory: sessions would then not survive a restart
            f"{'user root' if os.geteuid() == 0 else ''}\n"
            f"{self.extra_config}\n"
        )

    def command(self) -> list[str]:
        """Command line."""
        return [str(self.binary), "-c", str(self.workdir / "mosquitto.conf")]


class InfluxDBService(LocalService):
    """InfluxDB 1.x (Debian's ``influxdb`` package) serving the v1 HTTP API."""

    name = "influxdb"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.rpc_port = free_port()
        self.binary = find_binary("influxd", "/usr/bin")
        if self.binary is None:
            raise ServiceError("influxd is not installed: apt-get install influxdb (scripts/test.sh does it)")

    @property
    def url(self) -> str:
        """HTTP API base URL."""
        return f"http://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        """Write the configuration file."""
        d = self.workdir
        (d / "influxdb.conf").write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{d}/meta"\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n  query-log-enabled = false\n'
            "  trace-logging-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "  max-body-size = 0\n"
            "[monitor]\n  store-enabled = false\n"
            "[continuous_queries]\n  enabled = false\n"
            '[logging]\n  level = "warn"\n'
        )

    def command(self) -> list[str]:
        """Command line."""
        return [str(self.binary), "-config", str(self.workdir / "influxdb.conf")]

    def ready(self) -> bool:
        """InfluxDB answers /ping with 204 once it accepts writes."""
        return httpx.get(f"{self.url}/ping", timeout=1.0).status_code == 204


class PostgresService(LocalService):
    """A throw-away PostgreSQL cluster (initdb in the work directory)."""

    name = "postgres"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        dirs = ("/usr/lib/postgresql/*/bin",)
        self.initdb = find_binary("initdb", *dirs)
        self.postgres = find_binary("postgres", *dirs)
        if self.initdb is None or self.postgres is None:
            raise ServiceError(
                "PostgreSQL is not installed: apt-get install postgresql (scripts/test.sh does it)"
            )
        # PostgreSQL refuses to run as root; run it as the 'postgres' system user then, with its
        # cluster in a directory of its own under the system's temporary directory: a pytest
        # directory lies under a root-only parent that another pytest run may lock again at any time
        self.user = "postgres" if os.geteuid() == 0 else None
        self.rundir = self.workdir
        if self.user:
            self.rundir = Path(tempfile.mkdtemp(prefix="sitewatch-postgres-"))
            entry = pwd.getpwnam(self.user)
            os.chown(self.rundir, entry.pw_uid, entry.pw_gid)
            weakref.finalize(self, shutil.rmtree, self.rundir, True)
        self.datadir = self.rundir / "data"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the 'postgres' database (psycopg 3 driver)."""
        return self.database_url("postgres")

    def database_url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def popen_kwargs(self) -> dict[str, Any]:
        """Run as the postgres user when we are root."""
        return {"user": self.user, "group": self.user} if self.user else {}

    def prepare(self) -> None:
        """Create the cluster once."""
        if (self.datadir / "PG_VERSION").exists():
            return
        subprocess.run(
            [
                str(self.initdb),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            **self.popen_kwargs(),
        )

    def command(self) -> list[str]:
        """Command line."""
        return [
            str(self.postgres), "-D", str(self.datadir), "-p", str(self.port), "-k", str(self.rundir),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
        ]  # fmt: skip

    def ready(self) -> bool:
        """Accepts a real connection (not only the TCP handshake)."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", connect_timeout=1
        ):
            return True

    def create_database(self, name: str) -> str:
        """Create a database and return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)
