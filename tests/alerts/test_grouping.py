"""Grouping with Alertmanager's timers (group_wait, group_interval, repeat_interval), driven by an
injected clock; inhibition rules; silences and their expiry; escalation steps."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select

from sitewatch.alerts.db import transaction
from sitewatch.alerts.inhibit import InhibitRuleError, load_rules
from sitewatch.alerts.lifecycle import acknowledge
from sitewatch.alerts.matchers import Matcher, MatcherError
from sitewatch.alerts.models import Alert, AlertHistory, ChannelScope, Silence
from sitewatch.alerts.outage import OUTAGE_FAULT
from sitewatch.alerts.silences import SilenceError, create_silence, expire_silence
from sitewatch.assets.models import Asset
from sitewatch.contract import DeviceKind, FindingState, Severity

from .conftest import add_channel, finding
from .harness import START, outbox, wired

W = Severity.WARNING


def camera(n: int, state: FindingState = FindingState.ACTIVE, compound: str = "C0001") -> object:
    return finding(f"{compound}-CA{n:04d}", fault="video_loss", severity=W, kind=DeviceKind.CAMERA, state=state,
                   started_ms=1_790_000_000_000 + n)  # fmt: skip


def listed(engine: Engine) -> list[list[int]]:
    return [n.alert_ids for n in outbox(engine)]


def test_group_wait_collects_alerts_into_one_notification(sqlite_engine: Engine) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x")
    with wired(sqlite_engine, group_wait_s=30, group_interval_s=300) as (core, _d, clock):
        core.apply(camera(1))
        clock.advance(10)
        core.apply(camera(2))
        assert core.tick() == 0  # still waiting
        clock.advance(19.9)
        assert core.tick() == 0
        clock.advance(0.1)
        assert core.tick() == 1
    [ids] = listed(sqlite_engine)
    assert len(ids) == 2


def test_group_interval_renotifies_a_changed_group_and_repeat_interval_an_unchanged_one(
    sqlite_engine: Engine,
) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x")
    with wired(sqlite_engine, group_wait_s=30, group_interval_s=300, repeat_interval_s=3600) as (
        core,
        _d,
        clock,
    ):
        core.apply(camera(1))
        clock.advance(30)
        assert core.tick() == 1
        clock.advance(60)
        core.apply(camera(2))  # joins the existing group: waits for the group interval, not group_wait
        clock.advance(200)
        assert core.tick() == 0
        clock.advance(40)  # 300 s after the last notification
        assert core.tick() == 1
        for step in range(12):  # unchanged: nothing until repeat_interval (3,600 s) has passed
            clock.advance(300)
            assert core.tick() == (1 if step == 11 else 0)
    assert [len(ids) for ids in listed(sqlite_engine)] == [1, 2, 2]


def test_resolved_alerts_are_told_once_and_the_group_goes_quiet(sqlite_engine: Engine) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x")
    with wired(sqlite_engine, group_wait_s=30, group_interval_s=300) as (core, _d, clock):
        core.apply(camera(1))
        clock.advance(30)
        core.tick()
        core.apply(camera(1, FindingState.CLEARED))
        clock.advance(300)
        assert core.tick() == 1
        payload = outbox(sqlite_engine)[-1].payload
        assert payload["webhook"]["status"] == "resolved"
        clock.advance(300)
        assert core.tick() == 0
        core.apply(camera(3))  # the group is empty again: group_wait applies anew
        clock.advance(29)
        assert core.tick() == 0
        clock.advance(1)
        assert core.tick() == 1


def test_a_critical_alert_does_not_wait(sqlite_engine: Engine) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x")
    with wired(sqlite_engine, group_wait_s=30, group_interval_s=300) as (core, _d, clock):
        core.apply(camera(1))
        clock.advance(30)
        core.tick()
        clock.advance(5)
        core.apply(finding())  # entrapment, critical: cuts the group interval short
        assert core.tick() == 1


def test_an_alert_resolved_before_it_was_told_is_never_told(sqlite_engine: Engine) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x")
    with wired(sqlite_engine, group_wait_s=30) as (core, _d, clock):
        core.apply(camera(1))
        clock.advance(5)
        core.apply(camera(1, FindingState.CLEARED))
        clock.advance(30)
        assert core.tick() == 0
    assert outbox(sqlite_engine) == []


def gateway(state: FindingState = FindingState.ACTIVE) -> object:
    return finding("GW0001", fault="offline", severity=W, kind=DeviceKind.GATEWAY, state=state,
                   compound="C0001", source="rule:gateway.offline", episode=f"gw-{1}")  # fmt: skip


def offline(n: int, state: FindingState = FindingState.ACTIVE) -> object:
    return finding(f"C0001-CA{n:04d}", fault="no_data", severity=W, kind=DeviceKind.CAMERA, state=state,
                   source="rule:no_data")  # fmt: skip


def test_a_dead_gateway_hides_its_devices_and_they_do_not_fire_late(sqlite_engine: Engine) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x")
    add_channel(
        sqlite_engine, "manager", "http://127.0.0.1:9/m", scope=ChannelScope.ORGANISATION, target="物业公司2"
    )
    with wired(sqlite_engine, group_wait_s=30, group_interval_s=60) as (core, _d, clock):
        for n in range(1, 4):
            core.apply(offline(n))  # the devices' no-data findings may come first
        core.apply(gateway())
        clock.advance(30)
        core.tick()
        notes = outbox(sqlite_engine)
        assert len(notes) == 1  # the gateway's, to its owner (no crew covers gateways: the manager)
        assert notes[0].payload["webhook"]["alerts"][0]["labels"]["kind"] == "gateway"
        core.apply(gateway(FindingState.CLEARED))  # it comes back; its devices clear a moment later
        clock.advance(20)
        for n in range(1, 4):
            core.apply(offline(n, FindingState.CLEARED))
        for _ in range(5):
            clock.advance(60)
            core.tick()
    kinds = [{a["labels"]["kind"] for a in n.payload["webhook"]["alerts"]} for n in outbox(sqlite_engine)]
    assert kinds == [{"gateway"}, {"gateway"}]  # fired, resolved; never a device


def test_device_alerts_still_firing_after_the_hold_are_told(sqlite_engine: Engine) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x")
    with wired(sqlite_engine, group_wait_s=0, group_interval_s=60, inhibit_hold_s=120) as (core, _d, clock):
        core.apply(gateway())
        core.apply(offline(1))
        core.tick()
        assert outbox(sqlite_engine) == []  # crew group: only the inhibited camera
        core.apply(gateway(FindingState.CLEARED))
        clock.advance(61)
        core.tick()
        assert outbox(sqlite_engine) == []  # within the hold
        clock.advance(61)
        core.tick()
        assert len(outbox(sqlite_engine)) == 1  # a real problem: the camera stayed down


def test_maintenance_mode_hides_the_elevators_non_critical_alerts(sqlite_engine: Engine) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x", min_severity="info")
    el = "C0001-EL0001"
    with wired(sqlite_engine, group_wait_s=0) as (core, _d, _clock):
        core.apply(
            finding(el, fault="maintenance_mode", severity=Severity.INFO, source="rule:elevator.maintenance")
        )
        core.apply(finding(el, fault="door_fault", severity=W, source="rule:elevator.door"))
        core.apply(finding(el, fault="entrapment"))
        core.tick()
    [note] = outbox(sqlite_engine)
    faults = {a["labels"]["fault"] for a in note.payload["webhook"]["alerts"]}
    assert faults == {"maintenance_mode", "entrapment"}  # the door fault is hidden, the entrapment is not


def test_a_compound_wide_outage_is_one_alert(sqlite_engine: Engine) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x")
    add_channel(
        sqlite_engine, "manager", "http://127.0.0.1:9/m", scope=ChannelScope.ORGANISATION, target="物业公司2"
    )
    with transaction(sqlite_engine) as session:
        assets = session.execute(
            select(Asset.asset_code, Asset.kind).where(
                Asset.asset_code.like("C0001-%"), Asset.kind != "gateway"
            )
        ).all()
    assert len({kind for _, kind in assets}) == 5

    def report(state: FindingState) -> None:
        for code, kind in assets:
            core.apply(
                finding(
                    code,
                    fault="offline",
                    severity=W,
                    kind=DeviceKind(kind),
                    source="rule:offline",
                    state=state,
                )
            )

    with wired(sqlite_engine, group_wait_s=30) as (core, _d, clock):
        report(FindingState.ACTIVE)  # every device of the compound offline at once
        clock.advance(30)
        core.tick()
        [note] = outbox(sqlite_engine)
        [alert] = note.payload["webhook"]["alerts"]
        assert alert["labels"]["fault"] == OUTAGE_FAULT and alert["labels"]["severity"] == "critical"
        assert note.payload["webhook"]["receiver"] == "manager"  # no crew owns a compound: its manager
        report(FindingState.CLEARED)  # power back
        clock.advance(10)
        core.tick()
    with transaction(sqlite_engine) as session:
        assert (
            session.execute(select(Alert.state).where(Alert.fault == OUTAGE_FAULT)).scalar_one() == "resolved"
        )


def test_inhibition_rules_file_is_checked(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    bad = folder / "rules.yaml"
    bad.write_text("- name: x\n  source: ['kind=~(']\n  target: ['a=b']\n")
    with pytest.raises(InhibitRuleError, match="rule 1"):
        load_rules(bad)
    bad.write_text("{not: a list}")
    with pytest.raises(InhibitRuleError, match="list of rules"):
        load_rules(bad)
    good = folder / "good.yaml"
    good.write_text(
        "- name: only\n  source: ['fault=power_outage']\n  target: ['kind=camera']\n  equal: [compound]\n"
    )
    assert [r.name for r in load_rules(good)] == ["only"]
    assert [r.name for r in load_rules()] == ["gateway_down", "elevator_maintenance", "compound_power_outage"]


def test_silence_holds_notifications_until_it_expires(sqlite_engine: Engine) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x")
    with wired(sqlite_engine, group_wait_s=0, group_interval_s=60, escalation_minutes={}) as (
        core,
        _d,
        clock,
    ):
        with transaction(sqlite_engine) as session:
            create_silence(session, [Matcher.parse("compound=C0001"), Matcher.parse("kind=~camera|charger")],
                           clock.now, clock.now + dt.timedelta(minutes=10), "王经理", "planned maintenance", clock.now)  # fmt: skip
        core.apply(camera(1))
        core.apply(finding())  # an elevator: not silenced
        core.tick()
        assert [n.payload["webhook"]["alerts"][0]["labels"]["kind"] for n in outbox(sqlite_engine)] == [
            "elevator"
        ]
        clock.advance(601)  # the silence expires by itself
        core.tick()
    last = outbox(sqlite_engine)[-1].payload["webhook"]["alerts"]
    assert {a["labels"]["kind"] for a in last} == {"camera", "elevator"}


def test_unsilence_ends_a_silence_early(sqlite_engine: Engine) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x")
    with wired(sqlite_engine, group_wait_s=0, group_interval_s=60) as (core, _d, clock):
        with transaction(sqlite_engine) as session:
            silence = create_silence(session, [Matcher.parse("compound=C0001")], clock.now,
                                     clock.now + dt.timedelta(hours=2), "王经理", "drill", clock.now)  # fmt: skip
            silence_id = silence.id
        core.apply(camera(1))
        core.tick()
        assert outbox(sqlite_engine) == []
        clock.advance(30)
        with transaction(sqlite_engine) as session:
            expire_silence(session, session.get_one(Silence, silence_id), "李主任", clock.now)
        clock.advance(30)
        core.tick()
        assert len(outbox(sqlite_engine)) == 1


@pytest.mark.parametrize(
    ("matchers", "start", "end", "author", "reason", "message"),
    [
        (["compound=C0001"], 10, 5, "a", "r", "ends .* before it starts"),
        (["compound=C0001"], -20, -10, "a", "r", "in the past"),
        ([], 0, 10, "a", "r", "at least one matcher"),
        (["compound=~.*"], 0, 10, "a", "r", "every alert"),
        (["compound=C0001"], 0, 10, " ", "r", "author"),
        (["compound=C0001"], 0, 10, "a", "", "reason"),
    ],
)
def test_bad_silences_are_refused_with_the_reason(
    sqlite_engine: Engine, matchers: list[str], start: int, end: int, author: str, reason: str, message: str
) -> None:
    now = START
    with transaction(sqlite_engine) as session, pytest.raises(SilenceError, match=message):
        create_silence(session, [Matcher.parse(m) for m in matchers], now + dt.timedelta(minutes=start),
                       now + dt.timedelta(minutes=end), author, reason, now)  # fmt: skip


@pytest.mark.parametrize(
    "text", ["compound", "=x", "Compound!=x x", "kind=~(", "a" * 70 + "=b", "x=" + "v" * 300]
)
def test_bad_matchers_are_refused(text: str) -> None:
    with pytest.raises(MatcherError):
        Matcher.parse(text)


def test_escalation_goes_up_a_level_at_a_time_and_is_recorded(sqlite_engine: Engine) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x")
    add_channel(sqlite_engine, "manager", "http://127.0.0.1:9/m", scope=ChannelScope.ORGANISATION,
                target="物业公司2", escalation_only=True)  # fmt: skip
    add_channel(sqlite_engine, "bureau", "http://127.0.0.1:9/b", scope=ChannelScope.ALL, target="",
                escalation_only=True)  # fmt: skip
    with wired(sqlite_engine, group_wait_s=0, escalation_minutes={"critical": 5}) as (core, _d, clock):
        core.apply(finding())
        core.tick()
        for _minute in range(15):
            clock.advance(60)
            core.tick()
    notes = outbox(sqlite_engine)
    kinds = [(n.kind, n.payload["webhook"]["receiver"]) for n in notes]
    assert kinds == [
        ("group", "crew"),
        ("escalation", "crew"),
        ("escalation", "manager"),
        ("escalation", "bureau"),
    ]
    assert notes[1].payload["mentions"] == ["13800000002"]  # the crew lead
    assert "物业" in notes[2].payload["text"] or "property manager" in notes[2].payload["text"]
    with transaction(sqlite_engine) as session:
        steps = session.execute(
            select(AlertHistory.at, AlertHistory.detail).where(AlertHistory.event == "escalated")
        ).all()
    assert [s.at.minute for s in steps] == [5, 10, 15]
    assert "level 2" in steps[1].detail and "manager" in steps[1].detail


def test_acknowledged_alerts_do_not_escalate(sqlite_engine: Engine) -> None:
    add_channel(sqlite_engine, "crew", "http://127.0.0.1:9/x")
    with wired(sqlite_engine, group_wait_s=0, escalation_minutes={"critical": 5}) as (core, _d, clock):
        core.apply(finding())
        core.tick()
        with transaction(sqlite_engine) as session:
            alert = session.execute(select(Alert)).scalar_one()
            acknowledge(session, alert, "张工", clock.now, core.dispatcher.touch)
        clock.advance(3600)
        core.tick()
    assert [n.kind for n in outbox(sqlite_engine)] == ["group"]


def test_an_alert_of_an_unknown_compound_goes_to_the_channels_for_everything(engine: Engine) -> None:
    # no crew, no manager, no district: the crew and organisation levels match no channel (on
    # PostgreSQL too, which refuses a text holding NUL, the placeholder target these levels once used)
    add_channel(engine, "crew", "http://127.0.0.1:9/x")
    add_channel(engine, "everything", "http://127.0.0.1:9/all", scope=ChannelScope.ALL, target="")
    with wired(engine, group_wait_s=0) as (core, _d, _clock):
        core.apply(camera(1, compound="X9999"))
        assert core.tick() == 1
    [notification] = outbox(engine)
    with transaction(engine) as session:
        [alert] = session.execute(select(Alert)).scalars()
        assert alert.crew is None and "manager" not in alert.labels
    assert notification.alert_ids == [alert.id]
    assert notification.channel_id != 1  # the channel for everything, not the crew's
