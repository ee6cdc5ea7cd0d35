"""A device's temperature against its own load: the ``load_temperature`` rule type's memory and step.

An EV charger's cabinet follows the air (and the sun) when idle and warms with its load through
a first-order lag (time constant ``tau``, 15 min in the charger model of the
simulator): ``T = idle + a * lag(P^2)``, with ``a`` the device's own rise per kW^2. A failing
fan adds heat in proportion to the load, so the residual ``T - idle - a * lag(P^2)`` under load
grows from 0 (plus the air's drift during a session) to the fault's degrees at that load.

The memory (``x``, checkpointed with the engine's snapshot as plain JSON) is
``[last ts, lag(P), lag(P^2), idle temperature, [learnt [ratio, kW]], ms under load, last ratio ts,
air when last idle, air's drift since, ratios learnt this session]``. The air's drift during a session (evening cooling, the day's weather
changing at midnight) is taken from the compound's idle chargers (``air``): the same air, no load.
The idle temperature is a running mean while idle, started afresh at the first idle sample after load.
``a`` is the median of ``(T - idle) / lag(P^2)`` sampled every ``learn_every`` under steady load, each
ratio weighted by its load to the fourth power (its error is the air's drift's error over the load
squared), learnt only while the rule has no open finding and the residual is below ``clear``; the last
``keep`` ratios are kept, so a device's normal follows slow changes but not a fault. Only the ratios learnt at
``RELEARN`` of the device's highest steady load or more make ``a``, and half the ``learn_samples``
must be such: a slow car's rise is about as large as the error of the air's drift, so its ratios are
noisy, and they were the whole of ``a`` for a charger whose first cars were slow.

With ``peer_rise`` (a factor), the compound's chargers are one another's prior: each device with half
its ``learn_samples`` posts its rise at the highest steady load it has drawn (``a * Pmax^2``: about
the same at full load for every charger of a compound, whatever its rated power) to ``rises``; a
device's ``a`` is capped at ``peer_rise`` times the highest rise of the others that drew at least 90%
of its own ``Pmax`` (at least two of them), over its ``Pmax^2``. A fan already failing while the
device learns is then not learnt as its normal (no ratio is learnt above the cap), and a device still
learning is judged against the cap alone (memory slot 10: ``Pmax``). With ``max_rise`` (°C per kW^2),
the cap is at most that whether or not two peers have learnt: the highest rise any healthy cabinet has
(the smallest rated charger's at its full load), so a charger learning alone in a compound's first days
does not take a clear fault for its normal (an 11 kW charger, whose healthy rise per kW^2 is a third
of it, only a fault of over twice its healthy rise).

With ``night_above`` (°C), a session also raises when its residual, averaged over ``night_for`` or
more of judged load, exceeds that lower level, provided the sun is down at the compound (``night``,
from the engine: below ``night_sun``) and was already down when the device was last idle (the idle
temperature it is judged from). With the sun down every idle cabinet stands at the air (+3 °C): neither
the device's own sun in its idle temperature nor the peers' sun during the session (their shade
differs) errs the air's drift, so the residual's spread is far smaller than by day (where a morning
session's mean reached 3.5 °C on a healthy charger, seed 14) or than in an evening session judged
against an idle temperature of the afternoon (1.9 °C all evening, seed 15). Memory slots 11-14: the
weight (ms) and the weighted sum of those residuals in this session, the first such sample's time,
and whether the idle temperature was last learnt with the sun down.

With ``day_above`` (°C), a session that began by day raises when its residual, less the change of the
device's own sun since it was last idle, averaged over ``night_for`` or more of judged load, exceeds
that level. An idle cabinet stands at the air (+3 °C) plus its own sun (the sun's height times the
sky's cover of the day times the shade of its place), and its idle peers at theirs: while idle, the
device learns how much warmer than its idle peers' median it stands per unit of sunshine (``sin`` of
the sun's elevation) that day, by least squares over its idle samples (``day_learn`` of full sun's
worth at least; the sums restart each night, the sky's cover being the day's). Under load, that factor
times the change of the sunshine since the device was last idle is what the air's drift taken from the
peers misses. Memory slots 15-21: the day's two sums, the sunshine and the factor when last idle, and
the session's day evidence (weight, weighted sum, first sample's time). Once that factor is known, the
``above`` level and its ``clear`` judge the residual with the device's own sun taken out too: a shaded
charger's session from the afternoon past sunset otherwise keeps the sun its sunny peers lost (4 °C and
more on seeds 11 and 42). Until it is known that day (a morning session), the ``above`` level is raised by
``SUN_C`` times the rise of the sunshine since the device was last idle: the most its own sun can have
warmed it beyond its idle peers' drift (seed 26: a sunny charger's 1 kW taper at 07:29, its sun rising,
4.19 °C over the level). The session means (night and day) leave out a load more than ``FASTER``
times the highest the rise was learnt at: there the learnt rise's error, times the load squared, is
as large as their levels; and they leave out a sample whose air's drift is not measured at that
moment (fewer than two idle peers): a drift held from before misses the air's changes since (the day's
weather steps at midnight), and with no air known when the device was last idle there is none.
"""

