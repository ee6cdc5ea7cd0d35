"""The console in ``sitewatch demo``: the web application (console and REST API) served by uvicorn
in a thread on a free local port, over the demo's registry and embedded store, by the demo's
simulated clock, with an admin token made for the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .settings import Settings

log = logging.getLogger(__name__)
START_TIMEOUT_S = 20.0


class DemoConsole:
    """The web application of the demo, on ``127.0.0.1`` and a free port."""

    def __init__(self, settings: Settings, records: dict[str, list[dict[str, Any]]],
                 sim_now: Callable[[], int]) -> None:  # fmt: skip
        self.settings = settings
        self.records = records
        self.sim_now = sim_now
        self.port = 0
        self.token = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._engine: Any = None

    @property
    def url(self) -> str:
        """The console's address."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def login_url(self) -> str:
        """An address that signs in with the run's token (the token stays in the fragment, which the
        browser never sends; the login page reads it)."""
        return f"http://127.0.0.1:{self.port}/login#{self.token}"

    def prepare(self, imported: bool) -> None:
        """Migrate the registry, import the demo city unless already ``imported``, make a token."""
        from .assets.db import create_engine_for, transaction, upgrade
        from .assets.importer import import_ledger
        from .assets.tokens import create_token
        from .assets.workbook import HeaderStyle, write_csv_dir
        from .web.principal import Role

        self._engine = create_engine_for(self.settings)
        upgrade(self._engine)
        if not imported:
            with tempfile.TemporaryDirectory() as folder:
                write_csv_dir(self.records, Path(folder), HeaderStyle.EN)
                report = import_ledger(self._engine, Path(folder))
            if not report.ok:
                log.warning("the demo city did not import into the registry; the console shows less")
        expires = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1)
        with transaction(self._engine) as session:
            self.token = create_token(session, Role.ADMIN, label="sitewatch demo console", expires_at=expires)[0]

    def start(self) -> None:
        """Serve the application in a thread; returns once it accepts connections."""
        import uvicorn

        from .alerts.api import alerts_component
        from .assets.api.component import registry_component
        from .console.component import console_component
        from .ports import free_port, port_open
        from .server import create_app

        parts = [
            registry_component(self.settings, self._engine), alerts_component(self.settings),
            console_component(self.settings, clock=self.sim_now, poll_s=5),
        ]  # fmt: skip
        app = create_app(self.settings, engine=self._engine, parts=parts)
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="demo-console", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_open(self.port):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the console did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._engine is not None:
            self._engine.dispose()
