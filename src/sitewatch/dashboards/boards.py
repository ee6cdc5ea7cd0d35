"""The dashboards: city, compound, one per device kind, and the ingest pipeline.

Each function builds one dashboard with ``grafana-foundation-sdk`` in the language of the moment
(titles and descriptions through the catalog); :func:`build` runs them for one language.
Every query reads only what the store holds (docs/store.md: one measurement per kind with the tags
``compound``, ``device``, ``kind`` and the hierarchy tags, and ``events``), and names metrics and
events through the contract, so a dashboard cannot ask for a metric no device sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, statetimeline, table, text, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models

from ..contract import KINDS, DeviceKind, Severity
from ..i18n import N_, _, current_language
from .queries import (
    BUILDING,
    CITY,
    COMPOUND,
    DATASOURCE,
    EVENTS,
    INTERVAL,
    Influx,
    Scope,
    Select,
    event_match,
    events_of,
    metric,
    per_device,
)

TAGS = ["sitewatch"]
# the zone daily windows are cut in: the committed dashboards are built for China's one zone (the
# settings' default); a deployment elsewhere changes it and rebuilds (docs/dashboards.md)
LOCAL_DAYS = "tz('Asia/Shanghai')"

EL, CA, CH, SL, WM, GW = (DeviceKind.ELEVATOR, DeviceKind.CAMERA, DeviceKind.CHARGER, DeviceKind.STREETLIGHT,
                          DeviceKind.WATER_METER, DeviceKind.GATEWAY)  # fmt: skip
DEVICE_KINDS = (EL, CA, CH, SL, WM)
# a metric every sample of the kind carries, counted to tell which devices report
HEARTBEAT = {EL: "run_state", CA: "online", CH: "status", SL: "lamp_on", WM: "volume_register"}


@dataclass(frozen=True)
class Board:
    """One dashboard: its file name (without language) and its model."""

    slug: str
    model: models.Dashboard


PanelBuilder = timeseries.Panel | stat.Panel | table.Panel | text.Panel | statetimeline.Panel


def _dashboard(slug: str, title: str, description: str, *, span: str = "now-24h",
               variables: tuple[str, ...] = ()) -> dash.Dashboard:  # fmt: skip
    lang = current_language().lower().replace("_", "-")
    board = (
        dash.Dashboard(title)
        .uid(f"sitewatch-{slug}-{lang}")
        .description(description)
        .tags([*TAGS, lang])
        .timezone("browser")
        .time(span, "now")
        .refresh("1m")
        .editable()
        .annotations([])  # Grafana adds its built-in one
        .variables([])
        .link(
            dash.DashboardLink(_("sitewatch dashboards")).type(models.DashboardLinkType.DASHBOARDS)
            .tags([*TAGS, lang]).as_dropdown(True).include_vars(True).keep_time(True)
        )
    )  # fmt: skip
    if "compound" in variables:
        board.with_variable(
            dash.QueryVariable("compound")
            .label(_("Compound"))
            .description(_("Compound code, from the store's tag values"))
            .datasource(DATASOURCE)
            .query('SHOW TAG VALUES WITH KEY = "compound"')
            .refresh(models.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(models.VariableSort.ALPHABETICAL_ASC)
        )
    if "building" in variables:
        board.with_variable(
            dash.QueryVariable("building")
            .label(_("Building"))
            .description(_("Buildings of the compound (devices the registry has placed in one)"))
            .datasource(DATASOURCE)
            .query('SHOW TAG VALUES WITH KEY = "building" WHERE "compound" =~ /^$compound$/')
            .refresh(models.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(models.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")  # also devices not placed in a building (no building tag)
        )
    return board


def _grid(board: dash.Dashboard, panels: list[PanelBuilder], *, width: int = 12, height: int = 8) -> dash.Dashboard:
    """Lay panels out two to a row (a panel's own width is kept when it set one)."""
    x = y = 0
    row_height = 0
    for n, panel in enumerate(panels, start=1):
        model = panel.build()
        w = model.grid_pos.w if model.grid_pos else width
        h = model.grid_pos.h if model.grid_pos else height
        if x + w > 24:
            x, y = 0, y + row_height
            row_height = 0
        panel.id(n).grid_pos(models.GridPos(h=h, w=w, x=x, y=y))
        board.with_panel(panel)
        x += w
        row_height = max(row_height, h)
    return board


def _ts(title: str, description: str, *targets: Influx, unit: str = "short", interval: str | None = None,
        stack: bool = False, bars: bool = False) -> timeseries.Panel:  # fmt: skip
    panel = timeseries.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit)
    for ref, target in zip("ABCDEFGH", targets, strict=False):
        panel.with_target(target.ref_id(ref))
    if interval:
        panel.interval(interval)
    if bars:
        panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
    if stack:
        panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    return panel


