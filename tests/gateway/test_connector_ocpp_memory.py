"""A charge point cannot exhaust the gateway: a real `sitewatch gateway run` flooded over OCPP.

Several charge points send frames just under the size limit as fast as the socket takes them
(answers nobody asked for, errors, calls that fail the schema), with the rate limit set so high
that every frame is routed. The gateway's RSS must stay within the stated bound per connection,
a second flood must not add to what the first left (nothing is kept per connection), a frame over
the limit closes only its own connection, and a calm charger keeps being served meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from sitewatch.devtools.services import MosquittoService, free_port, wait_until
from sitewatch.gateway.connectors.ocpp import connection_memory_bound

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FLOODERS = 6
FRAMES = 200
MAX_MESSAGE = 65_536  # the default max_message_bytes
SLACK = 8 * 2**20  # the rest of the process meanwhile (MQTT, queue, logging), and RSS noise


class PeakRss:
    """Samples a process's RSS in a thread; ``peak`` since the last reset."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.now())

    def now(self) -> int:
        return int(self.process.memory_info().rss)

    def reset(self) -> None:
        self.peak = self.now()

    def settled(self) -> int:
        """The RSS once it stopped moving (two samples 0.3 s apart within 256 KiB; at most 15 s)."""
        last = [self.now()]

        def still() -> bool:
            time.sleep(0.3)
            now, last[0] = self.now(), last[0]
            moved = abs(now - last[0])
            last[0] = now
            return moved < 2**18

        wait_until(still, 15, "the gateway's RSS to settle")
        return last[0]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def frames(j: int) -> str:
    filler = "x" * (MAX_MESSAGE - 200)
    kind = j % 3
    if kind in (0, 1):  # answers to calls the central system never made
        return json.dumps(
            [3, f"r{j}", {"data": filler}] if kind == 0 else [4, f"e{j}", "GenericError", filler, {}]
        )
    bad = {"connectorId": 1, "errorCode": "NoError", "status": filler}  # fails the schema: a CallError
    return json.dumps([2, f"c{j}", "StatusNotification", bad])


async def flood(url: str, ocpp_id: str, oversized: bool) -> int:
    """Send FRAMES frames (and, if ``oversized``, one over the limit); the close code seen."""
    try:
        async with connect(f"{url}/{ocpp_id}", subprotocols=["ocpp1.6"], max_size=2**24) as ws:  # type: ignore[list-item]

            async def drain() -> None:  # the CallErrors coming back, read and dropped
                with contextlib.suppress(ConnectionClosed):
                    async for _ in ws:
                        pass

            reader = asyncio.create_task(drain())
            for j in range(FRAMES):
                await ws.send(frames(j))
            if oversized:
                await ws.send(json.dumps([3, "big", {"data": "y" * 900_000}]))
                await asyncio.wait_for(ws.wait_closed(), 30)
            reader.cancel()
            return ws.close_code or 1000
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else -1


async def calm_heartbeats(url: str, stop: asyncio.Event) -> int:
    """A well-behaved charger beating during the flood; how many heartbeats were answered."""
    answered = 0
    async with connect(f"{url}/CP-CALM", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        while not stop.is_set():
            await ws.send(json.dumps([2, f"h{answered}", "Heartbeat", {}]))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert reply[0] == 3 and reply[1] == f"h{answered}"
            answered += 1
            await asyncio.sleep(0.05)
    return answered


def test_a_flood_of_large_frames_keeps_the_gateway_within_its_memory_bound(
    mosquitto: MosquittoService, tmp_path: Path
) -> None:
    port = free_port()
    chargers = [{"device": f"CH{i:04d}", "ocpp_id": f"CP-{i}"} for i in range(FLOODERS)]
    chargers.append({"device": "CH9999", "ocpp_id": "CP-CALM"})
    config = {
        "compound": "M1",
        "gateway": "M1-GW01",
        "mqtt": {"url": mosquitto.url},
        "queue": {"path": "queue.db"},
        "counters_interval_s": 1,
        "connectors": [
            {"type": "ocpp", "name": "ocpp", "host": "127.0.0.1", "port": port, "chargers": chargers,
             "rate_limit_per_s": 10_000, "rate_burst": 100_000}
        ],
    }  # fmt: skip
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    log = (tmp_path / "gateway.log").open("ab")
    gateway = subprocess.Popen(
        [sys.executable, "-m", "sitewatch", "gateway", "run", "--config", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"ws://127.0.0.1:{port}"
    rss = PeakRss(gateway.pid)
    try:

        async def listening() -> bool:
            try:
                async with connect(f"{url}/CP-CALM", subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
                    return True
            except OSError:
                return False

        wait_until(lambda: asyncio.run(listening()), 30, "the central system")
        bound = FLOODERS * connection_memory_bound(MAX_MESSAGE)
        after: list[int] = []
        base = rss.settled()
        for round_ in range(2):
            rss.reset()

            async def scenario() -> tuple[list[int], int]:
                stop = asyncio.Event()
                calm = asyncio.create_task(calm_heartbeats(url, stop))
                codes = await asyncio.gather(
                    *(flood(url, f"CP-{i}", oversized=i == 0) for i in range(FLOODERS))
                )
                stop.set()
                return list(codes), await calm

            codes, answered = asyncio.run(scenario())
            assert codes[0] == 1009  # the frame over the limit closed its own connection ("message too big")
            assert answered > 0  # the calm charger was served throughout
            assert rss.peak - base <= bound + SLACK, (
                f"round {round_}: +{(rss.peak - base) / 2**20:.1f} MB > {(bound + SLACK) / 2**20:.1f} MB"
            )
            after.append(rss.settled())
            # what stays once the chargers are gone is within the bound too: nothing of a closed
            # connection is kept, so a second flood does not add to the first (the allocator keeps
            # some freed memory for reuse rather than handing it back at once)
            assert after[-1] - base <= bound + SLACK, [(a - base) / 2**20 for a in after]
    finally:
        rss.close()
        gateway.terminate()
        try:
            gateway.wait(30)
        finally:
            log.close()
    text = (tmp_path / "gateway.log").read_text()
    assert "(unsolicited #1)" in text and "(oversized #1)" in text
