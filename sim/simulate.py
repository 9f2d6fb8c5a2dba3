"""Run a scenario: the world on a SimPy clock, metered into a usage document.

``simulate(scenario)`` returns a :class:`RunResult` in the style of desmod: it records what was run
(the resolved scenario, the seed, the package version), how long it took, and what came out (the
usage dict and the per-minute DataFrame) - or the error text if the run failed, so that batch runs
keep going and still leave a record.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import simpy

import sim
from sim import sampling
from sim.meters import MeterBook, add_meters
from sim.pricing.period import Period, zone_name
from sim.rng import Streams
from sim.scenario import Scenario, scenario_dict
from sim.world.connections import FINE_PER_MINUTE
from sim.world.enforcer import Enforcer
from sim.world.mobile.world import MobileWorld

DAY_S = 86_400


@dataclass
class RunResult:
    scenario: dict
    seed: int
    version: str
    wall_s: float = 0.0
    usage: dict | None = None
    frame: Any = None  # pandas DataFrame of per-minute series
    error: str | None = None
    book: MeterBook | None = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per world pipeline stage
    months: list[dict] | None = None  # simulation.months: one usage per billing month (sim/months/split.py)

    @property
    def ok(self) -> bool:
        return self.error is None

    def run_info(self) -> dict:
        import numpy
        import pandas
        import pydantic

        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "engine": self.scenario.get("engine", "fast"),
            "versions": {
                "sim": self.version,
                "python": sys.version.split()[0],
                "numpy": numpy.__version__,
                "simpy": simpy.__version__,
                "pandas": pandas.__version__,
                "pydantic": pydantic.__version__,
            },
            "wall_s": round(self.wall_s, 3),
            "error": self.error,
        }


def make_protocol(sc: Scenario):
    from sim.protocol import Protocol

    return Protocol(sc.protocol)


def make_world(sc: Scenario, streams: Streams, book: MeterBook, protocol, enforcer: Enforcer | None = None):
    """The scenario's world engine: ``fast`` (:class:`sim.world.mobile.world.MobileWorld`) or ``events``
    (:class:`sim.world.events.world.EventsWorld`). Both take the same inputs, run the whole clock with
    ``run(on_day)`` and return their world meters from ``finish()``."""
    if sc.engine == "events":
        from sim.world.events.world import EventsWorld

        return EventsWorld(sc, streams, book, protocol, enforcer)
    return MobileWorld(sc, streams, book, protocol, enforcer)


def simulate(scenario: Scenario, *, seed: int | None = None, progress: bool = True,
             enforcer: Enforcer | None = None, raise_errors: bool = False, iot_enforcer: Any = None) -> RunResult:
    """Simulate ``scenario`` (``seed`` overrides ``scenario.seed``) and meter its usage.

    ``enforcer`` acts on the mobile world (e.g. :class:`sim.world.plan_enforcer.PlanEnforcer`);
    ``iot_enforcer`` on the IoT fleet (an ``IotLimits``-like object, see :mod:`sim.world.iot.fleet`). Their
    reports become the usage's ``enforcement`` section (the fleet's under ``enforcement.iot``).
    """
    seed = scenario.seed if seed is None else int(seed)
    result = RunResult(scenario=scenario_dict(scenario), seed=seed, version=sim.__version__)
    result.scenario["seed"] = seed
    t0 = time.perf_counter()
    try:
        result.usage, result.book, result.months = _run(scenario, seed, progress, enforcer, iot_enforcer,
                                                        result.timings)
        result.frame = result.book.to_frame()
    except Exception as exc:  # noqa: BLE001 - recorded in the result, re-raised on request
        if raise_errors:
            raise
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    result.wall_s = time.perf_counter() - t0
    return result


def _run(sc: Scenario, seed: int, progress: bool, enforcer: Enforcer | None, iot_enforcer: Any,
         timings: dict[str, float]) -> tuple[dict, MeterBook, list[dict] | None]:
    days, warm = sc.simulation.days, sc.simulation.warmup_days
    start = sc.simulation.start
    end = start + timedelta(days=days)
    period = Period.create(start, end, sc.simulation.tz or "UTC")
    tz = zone_name(period.tz)
    # the mobile world runs warm-up days first on one clock; its book is cut to the period afterwards
    wbook = MeterBook(start=start - timedelta(days=warm), minutes=(warm + days) * 1440, days=period.days, tz=tz)
    streams = Streams(seed)
    msample, isample = sampling.mobile_sample(sc), sampling.iot_sample(sc)
    wsc = sampling.world_scenario(sc)  # the scenario itself unless sampled (sim/sampling.py)
    scaled = None
    if msample is not None and enforcer is not None:
        enforcer = scaled = sampling.Scaled(enforcer, msample.ratio)
        enforcer.block_days = sampling.GROWTH_BLOCK_DAYS if sc.growth is not None else None
    world = make_world(wsc, streams, wbook, make_protocol(sc), enforcer)
    if scaled is not None:
        scaled.day_weight = _present_per_day(world, warm, days)
    if msample is not None:
        world.conn.track_groups(sampling.GROUPS)
    bar = _progress(world.total_days, progress, sc.name)
    world.run(None if bar is None else (lambda: bar.update(1)))
    if bar is not None:
        bar.close()
    meters = world.finish()
    book = wbook.tail(warm * 1440)
    meters = {k: _tail_series(v, warm * 1440) for k, v in meters.items()}
    timings.update(world.timings)
    sampled: dict = {}
    if msample is not None:
        groups = world.conn.group_levels()[:, warm * 1440:]
        fine = world.conn.fine_level()[warm * 1440 * FINE_PER_MINUTE:]
        block = sampling.GROWTH_BLOCK_DAYS if sc.growth is not None else None
        weight = _present_per_day(world, warm, days)
        sampling.scale_book(book, msample.ratio, block, weight)
        sampled["mobile"] = sampling.scale_mobile_meters(meters, msample, groups,
                                                         streams.generator("sampling", "mobile"), fine,
                                                         _month_minutes(sc), block, weight)
        if "ccu_max" in book.series and isinstance(meters.get("peak_ccu"), dict):
            book.series["ccu_max"] = np.asarray(meters["peak_ccu"]["values"], dtype=np.float64)
    meters["devices"] = _registered_devices(world, wsc, warm, period, msample.ratio if msample else 1.0)
    extra_meters: dict = {}
    if sc.iot is not None and isample is None:
        extra_meters = _run_iot(sc, streams, book, start, days, iot_enforcer)
    elif sc.iot is not None:
        ibook = MeterBook(start=book.start, minutes=book.minutes, days=book.days, tz=book.tz,
                          month_starts=book.month_starts)
        extra_meters = _run_iot(wsc, streams, ibook, start, days, iot_enforcer)
        level = ibook.series.get("iot_connections")
        sampling.scale_book(ibook, isample.ratio)
        sampled["iot"] = sampling.scale_iot_meters(extra_meters, isample, sc.iot, level,
                                                   streams.generator("sampling", "iot"))
        sampling.add_book(book, ibook)
    usage = book.to_usage(end, meters)
    _merge_iot(usage["meters"], extra_meters, book)
    usage["counts"] = dict(sorted(book.counts.items()))
    usage["run"] = {"seed": seed, "version": sim.__version__, "scenario": sc.name, "engine": sc.engine,
                    "warmup_days": warm}
    if sampled:
        usage["sampling"] = sampled
    if getattr(world, "client_counts", None) and sc.clients:
        usage["run"]["clients"] = world.client_counts  # users per behaviour (custom clients)
    enforcement: dict = {}
    if enforcer is not None:
        enforcer.finish(usage["meters"])
        enforcement.update(enforcer.report or {})
    if iot_enforcer is not None and getattr(iot_enforcer, "report", None):
        enforcement["iot"] = iot_enforcer.report
    if enforcement:
        usage["enforcement"] = enforcement
    months = None
    if sc.simulation.months:
        from sim.months.split import month_usages
        from sim.world.clock import month_bounds

        months = month_usages(usage, month_bounds(start, sc.simulation.months, sc.simulation.tz), book,
                              getattr(world, "month_counts", None))
        for i, m in enumerate(months):
            per_month = [e.get("months", [])[i] if i < len(e.get("months", [])) else None
                         for e in (enforcement, enforcement.get("iot", {}))]
            if per_month[0]:
                m["enforcement"] = per_month[0]
            if per_month[1]:
                m.setdefault("enforcement", {})["iot"] = per_month[1]
            mob = sampled.get("mobile")
            if mob is not None:  # each month's own estimates and intervals (sampling.scale_mobile_meters)
                m["sampling"] = {"mobile": {k: (v[i] if k in ("mau", "peak_ccu") else v) for k, v in mob.items()}}
    return usage, book, months


def _present_per_day(world, warm: int, days: int) -> np.ndarray | None:
    """A growing app's simulated users present on each day of the period (None without growth): how a sampled
    level's mean day is scaled day by day (sim/sampling.py ``level_estimate``)."""
    pres = getattr(world, "presence", None)
    if pres is None:
        return None
    cs = (warm + np.arange(days)) * DAY_S * 1000
    joined = np.searchsorted(np.sort(pres.join), cs + DAY_S * 1000, side="left")
    gone = np.searchsorted(np.sort(pres.leave), cs, side="right")
    return (joined - gone).astype(np.float64)


