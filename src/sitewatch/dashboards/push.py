"""Upload the dashboards to a running Grafana through its HTTP API (``grafana-client``)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import requests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from ..i18n import _
from .provisioning import Built


class PushError(RuntimeError):
    """Grafana refused or could not be reached."""


@dataclass(frozen=True)
class Pushed:
    folder: str
    uid: str
    title: str


def folder_uid(name: str) -> str:
    """A folder uid Grafana accepts (ASCII letters, digits, ``-``, ``_``; at most 40), the same for
    the same name: the name's ASCII letters and digits, and a digest of it when it holds others."""
    ascii_part = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")
    uid = f"sitewatch-{ascii_part}" if ascii_part else "sitewatch"
    if not name.isascii() or len(uid) > 40:
        uid = f"{uid[:31]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return uid


def push(url: str, token: str, dashboards: Sequence[Built], *, folder: str | None = None,
         timeout_s: float = 30.0) -> list[Pushed]:  # fmt: skip
    """Create each language's folder (``<folder>/<language>`` flattened to ``<folder> <language>``
    when ``folder`` is given) unless it exists, then create or overwrite each dashboard in it."""
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    done: list[Pushed] = []
    folders: dict[str, str] = {}
    try:
        for built in dashboards:
            title = f"{folder} {built.folder}" if folder else f"sitewatch {built.folder}"
            if title not in folders:
                uid = folder_uid(title)
                try:
                    api.folder.get_folder(uid)
                except GrafanaClientError as exc:
                    if exc.status_code != 404:
                        raise
                    api.folder.create_folder(title, uid=uid)
                folders[title] = uid
            model = built.model
            api.dashboard.update_dashboard(
                {"dashboard": {**model, "id": None}, "folderUid": folders[title], "overwrite": True,
                 "message": "sitewatch dashboards push"}
            )  # fmt: skip
            done.append(Pushed(title, str(model.get("uid")), str(model.get("title"))))
    except GrafanaException as exc:
        detail = str((exc.response.get("message") if isinstance(exc.response, dict) else None) or exc.message)
        raise PushError(_("Grafana at {url} refused ({status}): {error}", url=url, status=exc.status_code,
                          error=detail[:500])) from exc  # fmt: skip
    except (OSError, requests.exceptions.RequestException) as exc:
        raise PushError(_("Grafana at {url} unreachable: {error}", url=url, error=exc)) from exc
    return done