def _stat(title: str, description: str, target: Influx, *, unit: str = "short", width: int = 6,
          height: int = 4) -> stat.Panel:  # fmt: skip
    return (
        stat.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit)
        .with_target(target).grid_pos(models.GridPos(h=height, w=width))
    )  # fmt: skip


def _table(title: str, description: str, *targets: Influx, width: int = 12, height: int = 8,
           merge: bool = False) -> table.Panel:  # fmt: skip
    panel = table.Panel().title(title).description(description).datasource(DATASOURCE)
    for ref, target in zip("ABCDEFGH", targets, strict=False):
        panel.with_target(target.table().ref_id(ref))
    if merge:
        panel.with_transformation(models.DataTransformerConfig(id_val="merge", options={}))
    return panel.grid_pos(models.GridPos(h=height, w=width))


def _note(title: str, content: str, *, width: int = 12, height: int = 8) -> text.Panel:
    return text.Panel().title(title).content(content).grid_pos(models.GridPos(h=height, w=width))


def _reporting(kind: DeviceKind, scope: Scope, *, window: str | None = INTERVAL) -> Influx:
    """Devices of ``kind`` with at least one reading per window (or in the range)."""
    m = metric(kind, HEARTBEAT[kind])
    return per_device(kind.value, f'last("{m}") AS "v"', f'count("v") AS "{kind.value}"', m, scope=scope,
                      window=window)  # fmt: skip


def _increase(kind: DeviceKind, name: str, scope: Scope, *, window: str = INTERVAL, per: str = "",
              tail: str = "") -> Influx:  # fmt: skip
    """Consumption of a register per window, summed over devices: the step of each device's newest
    value from one window to the next (``non_negative_difference(max(...))``: a register reset
    gives no negative step; the first window of the range has no step before it)."""
    m = metric(kind, name)
    return per_device(kind.value, f'non_negative_difference(max("{m}")) AS "d"', f'sum("d") AS "{name}"', m,
                      scope=scope, window=window, outer_group=[per] if per else [], tail=tail)  # fmt: skip


def _event_count(names: tuple[str, ...], scope: Scope, *, by: str = '"event"', window: str | None = INTERVAL,
                 column: str = "events") -> Influx:  # fmt: skip
    groups = [*([f"time({window})"] if window else []), *([by] if by else [])]
    return Select(EVENTS, f'count("attrs") AS "{column}"', "attrs", scope, [event_match(names)], groups,
                  "fill(none)").target()  # fmt: skip


def _event_table(names: tuple[str, ...], scope: Scope, limit: int = 500) -> Influx:
    return Select(EVENTS, '"compound", "device", "kind", "event", "active", "attrs"', "attrs", scope,
                  [event_match(names)], (), f"ORDER BY time DESC LIMIT {limit}").target()  # fmt: skip


def _faults(kind: DeviceKind | None = None) -> tuple[str, ...]:
    return events_of(kind, severities=(Severity.WARNING, Severity.CRITICAL), exclude=("offline",))


# -- the dashboards --------------------------------------------------------------------------------


def _alerts_note() -> text.Panel:
    return _note(
        _("Active alerts"),
        _("Alerts are not in the time-series store: the alert service keeps them in its SQL database "
          "(PostgreSQL in docker-compose.yml). See them in the console's alerts page (/alerts), through "
          "GET /api/v1/alerts, or with `sitewatch alerts list`. The panels here show the device events "
          "the alerts are raised from."),
        width=8,
    )  # fmt: skip


