"""The analytics service's pure parts: partitions of a city, checkpoint files."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from sitewatch.analytics.checkpoint import Checkpoint, CheckpointError, Published, load, save
from sitewatch.analytics.partition import Partition, bucket, topic_filters
from sitewatch.contract import parse_topic
from sitewatch.simulators.city import generate_city


@pytest.mark.parametrize("spec", ["0/4", "5/4", "2", "2/0", "a/b", "1/4/2", " ", "2/4\n3", "-1/4"])
def test_a_bad_partition_is_refused_with_the_reason(spec: str) -> None:
    with pytest.raises(ValueError, match="partition"):
        Partition.parse(spec)


def test_partition_parse_and_label() -> None:
    p = Partition.parse("2/4")
    assert (p.index, p.count, p.label, str(p)) == (2, 4, "2of4", "2/4")


def test_partitions_split_a_city_with_no_device_on_two_workers() -> None:
    records = generate_city(267, seed=7)
    codes = [c["code"] for c in records["compounds"]]
    devices = [(a["compound_code"], a["device_id"]) for a in records["assets"]]
    for count in (1, 2, 4, 7):
        parts = [Partition(k, count) for k in range(1, count + 1)]
        shares = [set(p.select(codes)) for p in parts]
        assert set().union(*shares) == set(codes)  # every compound has a worker
        assert sum(len(s) for s in shares) == len(codes)  # and only one
        assert min(len(s) for s in shares) >= len(codes) / count * 0.6  # and no worker is left idle
        # a device's messages travel on its compound's topics: the worker owning the compound
        owners: dict[str, set[int]] = {}
        for compound, device in devices:
            for k, share in enumerate(shares):
                if compound in share:
                    owners.setdefault(device, set()).add(k)
        assert len(owners) == len(devices) and all(len(v) == 1 for v in owners.values())
        # each worker subscribes to its compounds' topics only
        for share in shares:
            subscribed = {parse_topic(f.replace("+", "GW")) for f in topic_filters(share)}
            assert {t.compound for t in subscribed if t} == share


def test_the_bucket_is_stable_across_processes() -> None:
    # CRC-32 of the code, not Python's per-process salted hash: these values must never change, or
    # a deployment's workers would swap compounds (and their checkpointed state) on an upgrade
    assert [bucket(c, 4) for c in ("220106-0001", "220102-0002", "C0001")] == [2, 2, 0]
    code = "from sitewatch.analytics.partition import bucket; print(bucket('220106-0001', 7), bucket('x', 7))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout for _ in range(2)}
    assert runs == {f"{bucket('220106-0001', 7)} {bucket('x', 7)}\n"}


def test_checkpoint_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    path = tmp_path / "state" / "w.ckpt"
    assert load(path) is None
    published = Published()
    published.add(("rule:a:X-EL1:1", "active"))
    save(path, Checkpoint(b"\x00engine\xff", published, {"partition": "1/1"}))
    save(path, Checkpoint(b"second", published, {"partition": "1/1"}))
    back = load(path)
    assert back is not None and back.engine == b"second" and back.meta["partition"] == "1/1"
    assert ("rule:a:X-EL1:1", "active") in back.published
    assert [p.name for p in path.parent.iterdir()] == ["w.ckpt"]  # no temporary file left


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "other"])
def test_a_damaged_checkpoint_is_refused_naming_the_file(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "w.ckpt"
    save(path, Checkpoint(b"engine" * 100, Published(), {}))
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[40] ^= 0x01
    elif damage == "truncate":
        data = data[:-10]
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b'{"not": "a checkpoint"}')
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"w\.ckpt"):
        load(path)


def test_the_published_set_is_bounded_and_forgets_the_oldest() -> None:
    published = Published(limit=3)
    for i in range(5):
        published.add((f"f{i}", "active"))
    assert len(published) == 3 and ("f0", "active") not in published and ("f4", "active") in published
    assert Published.from_list(published.as_list()).keys == published.keys
    with pytest.raises(CheckpointError):
        Published.from_list([["only-one"]])


def _run_cli(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    from click.testing import CliRunner

    from sitewatch.cli import main

    result = CliRunner().invoke(main, ["--lang", "en", "analytics", "run", *args], env=env)
    return result.exit_code, result.output


def test_run_refuses_a_bad_partition_a_ledger_without_compounds_and_a_damaged_checkpoint(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    (ledger / "compounds.csv").write_text("code,latitude,longitude\nC1,43.9,125.3\n")
    env = {"SITEWATCH_DATA_DIR": str(tmp_path / "data"), "SITEWATCH_MQTT__URL": "mqtt://127.0.0.1:1"}
    code, out = _run_cli(["--partition", "5/4", "--ledger", str(ledger)], env)
    assert code == 2 and "K must be between 1 and N" in out, out
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "compounds.csv").write_text("code,latitude,longitude\n")
    code, out = _run_cli(["--ledger", str(empty)], env)
    assert code == 1 and "cannot read the compound list" in out, out
    state = tmp_path / "data" / "analytics" / "w1.ckpt"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"SWCKPT1\n" + b"\x00" * 100)
    code, out = _run_cli(["--ledger", str(ledger), "--client-id", "w1"], env)
    assert code == 1 and "cannot restore the analytics state" in out and "checksum" in out, out
    # a checkpoint of another partition is refused too: its state holds other compounds
    save(state, Checkpoint(b"{}", Published(), {"partition": "1/2"}))
    code, out = _run_cli(["--ledger", str(ledger), "--client-id", "w1"], env)
    assert code == 1 and "written by partition 1/2" in out, out
    # an engine snapshot it cannot read: refused, not half-used
    save(state, Checkpoint(b"not the engine's", Published(), {"partition": "1/1"}))
    code, out = _run_cli(["--ledger", str(ledger), "--client-id", "w1"], env)
    assert code == 1 and "unreadable engine snapshot" in out, out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_checkpoint_child_dies_with_its_worker() -> None:
    # a worker SIGKILLed while its child writes a checkpoint must not leave the child running: it
    # would replace a newer checkpoint of the restarted worker with its older one
    code = (
        "import os, sys, time\n"
        "from sitewatch.analytics.service import _die_with_parent\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    _die_with_parent()\n"
        "    time.sleep(30)\n"
        "    os._exit(0)\n"
        "print(pid, flush=True)\n"
        "time.sleep(30)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    child = int(worker.stdout.readline())
    time.sleep(0.3)  # the child has set its death signal
    assert Path(f"/proc/{child}").exists()
    worker.kill()
    worker.wait(10)
    worker.stdout.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has died (its parent is gone, init reaps it)


def test_a_message_the_state_already_holds_is_not_applied_twice() -> None:
    from sitewatch.analytics import Engine, Site, load_rules
    from sitewatch.analytics.processor import Processor
    from sitewatch.analytics.stats import AnalyticsStats
    from sitewatch.contract import Channel, DeviceKind, Envelope, Event, EventMessage, Limits, now_ms, topic

    stats = AnalyticsStats()
    processor = Processor(Engine(load_rules(), {"C1": Site(43.88, 125.32)}), Limits(), stats, Published())
    t = topic("C1", "C1-GW01", Channel.EVENT)
    ts = now_ms() - 3_600_000

    def message(bdseq: int, seq: int, n: int) -> bytes:
        event = Event(f"C1-EL{n:04d}", DeviceKind.ELEVATOR, ts, "entrapment", True)
        return EventMessage(Envelope("C1", "C1-GW01", bdseq, seq, ts), (event,)).encode()

    assert len(processor.handle(t, message(1, 254, 1), now_ms())) >= 1
    assert processor.handle(t, message(1, 254, 2), now_ms(), dup=True) == []  # sent again: a redelivery
    assert stats.repeated_messages == 1 and stats.events == 1
    assert processor.handle(t, message(1, 255, 3), now_ms())  # the next one
    assert processor.handle(t, message(1, 0, 4), now_ms())  # seq wraps from 255 to 0
    assert processor.handle(t, message(1, 200, 5), now_ms(), dup=True) == []  # 56 behind: one it had
    assert processor.handle(t, message(0, 1, 6), now_ms(), dup=True) == []  # an earlier session's message
    assert processor.handle(t, message(2, 0, 7), now_ms())  # the gateway reconnected: a new baseline
    # a first delivery is applied even behind the last seq (data and events may cross on their way)
    assert processor.handle(t, message(2, 250, 8), now_ms())
    assert processor.seqs[("C1", "C1-GW01")] == (2, 0)  # and does not move the baseline back
    assert stats.repeated_messages == 3 and stats.events == 5
