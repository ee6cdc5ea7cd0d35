"""A device's temperature against its own load: the ``load_temperature`` rule type's memory and step.

An EV charger's cabinet follows the air (and the sun) when idle and warms with its load through
a first-order lag (time constant ``tau``, 15 min in the charger model of the
simulator): ``T = idle + a * lag(P^2)``, with ``a`` the device's own rise per kW^2. A failing
fan adds heat in proportion to the load, so the residual ``T - idle - a * lag(P^2)`` under load
grows from 0 (plus the air's drift during a session) to the fault's degrees at that load.

The memory (``x``, checkpointed with the engine's snapshot as plain JSON) is
``[last ts, lag(P), lag(P^2), idle temperature, [learnt ratios], ms under load, last ratio ts,
air when last idle, air's drift since, ratios learnt this session]``. The air's drift during a session (evening cooling, the day's weather
changing at midnight) is taken from the compound's idle chargers (``air``): the same air, no load.
``a`` is the median of ``(T - idle) / lag(P^2)`` sampled every ``learn_every`` under steady load, learnt
only while the rule has no open finding and the residual is below ``clear``; the last ``keep``
ratios are kept, so a device's normal follows slow changes but not a fault.
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


def air(peers: dict[str, list[float]], device: str, ts: int) -> float | None:
    """The compound's air as its idle peers see it: the median of their idle temperatures heard in
    the last ``PEER_FRESH_MS`` (None with fewer than two)."""
    temps = sorted(v[0] for d, v in peers.items() if d != device and ts - v[1] <= PEER_FRESH_MS)
    if len(temps) < 2:
        return None
    n = len(temps)
    return temps[n // 2] if n % 2 else (temps[n // 2 - 1] + temps[n // 2]) / 2.0


def step(rule: Any, x: list[Any], temperature: float, power: float, ts: int, open_: bool,
         peers: dict[str, list[float]], device: str) -> tuple[int, float]:  # fmt: skip
    """One sample through the memory ``x``: (verdict, residual in °C). ``peers`` is the compound's
    table of idle temperatures (device -> [temperature, ts]), shared by the rule's devices."""
    if not x:
        x[:] = [ts, power, power * power, None, [], 0, None, None, 0.0, 0]
        return HOLD, 0.0
    dt = ts - x[0]
    if dt <= 0:
        return HOLD, 0.0  # a repeated or late sample: the lag filter runs forward only
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
        if x[1] < IDLE_KW:
            x[3] = temperature if x[3] is None else x[3] + IDLE_SMOOTH * (temperature - x[3])
            peers[device] = [x[3], ts]
            x[7] = air(peers, device, ts)
            x[8] = 0.0
        else:
            peers.pop(device, None)
        return HOLD, 0.0  # a cooling fault shows only under load: an open finding stays open
    x[5] += min(dt, tau)
    if x[3] is None or x[5] < rule.settle or x[2] < rule.min_kw * rule.min_kw:
        return HOLD, 0.0
    peers.pop(device, None)
    excess = temperature - x[3]
    now_air = air(peers, device, ts)
    if now_air is not None and x[7] is not None:
        x[8] = now_air - x[7]  # the air's drift since the charger was last idle
    excess -= x[8]  # (the last drift known while too few peers are idle)
    ratios: list[float] = x[4]
    # learn from steady load only: a session's taper has little load, and any error in the air's
    # drift divided by little load would pull the device's rise per kW^2 far off
    steady = abs(power * power - x[2]) <= STEADY * power * power
    # and a few ratios a session, so that one long session (its air drifting) cannot make the median
    due = steady and x[9] < PER_SESSION and (x[6] is None or ts - x[6] >= rule.learn_every)
    if len(ratios) < rule.learn_samples:
        if due and not open_:
            ratios.append(excess / x[2])
            x[6], x[9] = ts, x[9] + 1
        return HOLD, 0.0
    a = _median(ratios)
    residual = excess - a * x[2]
    if residual > rule.above:
        return RAISE, residual
    clear = rule.above if rule.clear is None else rule.clear
    if residual > clear:
        return HOLD, residual
    if due and not open_ and residual >= -clear:  # learn from both sides alike, or it ratchets
        ratios.append(excess / x[2])
        del ratios[: max(0, len(ratios) - rule.keep)]
        x[6], x[9] = ts, x[9] + 1
    return CLEAR, residual


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0