def city() -> Board:
    board = _dashboard("city", _("sitewatch: city overview"),
                       _("Every compound at once: health, devices reporting, today's faults"))  # fmt: skip
    stateful = tuple(sorted({e.name for s in KINDS.values() for e in s.events.values() if e.stateful}))
    critical = events_of(severities=(Severity.CRITICAL,))
    health = _table(
        _("Compounds by health"),
        _("Per compound: stateful faults whose newest event in the range raised them (still active at its "
          "end), critical events in the range, and the share of cameras whose newest health check answered."),
        per_device(EVENTS, 'last("active") AS "a"', 'count("a") AS "active_faults"', "active", window=None,
                   conditions=[event_match(stateful)], inner_group=['"compound"', '"device"', '"event"'],
                   outer_where=['"a" = true'], outer_group=['"compound"'],
                   may_be_empty=N_("every fault raised in the range was cleared before its end")),
        _event_count(critical, CITY, by='"compound"', window=None, column="critical_events"),
        per_device(CA.value, f'last("{metric(CA, "online")}") AS "o"', 'mean("o") * 100 AS "cameras_online_pct"',
                   "online", window=None, inner_group=['"compound"', '"device"'], outer_group=['"compound"']),
        merge=True, width=16,
    )  # fmt: skip
    reporting = _ts(_("Devices reporting, per kind"),
                    _("Devices with at least one reading in each interval, per kind (a device that stops "
                      "reporting drops out; water meters report every 15 minutes)."),
                    *[_reporting(k, CITY) for k in DEVICE_KINDS], interval="15m")  # fmt: skip
    online = _ts(_("Cameras online"), _("Share of cameras whose health check answered (the online flag)."),
                 per_device(CA.value, f'last("{metric(CA, "online")}") AS "o"', 'mean("o") * 100 AS "online"',
                            "online"), unit="percent", interval="5m")  # fmt: skip
    faults = _faults()
    today = _table(_("Today's faults"), _("Warning and critical device events since local midnight, newest first."),
                   _event_table(faults, CITY), width=16)  # fmt: skip
    today.time_from("now/d")
    per_kind = _ts(_("Fault events today, per type"), _("Warning and critical events per hour since midnight."),
                   _event_count(faults, CITY, window="1h").alias("$tag_event"), bars=True, stack=True)  # fmt: skip
    per_kind.time_from("now/d").grid_pos(models.GridPos(h=8, w=8))
    return Board("city", _grid(board, [health, _alerts_note(), reporting, online, today, per_kind]).build())


def compound() -> Board:
    board = _dashboard("compound", _("sitewatch: compound"),
                       _("One compound: every kind's key figures, its gateway's state and counters"),
                       variables=("compound", "building"))  # fmt: skip
    stats: list[PanelBuilder] = [
        _stat(_("Elevators reporting"), _("Elevators with a reading in the range."), _reporting(EL, BUILDING, window=None), width=5),
        _stat(_("Cameras online"), _("Share of cameras whose newest health check answered."),
              per_device(CA.value, 'last("online") AS "o"', 'mean("o") * 100', "online", scope=BUILDING, window=None),
              unit="percent", width=5),
        _stat(_("Chargers charging"), _("Chargers whose newest status is Charging."),
              per_device(CH.value, 'last("status") AS "s"', 'count("s")', "status", scope=BUILDING, window=None,
                         outer_where=[f'"s" = {KINDS[CH].metrics["status"].states.index("Charging")}'],
                         may_be_empty=N_("no charger is charging at the range's end")), width=5),
        _stat(_("Lamps on"), _("Streetlights whose newest reading says the lamp is on."),
              per_device(SL.value, 'last("lamp_on") AS "l"', 'sum("l")', "lamp_on", scope=BUILDING, window=None),
              width=4),
        _stat(_("Water used"), _("Water the meters counted in the range (m³)."),
              per_device(WM.value, 'non_negative_difference(max("volume_register")) AS "d"', 'sum("d")',
                         "volume_register", scope=BUILDING, window="1h", outer_window=False),
              unit="m3", width=5),
    ]
    panels: list[PanelBuilder] = [
        *stats,
        _ts(_("Elevator trips"), _("Trips per interval, all elevators (steps of the trip counter)."),
            _increase(EL, "trip_count", BUILDING), bars=True, interval="5m"),
        _ts(_("Charging power"), _("Power delivered by all chargers (kW)."),
            per_device(CH.value, 'mean("power") AS "p"', 'sum("p") AS "power"', "power", scope=BUILDING),
            unit="kwatt", interval="1m"),
        _ts(_("Water use per hour"), _("Consumption per hour, all meters (m³)."),
            _increase(WM, "volume_register", BUILDING, window="1h"), unit="m3", bars=True),
        _ts(_("Cameras online"), _("Share of cameras whose health check answered."),
            per_device(CA.value, 'last("online") AS "o"', 'mean("o") * 100 AS "online"', "online", scope=BUILDING),
            unit="percent", interval="5m"),
        _table(_("Gateway state"), _("The gateway's births and deaths as ingest stored them, newest first."),
               Select(EVENTS, '"device", "event", "attrs"', "attrs", COMPOUND,
                      ['"kind" = \'gateway\'', event_match(("offline", "online"))], (),
                      "ORDER BY time DESC LIMIT 50").target()),
        _ts(_("Gateway counters"), _("Readings the gateway read, published and had acknowledged per interval, "
                                     "and what it dropped."),
            *[per_device(GW.value, f'non_negative_difference(max("{metric(GW, m)}")) AS "d"', f'sum("d") AS "{m}"',
                         m, scope=COMPOUND) for m in ("read_total", "sent_total", "acked_total", "dropped_total")],
            interval="1m"),
        _ts(_("Gateway queue"), _("Readings waiting in the gateway's disk queue, and devices answering it."),
            Select(GW.value, f'max("{metric(GW, "queue_depth")}") AS "queue_depth", '
                   f'last("{metric(GW, "devices_online")}") AS "devices_online"', "queue_depth", COMPOUND,
                   (), [f"time({INTERVAL})"], "fill(none)").target(), interval="1m"),
    ]
    return Board("compound", _grid(board, panels).build())


