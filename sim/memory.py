"""Memory guard: estimate what a run needs before simulating it, and refuse runs that cannot fit.

Without it ``--set population.users=50000000`` or ``--set activity.sessions_per_dau_per_day=1e9``
passes validation and dies with ``MemoryError`` (or the OOM killer) after seconds to minutes.
:func:`estimate_bytes` is arithmetic on the scenario, microseconds; :func:`check_memory` turns an
estimate over the limit into one :class:`~sim.errors.InputError` naming the estimate and the keys
that drive it.

What the world holds (see ``sim/world/mobile/world.py``, ``sim/meters.py``, ``sim/world/iot/fleet.py``): the
mobile world steps one simulated day at a time, so its peak is **one day** of work -- that day's
sessions (connection intervals) and message copies (recipients of every message, receipts, routing
outcomes) as numpy arrays of a dozen fields -- plus what lives for the whole period: per-minute
series (16 byte categories, ~20 other series, and the DataFrame built from them, float64 each) and
per-user arrays (rates, platforms, offsets, and one bool per user and day for DAU). The IoT fleet
runs in chunks of at most a day, so its peak is one day of telemetry messages.

Calibration (peak RSS from ``resource.getrusage`` after one ``simulate()`` in a fresh process, Python
3.11; baseline after imports ~78 MB; the first row is the benchmark's figure, the others were measured
for this module; a day of copies is users x monthly_active x dau x messages x recipients):

=====================================================  ===========  ========  =========
run                                                     copies/day   peak MB   estimate
=====================================================  ===========  ========  =========
mesibo-example, 100K users x 30 days (bench_run.py)       4.0 M         940      ~1,360
mesibo-example, 20K users x 6 days                        0.8 M         253        ~335
quick (receipts, groups, calls), 20K users x 2 days       1.2 M         516        ~545
quick, 80K users x 1 day                                  4.8 M       1,613      ~1,930
quick, 2K users, 2,000 messages/DAU/day                   6.3 M       1,724      ~2,010
quick, 2K users, 400 sessions/DAU/day (0.6 M sessions)    0.13 M        263        ~263
iot-trackers, 1,000 devices x 3 days (1.3 M msgs/day)       -           231        ~200
iot-trackers, 5,000 devices x 2 days (6.5 M msgs/day)       -           398        ~510
=====================================================  ===========  ========  =========

Hence the per-item costs below: ~220 B per message copy in a day (~320 B with receipts, which add
a copy each and a routing pass), ~240 B per session in a day, ~60 B per telemetry message in a day
plus 40 MB for the fleet's schedules, 40 x 8 B per simulated minute, ~200 B per user plus one byte
per user and day. The estimate errs high (up to ~1.45x on the full-scale benchmark, where sessions
and copies do not peak together) and stays within a factor of 2 of every measured run, which is
enough to tell a run that fits from one that needs ten times the machine.

The limit is :data:`DEFAULT_SHARE` of the machine's physical memory (or of the cgroup's limit, if
lower); ``sim run --max-memory 8GB`` or the environment variable ``SIM_MAX_MEMORY`` changes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sim.errors import InputError

#: Share of physical memory a run may use by default (the rest: the OS, other processes, slack).
DEFAULT_SHARE = 0.6
ENV_VAR = "SIM_MAX_MEMORY"

BASELINE = 80e6            # interpreter, numpy, pandas, simpy, pydantic after imports
PER_MINUTE = 40 * 8        # per-minute float64 series (bytes by category, other series, the DataFrame)
PER_USER = 200             # per-user arrays: rates, platform, time zone, timelines' bookkeeping
PER_USER_DAY = 1           # one DAU bool per user and day
PER_COPY = 220             # one message copy routed in a day (recipient, kind, size, times, outcome ...)
PER_COPY_RECEIPTS = 100    # receipts add a copy each and a routing pass
PER_SESSION = 240          # one foreground session / connection interval in a day
PER_CALL = 500             # one call in a day (legs, signalling, media bookkeeping)
PER_IOT_MESSAGE = 60       # one telemetry message in the fleet's day chunk
IOT_FIXED = 40e6           # the fleet's trip schedule and outage tables


@dataclass(frozen=True)
class Driver:
    """One part of the estimate and the scenario keys that make it large."""

    what: str
    bytes: float
    keys: tuple[str, ...]


def estimate_bytes(scenario) -> tuple[int, list[Driver]]:
    """Estimated peak memory of simulating ``scenario`` (bytes), and its parts, largest first."""
    from sim.sampling import world_scenario

    sc = world_scenario(scenario)  # a sampled run holds its sample only
    days = sc.simulation.days + getattr(sc.simulation, "warmup_days", 0)  # warm-up days are simulated too
    users = sc.population.users
    dau = users * sc.population.monthly_active_fraction * sc.population.dau_over_mau
    m = sc.messaging
    recipients = (1 - m.group_fraction) + m.group_fraction * m.group_recipients_mean
    per_copy = PER_COPY + (PER_COPY_RECEIPTS if m.delivery_receipts or m.read_receipts else 0)
    drivers = [
        Driver("fixed", BASELINE, ()),
        Driver("per-minute series", days * 1440 * PER_MINUTE, ("simulation.days",)),
        Driver("per-user arrays", users * (PER_USER + PER_USER_DAY * days), ("population.users", "simulation.days")),
        Driver("a day of message copies", dau * m.messages_per_dau_per_day * recipients * per_copy,
               ("population.users", "messaging.messages_per_dau_per_day", "messaging.group_recipients_mean")),
        Driver("a day of sessions", dau * sc.activity.sessions_per_dau_per_day * PER_SESSION,
               ("population.users", "activity.sessions_per_dau_per_day")),
        Driver("a day of calls", dau * sc.calls.calls_per_dau_per_day * PER_CALL, ("population.users", "calls.calls_per_dau_per_day")),
    ]
    if sc.iot is not None:
        drivers.append(Driver("a day of telemetry", IOT_FIXED + _iot_messages_per_day(sc.iot) * PER_IOT_MESSAGE,
                              ("iot.devices", "iot.moving_interval_s", "iot.parked_interval_s")))
    drivers.sort(key=lambda d: d.bytes, reverse=True)
    return int(sum(d.bytes for d in drivers)), drivers


def _iot_messages_per_day(cfg) -> float:
    """Telemetry messages per day: moving devices report every ~moving_interval_s, parked ones less often."""
    lo, hi = cfg.moving_interval_s
    per_second = cfg.moving_fraction / ((lo + hi) / 2) + (1 - cfg.moving_fraction) / cfg.parked_interval_s
    return cfg.devices * 86_400 * per_second


# -- the limit ----------------------------------------------------------------------------------------------


def physical_memory() -> int | None:
    """Bytes of RAM this process may use: physical memory, or the cgroup's limit when lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and (total is None or int(text) < total):
            total = int(text)
    return total