from __future__ import annotations

import math
from typing import Any

RAISE, CLEAR, HOLD = 1, 0, -1  # the engine's verdicts
IDLE_KW = 0.1  # lagged power below this: the cabinet is at its idle temperature
IDLE_SMOOTH = 0.1  # the idle temperature is a running mean of this weight (noise 0.3 °C)
STEADY = 0.1  # the lagged load within this share of the load: the cabinet is settled
PER_SESSION = 6  # ratios learnt from one stretch of load at most
PEER_FRESH_MS = 1_200_000  # an idle peer's temperature counts for the air this long
MIN_PEERS = 2  # learnt peers needed for the compound's rise to count
PEER_LOAD = 0.9  # a peer's rise counts for a device whose highest load is at most 1/0.9 of the peer's
RELEARN = 0.55  # the ratios that make a device's rise were learnt at this share of its highest load or more
FASTER = 1.1  # the session means judge loads up to this times the highest the rise was learnt at (one car: 0.9-0.98)
SUN_C = 8.0  # °C per unit of sunshine: the most a cabinet's own sun adds over its idle peers' (full sun against shade)


def air(peers: dict[str, list[float]], device: str, ts: int) -> float | None:
    """The compound's air as its idle peers see it: the median of their idle temperatures heard in
    the last ``PEER_FRESH_MS`` (None with fewer than two)."""
    temps = sorted(v[0] for d, v in peers.items() if d != device and ts - v[1] <= PEER_FRESH_MS)
    if len(temps) < 2:
        return None
    n = len(temps)
    return temps[n // 2] if n % 2 else (temps[n // 2 - 1] + temps[n // 2]) / 2.0


def peer_cap(rule: Any, rises: dict[str, list[float]] | None, device: str, pmax: float) -> float | None:
    """The most ``a`` the compound's other learnt devices allow: ``peer_rise`` times the highest rise of
    those that drew at least ``PEER_LOAD`` of this device's highest load (a rise learnt at a lower
    load says less), over its highest load squared (None: no ``peer_rise``, fewer than ``MIN_PEERS``)."""
    if rises is None or rule.peer_rise is None or pmax <= 0.0:
        return None
    others = [r for d, (r, p) in rises.items() if d != device and p >= PEER_LOAD * pmax]
    if len(others) < MIN_PEERS:
        return None
    return float(rule.peer_rise * max(others) / (pmax * pmax))


def step(rule: Any, x: list[Any], temperature: float, power: float, ts: int, open_: bool,
         peers: dict[str, list[float]], device: str,
         rises: dict[str, list[float]] | None = None, night: bool = False,
         elevation: float | None = None) -> tuple[int, float, int | None]:  # fmt: skip
    """One sample through the memory ``x``: (verdict, residual in °C, start of the evidence or None).
    ``peers`` is the compound's table of idle temperatures (device -> [temperature, ts]), shared by the
    rule's devices; ``rises`` its table of learnt rises at the highest load (device -> [°C, kW]), for
    ``peer_rise``; ``night``: the sun is down at the compound (for ``night_above``); ``elevation``: the
    sun's elevation there in degrees (for ``day_above``; None: unknown). A raise by a session's mean
    residual (night or day) gives its value and the time its evidence began; other verdicts give None."""
    if not x:
        x[:] = [ts, power, power * power, None, [], 0, None, None, 0.0, 0, 0.0, 0, 0.0, None, None,
                0.0, 0.0, 0.0, None, 0, 0.0, None]
        return HOLD, 0.0, None
    if len(x) < 11:  # a memory from before slot 10
        x.append(0.0)
    if len(x) < 15:  # a memory from before slots 11-14 (the night's evidence)
        x[11:] = [0, 0.0, None, None]
    if len(x) < 22:  # a memory from before slots 15-21 (the device's own sun)
        x[15:] = [0.0, 0.0, 0.0, None, 0, 0.0, None]
    dt = ts - x[0]
    if dt <= 0:
        return HOLD, 0.0, None  # a repeated or late sample: the lag filter runs forward only
    x[0] = ts
    tau = rule.tau
    if dt > tau:  # a gap in the data: the lag is unknown, start it again at the current load
        x[1], x[2], x[5] = power, power * power, 0
    else:
        k = 1.0 - math.exp(-dt / tau)
        x[1] += k * (power - x[1])
        x[2] += k * (power * power - x[2])
    if power <= 0.0:
        x[5] = x[9] = 0
        x[11:14] = [0, 0.0, None]  # the night's evidence is a session's
        x[19:22] = [0, 0.0, None]  # and so is the day's
        if x[1] < IDLE_KW:
            # idle again after load: the running mean starts afresh (kept, it would carry the idle of hours
            # before, an afternoon's sun, into the device's own next session and its peers' air)
            fresh = x[3] is None or device not in peers
            x[3] = temperature if fresh else x[3] + IDLE_SMOOTH * (temperature - x[3])
            x[14] = night  # the idle temperature learnt with the sun down (or not)
            peers[device] = [x[3], ts]
            x[7] = air(peers, device, ts)
            x[8] = 0.0
            _own_sun(rule, x, elevation, min(dt, tau))
        else:
            peers.pop(device, None)
        return HOLD, 0.0, None  # a cooling fault shows only under load: an open finding stays open
    x[5] += min(dt, tau)
    if elevation is not None and elevation <= 0.0:
        x[15] = x[16] = 0.0  # a night under load: tomorrow's sky is another (this session keeps its factor)
    if x[3] is None or x[5] < rule.settle or x[2] < rule.min_kw * rule.min_kw:
        return HOLD, 0.0, None
    peers.pop(device, None)
    excess = temperature - x[3]
    now_air = air(peers, device, ts)
    measured = now_air is not None and x[7] is not None
    if measured:
        x[8] = now_air - x[7]  # the air's drift since the charger was last idle
    excess -= x[8]  # (the last drift known while too few peers are idle)
    ratios: list[list[float]] = x[4]
    if ratios and not isinstance(ratios[0], list):  # a memory from before the load was kept with each ratio
        ratios[:] = [[r, x[10]] for r in ratios]
    # learn from steady load only: a session's taper has little load, and any error in the air's
    # drift divided by little load would pull the device's rise per kW^2 far off
    steady = abs(power * power - x[2]) <= STEADY * power * power
    # and a few ratios a session, so that one long session (its air drifting) cannot make the median
    due = steady and x[9] < PER_SESSION and (x[6] is None or ts - x[6] >= rule.learn_every)
    if steady and power > x[10]:
        x[10] = power
    cap = peer_cap(rule, rises, device, x[10])
    if rule.max_rise is not None:  # no cabinet rises more than this per kW^2, whatever its peers
        cap = rule.max_rise if cap is None else min(cap, rule.max_rise)
    near = _near_highest(ratios, x[10])
    # learnt: ``learn_samples`` ratios, half of them near the highest load (after a much faster car than
    # any before, the charger learns again, judged against its peers meanwhile)
    learning = len(ratios) < rule.learn_samples or 2 * len(near) < rule.learn_samples
    if learning and cap is None:
        if due and not open_:
            _learn(rule, x, excess / x[2], power, ts, rises, device)
        return HOLD, 0.0, None
    if cap is None:
        a = _rise(ratios, x[10])
    elif learning:  # judged against the peers' cap alone: a few ratios of one session are noisy
        a = cap
    else:
        a = min(cap, _rise(ratios, x[10]))
    residual = excess - a * x[2]
    # the device's own sun's change since it was last idle taken out (a session begun by day): a shaded
    # charger's afternoon session running past sunset loses less sun than its peers' drift says
    judged = residual - _sun_change(x, elevation)
    # the session's means judge no car much faster than any the rise was learnt at: the rise's error
    # grows with the load squared (seed 48: 3.4 °C by day at 10.37 kW, learnt up to 6.79 kW)
    known = not near or power <= FASTER * max(kw for _, kw in ratios if kw >= RELEARN * x[10])
    # and no sample whose air's drift is not measured now: held from before, it misses the air's changes
    # since (the day's weather stepping at midnight, seed 41), and with no air when last idle it is none
    known = known and measured
    night_mean = _night(rule, x, residual, ts, min(dt, tau), night) if known else None
    day_mean = _day(rule, x, judged, ts, min(dt, tau)) if known else None
    if judged > rule.above + _sun_unknown(rule, x, elevation):
        return RAISE, judged, None
    if night_mean is not None:  # the session's mean at night: a fault too small for the level above
        return RAISE, night_mean, x[13]
    if day_mean is not None:  # by day, with the device's own sun taken out
        return RAISE, day_mean, x[21]
    clear = rule.above if rule.clear is None else rule.clear
    if judged > clear:
        return HOLD, judged, None
    # learn from both sides alike, or it ratchets (still learning: under the peers' cap, any side)
    if due and not open_ and (learning or residual >= -clear):
        _learn(rule, x, excess / x[2], power, ts, rises, device)
    return CLEAR, residual, None


def _night(rule: Any, x: list[Any], residual: float, ts: int, weight: int, night: bool) -> float | None:
    """Add a judged sample to the session's night evidence (slots 11-13); its mean residual when that
    raises (the sun down now and when the device was last idle, ``night_for`` of judged load, the mean
    above ``night_above``), else None."""
    if rule.night_above is None or not (night and x[14]):
        return None
    return _session_mean(x, 11, residual, ts, weight, rule.night_for, rule.night_above)


def _session_mean(x: list[Any], slot: int, value: float, ts: int, weight: int, need: int,
                  level: float) -> float | None:  # fmt: skip
    """Add ``value`` at ``weight`` to the session's evidence kept in slots ``slot`` (judged load's time),
    ``slot + 1`` (the weighted sum) and ``slot + 2`` (its first instant); the mean once ``need`` of
    judged load is in and the mean is above ``level``, else None."""
    if x[slot + 2] is None:
        x[slot + 2] = ts
    x[slot] += weight
    x[slot + 1] += value * weight
    if x[slot] < need:
        return None
    mean = float(x[slot + 1] / x[slot])
    return mean if mean > level else None


def sunshine(elevation: float | None) -> float:
    """The direct sun on a horizontal surface, 0-1: the sine of the sun's elevation (0 below the horizon)."""
    if elevation is None or elevation <= 0.0:
        return 0.0
    return math.sin(math.radians(elevation))


def _own_sun(rule: Any, x: list[Any], elevation: float | None, weight: int) -> None:
    """Learn, from an idle sample, how much warmer than its idle peers the device stands per unit of sun
    today (``(idle - air) / sun``, least squares; slots 15-16 its sums, reset while the sun is down: the
    sky's cover changes by the day), and keep the sun now (slot 17) and the factor (slot 18; None until
    ``day_learn`` of full sun's worth is seen) for the session that may follow."""
    if rule.day_above is None:
        return
    g = sunshine(elevation)
    if g <= 0.0:
        x[15:19] = [0.0, 0.0, 0.0, None]
        return
    if x[7] is not None:
        w = g * weight
        x[15] += (x[3] - x[7]) * w
        x[16] += g * w
    x[17] = g
    x[18] = x[15] / x[16] if x[16] >= rule.day_learn else None


def _sun_change(x: list[Any], elevation: float | None) -> float:
    """How much warmer than its peers' drift says the device's own sun makes it now against when it was
    last idle (°C: the factor learnt idle that day times the change of the sunshine; 0 while unknown)."""
    if x[18] is None:
        return 0.0
    return float(x[18] * (sunshine(elevation) - x[17]))


def _sun_unknown(rule: Any, x: list[Any], elevation: float | None) -> float:
    """The margin the ``above`` level adds by day while the device's own sun of the day is not yet learnt
    (``day_above`` set, fewer than ``day_learn`` of full sun's worth idle that day): ``SUN_C`` times the
    rise of the sunshine since the device was last idle, the most its own sun can have warmed it beyond
    its idle peers' drift (0 with the sun setting, down, or the factor known: then it is taken out)."""
    if rule.day_above is None or x[18] is not None:
        return 0.0
    return SUN_C * max(0.0, sunshine(elevation) - x[17])


def _day(rule: Any, x: list[Any], corrected: float, ts: int, weight: int) -> float | None:
    """Add a judged sample, its own sun's change since the device was last idle already taken out, to the
    session's day evidence (slots 19-21); its mean when that raises (``night_for`` of judged load, the
    mean above ``day_above``), else None."""
    if rule.day_above is None or x[18] is None:
        return None
    return _session_mean(x, 19, corrected, ts, weight, rule.night_for, rule.day_above)


def _near_highest(ratios: list[list[float]], pmax: float) -> list[float]:
    """The ratios learnt at ``RELEARN`` of the highest load or more: those that make the rise."""
    return [r for r, kw in ratios if kw >= RELEARN * pmax]


def _learn(
    rule: Any, x: list[Any], ratio: float, power: float, ts: int, rises: dict[str, list[float]] | None,
    device: str,
) -> None:  # fmt: skip
    """Keep one more ratio (and the load it was learnt at); once learnt, post the device's rise at its
    highest load to ``rises`` (from the ratios near that load)."""
    ratios: list[list[float]] = x[4]
    ratios.append([ratio, power])
    del ratios[: max(0, len(ratios) - rule.keep)]
    x[6], x[9] = ts, x[9] + 1
    near = _near_highest(ratios, x[10])
    if rises is not None and 2 * len(ratios) >= rule.learn_samples and near and x[10] > 0.0:
        rises[device] = [_rise(ratios, x[10]) * x[10] * x[10], x[10]]


def _rise(ratios: list[list[float]], pmax: float) -> float:
    """The device's rise per kW^2: the median of the ratios learnt near its highest load, each weighted by
    its load to the fourth power. A ratio's error is the error of the air's drift over the load squared,
    so its weight is that error's inverse variance: a session at two thirds of the highest load whose drift
    erred by 1.7 °C (an evening's cooling) otherwise pulls the rise a third low, and the highest loads,
    judged with it, run 2.5 °C "too hot" (seed 45)."""
    near = [(r, kw) for r, kw in ratios if kw >= RELEARN * pmax]
    if not near:
        return 0.0
    near.sort()
    total = sum(kw**4 for _, kw in near)
    acc = 0.0
    for i, (r, kw) in enumerate(near):
        acc += kw**4
        if 2.0 * acc >= total:
            if 2.0 * acc == total and i + 1 < len(near):
                return (r + near[i + 1][0]) / 2.0
            return float(r)
    return float(near[-1][0])