# colours of the states a person looks for first; the others take Grafana's palette
STATE_COLOURS = {"Available": "green", "Charging": "blue", "Faulted": "red", "Unavailable": "gray",
                 "SuspendedEVSE": "orange"}  # fmt: skip


def _state_mappings(kind: DeviceKind, name: str) -> list[models.ValueMapping]:
    """The contract's state codes shown by their names (OCPP's own, not translated)."""
    states = KINDS[kind].metrics[name].states
    return [models.ValueMap(options={
        str(code): models.ValueMappingResult(text=label, index=code, color=STATE_COLOURS.get(label))
        for code, label in enumerate(states)})]  # fmt: skip


def elevator() -> Board:
    board = _dashboard("elevator", _("sitewatch: elevators"), _("Trips, door faults and vibration of the elevators"),
                       variables=("compound", "building"))  # fmt: skip
    door = events_of(EL, names=("door_fault",))
    panels: list[PanelBuilder] = [
        _ts(_("Trips per hour, per elevator"), _("Steps of each elevator's trip counter per hour."),
            per_device(EL.value, 'non_negative_difference(max("trip_count")) AS "trips"', 'sum("trips")', "trip_count",
                       scope=BUILDING, window="1h", outer_group=['"device"']).alias("$tag_device"), bars=True),
        _ts(_("Door faults"), _("Door faults per hour: the events, and the steps of the door fault counter."),
            _event_count(door, BUILDING, window="1h", by=""),
            _increase(EL, "door_faults", BUILDING, window="1h"), bars=True),
        _ts(_("Vibration trend"), _("Car vibration (RMS acceleration) per elevator; a rising trend is wear."),
            Select(EL.value, f'mean("{metric(EL, "vibration_rms")}")', "vibration_rms", BUILDING, (),
                   [f"time({INTERVAL})", '"device"'], "fill(none)").target().alias("$tag_device"),
            unit="m/s²", interval="5m"),
        _ts(_("Motor current"), _("Traction motor current per elevator (A), its peak per interval."),
            Select(EL.value, f'max("{metric(EL, "motor_current")}")', "motor_current", BUILDING, (),
                   [f"time({INTERVAL})", '"device"'], "fill(none)").target().alias("$tag_device"),
            unit="amp", interval="5m"),
        _table(_("Elevator faults"), _("Warning and critical events of the elevators, newest first."),
               _event_table(_faults(EL), BUILDING), width=24),
    ]
    return Board("elevator", _grid(board, panels).build())


def charger() -> Board:
    board = _dashboard("charger", _("sitewatch: EV chargers"), _("Sessions, energy and status of the chargers"),
                       variables=("compound", "building"))  # fmt: skip
    status = (
        statetimeline.Panel().title(_("Status timeline"))
        .description(_("Each charger's OCPP connector status over time."))
        .datasource(DATASOURCE).mappings(_state_mappings(CH, "status")).interval("5m")
        .with_target(Select(CH.value, f'last("{metric(CH, "status")}")', "status", BUILDING, (),
                            [f"time({INTERVAL})", '"device"'], "fill(none)").target().alias("$tag_device"))
        .grid_pos(models.GridPos(h=10, w=24))
    )  # fmt: skip
    panels: list[PanelBuilder] = [
        _ts(_("Charging sessions"), _("Sessions started per hour."),
            _event_count(events_of(CH, names=("session_started",)), BUILDING, window="1h", by=""), bars=True),
        _ts(_("Energy delivered"), _("Energy per hour, all chargers (kWh; steps of the energy register)."),
            _increase(CH, "energy_register", BUILDING, window="1h"), unit="kwatth", bars=True),
        status,
        _ts(_("Charger temperature"), _("Internal temperature per charger, its peak per interval (°C)."),
            Select(CH.value, f'max("{metric(CH, "temperature")}")', "temperature", BUILDING, (),
                   [f"time({INTERVAL})", '"device"'], "fill(none)").target().alias("$tag_device"),
            unit="celsius", interval="5m"),
        _table(_("Charger faults"), _("Warning and critical events of the chargers, newest first."),
               _event_table(_faults(CH), BUILDING)),
    ]
    return Board("charger", _grid(board, panels).build())