def parse_size(text: str, what: str) -> int:
    """``8GB``, ``512MB``, ``1.5GiB`` or a number of bytes (GB = 10^9, GiB = 2^30), positive."""
    from pydantic import ByteSize, TypeAdapter, ValidationError

    try:
        value = int(TypeAdapter(ByteSize).validate_python(str(text).strip()))
    except ValidationError:
        value = 0
    if value <= 0:
        raise InputError(None, what, f"expected a memory size such as 8GB, 512MB or 1.5GiB, got {text!r}")
    return value


def memory_limit(max_memory: str | int | None = None) -> tuple[int | None, str]:
    """The limit in bytes (None: unknown machine, no limit) and where it comes from, for messages."""
    if max_memory is not None:
        return (max_memory, "--max-memory") if isinstance(max_memory, int) else (
            parse_size(max_memory, "--max-memory"), "--max-memory")
    if os.environ.get(ENV_VAR, "").strip():
        return parse_size(os.environ[ENV_VAR], ENV_VAR), ENV_VAR
    total = physical_memory()
    if total is None:
        return None, "unknown"
    return int(total * DEFAULT_SHARE), f"{DEFAULT_SHARE:.0%} of {human(total)} RAM"


def human(n: float) -> str:
    """Bytes in decimal units, e.g. 12.3 GB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n / 1e3:,.1f} kB"


def check_memory(scenario, source: str = "<scenario>", max_memory: str | int | None = None) -> int:
    """Refuse (InputError) a scenario whose estimated memory exceeds the limit; return the estimate."""
    need, drivers = estimate_bytes(scenario)
    limit, origin = memory_limit(max_memory)
    if limit is None or need <= limit:
        return need
    big = [d for d in drivers if d.keys and d.bytes >= 0.1 * need] or [d for d in drivers if d.keys][:1]
    keys = list(dict.fromkeys(k for d in big for k in d.keys))
    parts = ", ".join(f"{d.what} {human(d.bytes)}" for d in big)
    raise InputError(source, ", ".join(keys) or None,
                     f"the run needs an estimated {human(need)} of memory ({parts}), over the limit of {human(limit)} "
                     f"({origin}); make the run smaller, or raise the limit with --max-memory or {ENV_VAR}")

