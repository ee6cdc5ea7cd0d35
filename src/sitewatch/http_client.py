"""What the project's long-running HTTP clients (the InfluxDB store, the registry lookups) share."""

from __future__ import annotations

import httpx


def release(response: httpx.Response) -> httpx.Response:
    """``response``, which must have been read, with its stream let go.

    httpx leaves a read response and its stream referring to each other, and that cycle holds the
    request with its body (up to a megabyte of line protocol for InfluxDB) until the cyclic
    collector runs, which ingest does rarely (``ingest.cli.GC_THRESHOLDS``).
    """
    response.stream = httpx.ByteStream(b"")
    return response