def streetlight() -> Board:
    board = _dashboard("streetlight", _("sitewatch: streetlights"),
                       _("When the lamps burn, against daylight; lamp failures and day burning"),
                       variables=("compound", "building"), span="now-7d")  # fmt: skip
    panels: list[PanelBuilder] = [
        _ts(_("Lamps on against ambient light"),
            _("Share of lamps on, and the ambient light the lamps measure (lx): lamps should switch on at sunset "
              "and off at sunrise, when the light crosses the threshold. The store holds no sun times: "
              "the measured light stands for them."),
            per_device(SL.value, 'mean("lamp_on") AS "l"', 'mean("l") * 100 AS "lamps_on_pct"', "lamp_on",
                       scope=BUILDING),
            per_device(SL.value, 'mean("ambient_light") AS "a"', 'median("a") AS "ambient_lx"', "ambient_light",
                       scope=BUILDING), interval="5m"),
        _ts(_("On-hours per day, per lamp"), _("Hours each lamp burnt per local day (steps of its burning-hours "
                                               "counter, hour by hour)."),
            per_device(SL.value, 'non_negative_difference(max("burning_hours")) AS "h"', 'sum("h")', "burning_hours",
                       scope=BUILDING, window="1h", outer_window="1d", outer_group=['"device"'],
                       tail=LOCAL_DAYS).alias("$tag_device"), unit="h", bars=True),
        _ts(_("Lamp power"), _("Power of all lamps (W)."),
            per_device(SL.value, 'mean("power") AS "p"', 'sum("p") AS "power"', "power", scope=BUILDING),
            unit="watt", interval="5m"),
        _table(_("Lamp failures and day burning"), _("Lamp events, newest first."),
               _event_table(events_of(SL, names=("lamp_failure", "day_burning", "flicker")), BUILDING)),
    ]
    return Board("streetlight", _grid(board, panels).build())


def camera() -> Board:
    board = _dashboard("camera", _("sitewatch: cameras"), _("Cameras online, their storage and video faults"),
                       variables=("compound", "building"))  # fmt: skip
    panels: list[PanelBuilder] = [
        _ts(_("Cameras online"), _("Share of cameras whose health check answered."),
            per_device(CA.value, 'last("online") AS "o"', 'mean("o") * 100 AS "online"', "online", scope=BUILDING),
            unit="percent", interval="5m"),
        _ts(_("Free storage, per camera"), _("Free recording storage per camera (%); near zero the recorder "
                                             "overwrites or stops."),
            Select(CA.value, f'min("{metric(CA, "storage_free")}")', "storage_free", BUILDING, (),
                   [f"time({INTERVAL})", '"device"'], "fill(none)").target().alias("$tag_device"),
            unit="percent", interval="15m"),
        _ts(_("Bitrate"), _("Video bitrate per camera (kbit/s)."),
            Select(CA.value, f'mean("{metric(CA, "bitrate")}")', "bitrate", BUILDING, (),
                   [f"time({INTERVAL})", '"device"'], "fill(none)").target().alias("$tag_device"),
            unit="Kbits", interval="5m"),
        _table(_("Camera faults"), _("Tamper, video loss and full storage, newest first."),
               _event_table(_faults(CA), BUILDING)),
    ]
    return Board("camera", _grid(board, panels).build())