def _registered_devices(world, wsc: Scenario, warm: int, period: Period, ratio: float) -> dict:
    """``devices`` (1d) of the chat app: its users registered on each calendar day of the period, each one client
    (a device, as an IoT hub registers it): the population, or with growth the users present at some time of the
    day; a sampled run's estimate of the whole (x ratio). An IoT fleet's own ``devices`` replace it."""
    ms = [round((d - period.start).total_seconds() * 1000) + warm * DAY_S * 1000 for d in period.day_starts]
    ends = ms[1:] + [round(period.seconds * 1000) + warm * DAY_S * 1000]
    pres = getattr(world, "presence", None)
    if pres is None:
        n = np.full(len(ms), float(wsc.population.users))
    else:
        joined = np.searchsorted(np.sort(pres.join), np.asarray(ends), side="left")
        gone = np.searchsorted(np.sort(pres.leave), np.asarray(ms), side="right")
        n = (joined - gone).astype(np.float64)
    return {"interval": "1d", "values": [int(v) for v in np.round(n * ratio)]}


def _month_minutes(sc: Scenario) -> list[int] | None:
    """Minute bounds of the billing months from the period start (None: one period)."""
    if not sc.simulation.months:
        return None
    from sim.world.clock import WorldClock

    clock = WorldClock.of(sc)
    return [int((t - clock.offset) // 60_000) for t in clock.month_starts]


def _tail_series(meter: Any, skip: int) -> Any:
    """A per-minute meter of the world's whole clock, without its warm-up minutes."""
    if isinstance(meter, dict) and meter.get("interval") == "1min":
        return {**meter, "values": meter["values"][skip:]}
    return meter


#: meters both the chat app and the IoT fleet write that add up when both run on one clock
ADDITIVE = ("messages_in", "messages_out", "message_sizes_in", "message_sizes_out", "connection_seconds",
            "connection_minutes", "connection_hours")


def _merge_iot(meters: dict, iot: dict, book: MeterBook) -> None:
    """Fold the IoT fleet's meters into the mobile ones.

    Stored bytes add up minute by minute. Concurrent connections: the fleet's per-minute connection
    level (book series ``iot_connections``) is added to the mobile per-minute maximum, an upper bound
    of the joint per-minute maximum (exact when either side is flat within the minute). Element
    counts (channels, devices, ...) are the fleet's own. Message counts, their size distributions and connection
    time (``messages_in``, ``connection_seconds`` ...) add up, value by value and item by item.
    """
    for name, value in iot.items():
        if name == "stored_bytes" and "stored_bytes" in meters:
            meters["stored_bytes"] = _add_series(meters["stored_bytes"], value)
        elif name in ADDITIVE and isinstance(meters.get(name), dict):
            meters[name] = add_meters(meters[name], value)
        elif name == "peak_ccu":
            level = book.series.get("iot_connections")
            if level is not None and isinstance(meters.get("peak_ccu"), dict):
                mob = np.asarray(meters["peak_ccu"]["values"], dtype=float)
                meters["peak_ccu"] = {"interval": "1min", "values": [int(v) for v in mob + np.asarray(level)]}
            elif not isinstance(meters.get("peak_ccu"), dict):
                meters["peak_ccu"] = value
        else:
            meters[name] = value


def _add_series(a: dict, b: Any) -> dict:
    if not isinstance(b, dict) or b.get("interval") != a.get("interval"):
        raise ValueError("IoT stored_bytes must be a series with the same interval as the mobile one")
    va, vb = np.asarray(a["values"], dtype=float), np.asarray(b["values"], dtype=float)
    return {"interval": a["interval"], "values": [float(x) for x in va + vb]}


def _run_iot(sc: Scenario, streams: Streams, book: MeterBook, start, days: int, enforcer) -> dict:
    if sc.engine == "events":
        from sim.world.events.iot import simulate_fleet_events as run_fleet
    else:
        from sim.world.iot.fleet import simulate_fleet as run_fleet

    return run_fleet(sc.iot, start=start, days=days, seed=streams.seed_sequence("iot"), book=book,
                     env=None, enforcer=enforcer) or {}


def _progress(days: int, progress: bool, name: str):
    if not progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=days, desc=f"simulating {name}", unit="day", file=sys.stderr)