def water_meter() -> Board:
    board = _dashboard("water", _("sitewatch: water"), _("Consumption by hour, minimum night flow, meter faults"),
                       variables=("compound", "building"), span="now-7d")  # fmt: skip
    panels: list[PanelBuilder] = [
        _ts(_("Consumption by hour"), _("Water used per hour, all meters (m³): the steps of each meter's register "
                                        "between hours, a register reset counting no negative step."),
            _increase(WM, "volume_register", BUILDING, window="1h"), unit="m3", bars=True),
        _ts(_("Consumption by day, per building"), _("Water used per local day and building (m³)."),
            per_device(WM.value, 'non_negative_difference(max("volume_register")) AS "d"', 'sum("d")',
                       "volume_register", scope=BUILDING, window="1h", outer_window="1d",
                       inner_group=['"device"', '"building"'], outer_group=['"building"'],
                       tail=LOCAL_DAYS).alias("$tag_building"),
            unit="m3", bars=True),
        _ts(_("Minimum night flow"), _("Each meter's lowest flow per local day (m³/h). Residential use is lowest "
                                       "at night, so this is the night's minimum; one that stays above zero "
                                       "points to a leak. InfluxQL cannot pick the hours of a day, so the "
                                       "minimum is taken over the whole day."),
            Select(WM.value, f'min("{metric(WM, "flow")}")', "flow", BUILDING, (), ["time(1d)", '"device"'],
                   f"fill(none) {LOCAL_DAYS}").target().alias("$tag_device"), unit="m3/h"),
        _table(_("Meter faults"), _("Tamper, reverse flow and low battery, newest first."),
               _event_table(_faults(WM), BUILDING)),
    ]
    return Board("water", _grid(board, panels).build())


def ingest() -> Board:
    board = _dashboard("ingest", _("sitewatch: ingest pipeline"),
                       _("What reached the store, and the gateways' queues and counters"), span="now-6h")  # fmt: skip
    panels: list[PanelBuilder] = [
        _ts(_("Samples stored, per kind"), _("Samples stored per interval for each kind (a sample is one device's "
                                             "readings at one instant)."),
            *[Select(k.value, f'count("{metric(k, HEARTBEAT[k])}") AS "{k.value}"', HEARTBEAT[k], CITY, (),
                     [f"time({INTERVAL})"], "fill(none)").target() for k in DEVICE_KINDS], interval="1m", stack=True),
        _ts(_("Events stored, by name"), _("Device events stored per interval."),
            Select(EVENTS, 'count("attrs")', "attrs", CITY, (), [f"time({INTERVAL})", '"event"'],
                   "fill(none)").target().alias("$tag_event"), interval="1m", stack=True, bars=True),
        _ts(_("Readings of unknown devices"), _("Samples stored flagged: devices the registry did not know "
                                                "(ingest.unknown_devices = flag)."),
            *[Select(k.value, f'count("flagged") AS "{k.value}"', "flagged", CITY, (), [f"time({INTERVAL})"],
                     "fill(none)").target() for k in DEVICE_KINDS], interval="1m"),
        _note(_("Dead letters"),
              _("Dead letters are not in the store: ingest publishes each refused message on the MQTT topic "
                "sitewatch/v1/_deadletter with its reason, and counts them by reason in its counters "
                "(`sitewatch ingest run --stats-file`). Watch them with `sitewatch ingest deadletters`."),
              height=8),
        _ts(_("Gateway queue depth"), _("Readings waiting in each gateway's disk queue (the newest per interval)."),
            Select(GW.value, f'last("{metric(GW, "queue_depth")}")', "queue_depth", CITY, (),
                   [f"time({INTERVAL})", '"compound"'], "fill(none)").target().alias("$tag_compound"),
            interval="1m"),
        _ts(_("Gateway rates"), _("Readings per second each gateway sent, and dropped (derivative of its counters)."),
            *[Select(GW.value, f'non_negative_derivative(max("{metric(GW, m)}"), 1s)', m, CITY, (),
                     [f"time({INTERVAL})", '"compound"'], "fill(none)").target().alias(f"$tag_compound {m}")
              for m in ("sent_total", "dropped_total", "replayed_total")], unit="rps", interval="1m"),
        _table(_("Gateway births and deaths"), _("Gateways going online and offline, newest first."),
               Select(EVENTS, '"compound", "device", "event", "attrs"', "attrs", CITY,
                      ['"kind" = \'gateway\'', event_match(("offline", "online"))], (),
                      "ORDER BY time DESC LIMIT 200").target(), width=24),
    ]
    return Board("ingest", _grid(board, panels).build())


BOARDS: tuple[Callable[[], Board], ...] = (city, compound, elevator, charger, streetlight, camera, water_meter, ingest)


def build() -> list[Board]:
    """Every dashboard in the language of the moment."""
    return [make() for make in BOARDS]
