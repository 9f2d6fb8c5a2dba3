"""Differential validation of two world engines: scenarios, quantities, statistics, the null and the faults.

Used by ``tests/test_engines_agree.py``; reusable from a benchmark or a notebook (with ``tests/`` on
``sys.path``)::

    from agreement import EVENTS, Runs, compare
    runs = Runs()
    report = compare(runs.pairs(EVENTS))      # every case: the fast engine's references against the events engine
    print(report.summary(), report.table(), report.ok)

The test, stated in full
------------------------
* **Runs.** Per case and seed s (S = 5 seeds), engine B runs once and the fast engine runs K = 4 times with
  independent behaviour (the *references*, :func:`fast_variant` with salts ``ref0..ref3``). The same seed gives
  every run the same population and social graph (:mod:`sim.world.population`); their behavioural draws are
  independent. If B implements the fast engine's model, the K + 1 runs of a seed are i.i.d. given the population.
* **Location test.** Per quantity, ``d_s = B_s - mean_k A_{s,k}`` (paired by seed: the population's variance
  cancels) and a two-sided Student t test of ``mean d = 0`` with the run-to-run variance pooled from the
  references' spread within each seed (S (K - 1) df) and the d_s' spread about their mean (S - 1 df):
  ``t = mean d / (sigma sqrt((1 + 1/K) / S))``, df = S K - 1 = 19; for normal runs of equal variance the d_s and
  the residuals are independent under the null, so t is Student t (the null calibration shows it holds well
  enough here). The references buy degrees of freedom with cheap fast runs: 5 runs of a slow engine test about as
  sharply as 10 paired runs would (minimum detectable effect ~3.0 vs ~3.3 run standard deviations). A profile (connects by hour of day: 24 shares) is tested hour
  by hour, Bonferroni over its hours (``p = min(1, 24 min_h p_h)``). Every tested quantity of *every* case is one
  family, held at family-wise error rate ``ALPHA`` = 1 % by Holm-Bonferroni (valid under any dependence): a
  correct engine fails the location test anywhere in the file for at most 1 % of seed sets. Seeds are fixed, so
  a CI run is deterministic.
* **Tolerance band** (the guard against a test that passes because variance is huge). Per quantity, the
  ``1 - BAND_ALPHA`` = 99 % confidence interval of the mean relative difference ``mean d / ((mean A + mean B) / 2)``
  must lie inside ``+-tol``: an engine whose noise is too large to resolve ``tol`` fails rather than passes, and a
  true relative difference beyond ``tol`` plus the interval's half-width fails with probability >= 99.5 %.
  ``tol`` (:data:`TOLERANCE`) is ``BAND_FACTOR`` x the standard error of the quantity in a null calibration on
  other seeds (:data:`CALIBRATION_SEEDS`, :func:`calibrate`), the worst case's, rounded up: a correct engine's
  interval then reaches its band with probability <= 1.2e-4 for the case that sets the band (the calibration's own
  error included), far less for the others, ~0.3 % over the file: the false-alarm rate stays ~1 % (<= 1.3 %).
  ``spread`` (sd of the d_s over the sd the references predict; 1 for a correct engine) tells a variance
  mismatch from a bias.
* **Power** is reported per row: ``mde``, the relative difference the location test flags with ~80 %
  probability at its first Holm step; the injected faults prove it.
* A quantity zero in every run of both engines is skipped with a note; one identical in every run passes with a
  note (MAU: every run makes exactly the population's active users connect).
* Differences by design are listed in an exemption dict handed to :func:`compare`: ``skip(reason)`` (not
  compared) or ``widen(tol, reason)`` (a known bias: no location test, band ``+-tol``).

The null, calibrating the test: engine B = the fast engine itself with one more independent salt (``NULL``).
Faults, in one engine only (the fast references; B untouched): :func:`tls_resumption_fault` (the scenario the
fast engine gets) and :func:`midnight_fault` (the fast engine's push throttle forgetting its slots at midnight).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from sim import yamlio
from sim.meters import BILLED_OUTBOUND, CATEGORIES
from sim.rng import Streams
from sim.scenario import validate_scenario
from sim.simulate import RunResult, simulate

ROOT = Path(__file__).resolve().parent.parent

#: Family-wise false-alarm rate of the location tests (all quantities of all cases together).
ALPHA = 0.01
#: The tolerance band's confidence interval has level 1 - BAND_ALPHA.
BAND_ALPHA = 0.01
#: Seeds per case (fixed: deterministic CI runs); SIM_AGREE_SEEDS=N overrides (TOLERANCE assumes 5 x 4: recalibrate).
SEEDS = tuple(range(1, 1 + int(os.environ.get("SIM_AGREE_SEEDS", "5"))))
#: Fast-engine reference runs per seed (independent behaviour); SIM_AGREE_REFERENCES=K overrides.
K_REFERENCES = int(os.environ.get("SIM_AGREE_REFERENCES", "4"))
#: Seeds of the null calibration that sets the tolerance bands (disjoint from SEEDS).
CALIBRATION_SEEDS = tuple(range(101, 106))
#: Runs in parallel processes (a run is single-threaded); SIM_AGREE_WORKERS overrides, 1 under pytest-xdist.
WORKERS = int(os.environ.get("SIM_AGREE_WORKERS", "1" if os.environ.get("PYTEST_XDIST_WORKER") else
                             str(min(2, os.cpu_count() or 1))))


# -- cases --------------------------------------------------------------------------------------------------
def merge(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` merged in, nested dicts key by key (a deep copy)."""
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def quick(**extra) -> dict:
    """scenarios/quick.yaml as a raw dict, shrunk to 300 users and 2 days, with ``extra`` merged in."""
    path = ROOT / "scenarios" / "quick.yaml"
    raw = yamlio.parse(yamlio.read_text(path, "scenario file"), str(path))
    raw.pop("plans", None)
    return merge(raw, merge({"population": {"users": 300}, "simulation": {"days": 2}}, extra))


def small_free_plan(outbound_gb: float = 0.02, grace: str = "1h", rate: float = 2) -> dict:
    """mesibo-free (as a plan document) scaled to a small app's two days: the outbound free limit ``outbound_gb``,
    a throttling grace ``grace`` and a rate limit of ``rate`` messages per second (its 0.5 % of 300 users would be
    1.5, i.e. 1 per second: the throttle's own rate). The rate limit rejects from the start; once the outbound
    limit is passed (day 1) the app is throttled to 1 message per second (day 2)."""
    path = ROOT / "sim" / "pricing" / "plans" / "mesibo-free.yaml"
    doc = yamlio.parse(yamlio.read_text(path, "plan file"), str(path))
    doc["name"] = "mesibo-free-small"
    for lim in doc["limits"]:
        if lim["metric"] == "outbound":
            lim["max"] = outbound_gb
    doc["throttling"]["grace"] = grace
    doc["restrictions"]["message_rate"] = {"scope": "app", "measure": "messages_per_second", "limit": rate,
                                           "action": "reject"}
    return doc


#: Not a scenario key: ``ENFORCE: plan`` (a shipped plan's name or a plan document) at the top of a case's dict
#: runs it under that plan's runtime limits (PlanEnforcer.from_plan(plan, users), as `sim run` builds them).
ENFORCE = "enforce_plan"


@dataclass(frozen=True)
class Case:
    """A scenario of the comparison: its raw dict (``ENFORCE`` may name a plan) and what it exercises."""

    name: str
    raw: dict
    why: str = ""


def calm(**extra) -> dict:
    """:func:`quick` with the users' heavy tails turned down (message and session rates equal across users, session
    and call lengths less skewed) and every active user active every day. Why: at 300 users a handful of heavy
    users, and which users happen to use the app on a given day, make most of a run's run-to-run noise, which
    hides a mechanism's bias; the cases that test one mechanism each run calm, so that their test
    resolves a few per cent (the ``mde`` column), while ``quick`` keeps the reference defaults, tails included."""
    base = {"messaging": {"rate_sigma": 0.0}, "activity": {"session_rate_sigma": 0.0, "session_sigma": 0.5},
            "population": {"dau_over_mau": 1.0},
            "calls": {"duration_sigma": 0.5}}
    return quick(**merge(base, extra))


CASES: tuple[Case, ...] = (
    Case("quick", quick(), "the reference defaults: sessions, Doze, push, groups, receipts, media, calls"),
    Case("quick-calm", calm(), "the same mechanisms with calm users: the sharpest test of the defaults"),
    Case("tls-off", calm(protocol={"tls": "off"}), "no TLS: no handshakes, no record overhead"),
    Case("no-store-ttl", calm(messaging={"no_store_fraction": 0.3, "ttl_s": 3600}),
         "30 % of messages with the store flag off (drops) and a 1-hour TTL (expiries)"),
    Case("calls-turn", calm(calls={"calls_per_dau_per_day": 3.0, "turn_relay_fraction": 0.5}),
         "10x the calls, half of them relayed: call connections, signalling, TURN media"),
    Case("heavy-groups", calm(messaging={"group_fraction": 0.6, "group_recipients_mean": 10,
                                         "group_recipients_max": 40}),
         "60 % group messages, to 10 recipients on average (up to 40): fan-out, stored copies, push wake-ups"),
    Case("plan-binds", calm(messaging={"messages_per_dau_per_day": 80}, **{ENFORCE: small_free_plan()}),
         "a plan's limits act: mesibo-free scaled to the app (rate limit 2 messages per second, outbound free limit "
         "0.02 GB) rejects over the rate from the start and throttles to 1 per second once the limit is passed"),
    Case("ios-push-throttle", calm(population={"device_mix": "ios", "timezones": "utc"},
                                   push={"min_interval_ios_s": 14_400}, activity={"diurnal": {"shape": "flat"}}),
         "iPhones only, one wake per recipient per 4 h, a flat UTC day (tests/test_day_boundaries.py's world): "
         "the push throttle carried across midnight"),
)
CASE = {c.name: c for c in CASES}


# -- engines -----------------------------------------------------------------------------------------------
def run_scenario(raw: dict, seed: int) -> RunResult:
    """simulate() a raw scenario dict at ``seed``, under the plan its ``ENFORCE`` key gives, if any."""
    raw = dict(raw)
    plan = raw.pop(ENFORCE, None)
    sc = validate_scenario({**raw, "seed": seed}, f"<{raw.get('name', 'scenario')}>")
    enforcer = None
    if plan is not None:
        from sim.pricing.plan import load_plan, plan_from_dict
        from sim.world.plan_enforcer import PlanEnforcer

        plan = plan_from_dict(plan) if isinstance(plan, dict) else load_plan(plan)
        enforcer = PlanEnforcer.from_plan(plan, users=sc.population.users)
    return simulate(sc, seed=seed, progress=False, raise_errors=True, enforcer=enforcer)


def fast(raw: dict, seed: int) -> RunResult:
    """The fast engine (sim/world/mobile)."""
    return run_scenario({**raw, "engine": "fast"}, seed)


def events(raw: dict, seed: int) -> RunResult:
    """The events engine (sim/world/events)."""
    return run_scenario({**raw, "engine": "events"}, seed)


@dataclass(frozen=True)
class Engine:
    """A way to run a scenario, ``run(scenario_dict, seed) -> RunResult`` (a module-level function or a
    functools.partial of one, so that worker processes can run it); ``name`` keys the run cache."""

    name: str
    run: Callable[[dict, int], RunResult]


EVENTS = Engine("events", events)


# -- the fast engine with independent behaviour; injected faults ----------------------------------------------
#: Streams that make the population and its social graph (sim.world.population): shared by every run of a seed.
POPULATION_STREAMS = frozenset({"population", "conversations", "push_users"})


class SaltedStreams(Streams):
    """The seed's population streams unchanged; every other stream (behaviour) independent of the unsalted ones."""

    def __init__(self, seed: int, replication: int = 0, salt: str = "independent") -> None:
        super().__init__(seed, replication)
        self.salt = salt

    def seed_sequence(self, *names):
        if names and names[0] in POPULATION_STREAMS:
            return super().seed_sequence(*names)
        return super().seed_sequence("agreement-salt", self.salt, *names)


@contextlib.contextmanager
def independent_behaviour(salt: str) -> Iterator[None]:
    """The fast engine (MobileWorld) draws all its behaviour (active days, sessions, OS, messages, pushes, calls,
    connections, initial state) from salted streams; its population is the seed's."""
    from sim.world.mobile.world import MobileWorld

    orig = MobileWorld.__init__

    def init(self, sc, streams, *a, **kw):
        orig(self, sc, SaltedStreams(streams.seed, streams.replication, salt), *a, **kw)

    MobileWorld.__init__ = init
    try:
        yield
    finally:
        MobileWorld.__init__ = orig


TLS_FAULT = 0.95


def tls_resumption_fault(raw: dict) -> dict:
    """Fault 1: the TLS resumption probability x 0.95, in the scenario handed to one engine only."""
    from sim.scenario import Network

    p = raw.get("network", {}).get("tls_resumption_probability", Network().tls_resumption_probability)
    return merge(raw, {"network": {"tls_resumption_probability": p * TLS_FAULT}})


@contextlib.contextmanager
def midnight_fault() -> Iterator[None]:
    """Fault 2: the fast engine's push throttle forgets its slots at every midnight of the world's clock (what the
    model once did; injected as in tests/test_day_boundaries.py)."""
    from sim.world.mobile.world import MobileWorld

    orig = MobileWorld.step

    def forgetful(self, d):
        self.push_state.forget()
        return orig(self, d)

    MobileWorld.step = forgetful
    try:
        yield
    finally:
        MobileWorld.step = orig


FAULTS = {"tls": tls_resumption_fault, "midnight": midnight_fault}


def fast_variant(raw: dict, seed: int, *, salt: str, fault: str | None = None) -> RunResult:
    """The fast engine with behaviour salted by ``salt``, and the injected ``fault`` (a FAULTS key), if any."""
    if fault == "tls":
        raw = tls_resumption_fault(raw)
    with independent_behaviour(salt), (midnight_fault() if fault == "midnight" else contextlib.nullcontext()):
        return fast(raw, seed)


def references(fault: str | None = None, k: int = K_REFERENCES) -> tuple[Engine, ...]:
    """The fast engine's K reference runs per seed (engine A of every comparison), with ``fault`` injected."""
    tag = f"+{fault}-fault" if fault else ""
    return tuple(Engine(f"fast~ref{i}{tag}", functools.partial(fast_variant, salt=f"ref{i}", fault=fault))
                 for i in range(k))


REFERENCES = references()
#: The null's engine B: the fast engine once more, with behaviour independent of the references'.
NULL = Engine("fast~null", functools.partial(fast_variant, salt="null"))


def unavailable(eng: Engine, runs: Runs, case: Case | None = None, seed: int | None = None) -> str | None:
    """Why ``eng`` cannot be compared yet (it raises, or it silently runs the fast engine), else None."""
    case = case or CASES[0]
    seed = SEEDS[0] if seed is None else seed
    try:
        mine = runs.usage(eng, case, seed)
    except Exception as exc:  # noqa: BLE001 - any failure means: not there yet
        first = str(exc).splitlines()[0] if str(exc) else ""
        return f"{type(exc).__name__}: {first}"
    if mine.get("run", {}).get("engine", eng.name) != eng.name and eng is EVENTS:
        return f"the run reports engine {mine['run']['engine']!r}"
    if eng is EVENTS and mine == runs.usage(Engine("fast", fast), case, seed):
        return "its runs are bit-identical to the fast engine's (simulate() does not dispatch on engine yet)"
    return None


# -- quantities ---------------------------------------------------------------------------------------------------
CONNECTION_CAUSES = ("foreground", "background", "push", "call", "reconnect")
MESSAGE_COUNTS = ("messages_originated", "messages_sent", "delivered", "delivered_from_store", "stored", "expired",
                  "dropped", "rejected", "discarded", "messages_rejected", "rejected_attempts", "receipts_delivered")
PROFILE = "connects_by_hour"


def _values(meter) -> np.ndarray:
    return np.asarray(meter["values"] if isinstance(meter, dict) else [meter], dtype=float)


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def quantities(result: RunResult) -> dict[str, float | np.ndarray]:
    """The compared quantities of one run: scalars, and the hourly connect profile (24 shares).

    Counts an engine does not report read as 0 (so a missing count shows as a difference).
    """
    u, book = result.usage, result.book
    c = {k: float(v) for k, v in u["counts"].items()}
    q: dict[str, float | np.ndarray] = {
        "mau": float(_values(u["meters"]["mau"]).sum()),
        "dau_mean": float(np.mean(u["activity"]["dau"]["values"])),
    }
    for cause in CONNECTION_CAUSES:
        q[f"connections_{cause}"] = c.get(f"connections_{cause}", 0.0)
    q["full_handshakes"] = c.get("full_handshakes", 0.0)
    q["resumed_handshakes"] = c.get("resumed_handshakes", 0.0)
    # the resumption probability's own signal, without the noise of how many reconnects there were
    q["resumed_share"] = _ratio(q["resumed_handshakes"], q["full_handshakes"] + q["resumed_handshakes"])
    for k in MESSAGE_COUNTS:
        q[k] = c.get(k, 0.0)
    # per-unit rates: the mechanisms (fan-out, routing, the store's rules, the rate limit, sizes) without the noise
    # of how many messages a run happened to have
    q["copies_per_message"] = _ratio(q["messages_sent"], q["messages_originated"])
    for k in ("delivered_from_store", "expired", "dropped", "rejected"):
        q[f"{k}_share"] = _ratio(q[k], q["messages_sent"])
    for direction, cats in u["breakdown"].items():
        for cat in CATEGORIES:
            q[f"bytes_{direction}_{cat}"] = float(cats.get(cat, 0))
    q["bytes_outbound_billed"] = float(sum(u["breakdown"]["outbound"].get(k, 0) for k in BILLED_OUTBOUND))
    q["payload_bytes_per_delivery"] = _ratio(q["bytes_outbound_payload"], q["delivered"])
    q["peak_ccu"] = float(_values(u["meters"]["peak_ccu"]).max())
    q["ccu_mean"] = float(np.mean(book.series["ccu"]))
    stored = u["meters"].get("stored_bytes")
    q["stored_bytes_mean"] = float(_values(stored).mean()) if stored is not None else 0.0
    q[PROFILE] = hourly_profile(result)
    return q


def hourly_profile(result: RunResult) -> np.ndarray:
    """Connects (book series ``connects``, per minute) folded onto the 24 UTC hours of the day, as shares."""
    x = np.asarray(result.book.series["connects"], dtype=float)
    start = result.book.start  # the period start: minute 0 of the book
    hour = ((start.hour * 60 + start.minute + np.arange(x.size)) // 60) % 24
    by_hour = np.bincount(hour, weights=x, minlength=24)
    total = by_hour.sum()
    return by_hour / total if total else by_hour


# -- tolerance bands -------------------------------------------------------------------------------------------
#: The band +-tol per quantity; a key (case, quantity) overrides it in one case (a quantity sparse elsewhere, or one
#: case much noisier). BAND_FACTOR x the quantity's standard error in the null calibration on CALIBRATION_SEEDS, the
#: worst case's, rounded up: regenerate with ``python tests/agreement.py`` after a change to the cases or the model.
TOLERANCE: dict[str | tuple[str, str], float] = {
    'mau': 0.01,
    ('quick', 'mau'): 0.01,
    'dau_mean': 0.01,
    ('quick', 'dau_mean'): 0.05,
    ('heavy-groups', 'dau_mean'): 0.01,
    ('plan-binds', 'dau_mean'): 0.01,
    'connections_foreground': 0.15,
    ('quick', 'connections_foreground'): 0.25,
    'connections_background': 0.75,
    'connections_push': 0.1,
    ('quick', 'connections_push'): 0.2,
    'connections_call': 0.75,
    ('calls-turn', 'connections_call'): 0.2,
    'full_handshakes': 0.15,
    'resumed_handshakes': 0.2,
    'resumed_share': 0.03,
    'messages_originated': 0.05,
    ('quick', 'messages_originated'): 0.4,
    'messages_sent': 0.075,
    ('quick', 'messages_sent'): 0.4,
    'delivered': 0.075,
    ('quick', 'delivered'): 0.4,
    'delivered_from_store': 0.1,
    ('quick', 'delivered_from_store'): 0.4,
    'stored': 1.5,
    'receipts_delivered': 0.1,
    ('quick', 'receipts_delivered'): 0.4,
    'copies_per_message': 0.1,
    ('quick', 'copies_per_message'): 0.2,
    'delivered_from_store_share': 0.075,
    ('quick', 'delivered_from_store_share'): 0.15,
    'bytes_outbound_payload': 0.2,
    ('quick', 'bytes_outbound_payload'): 0.6,
    'bytes_outbound_app_protocol': 0.1,
    ('quick', 'bytes_outbound_app_protocol'): 0.4,
    'bytes_outbound_tls_handshake': 0.15,
    'bytes_outbound_tls_record': 0.1,
    ('quick', 'bytes_outbound_tls_record'): 0.3,
    'bytes_outbound_keepalive': 0.4,
    ('ios-push-throttle', 'bytes_outbound_keepalive'): 0.6,
    'bytes_outbound_call_signalling': 1.0,
    ('calls-turn', 'bytes_outbound_call_signalling'): 0.2,
    'bytes_outbound_turn_media': 4.0,
    ('calls-turn', 'bytes_outbound_turn_media'): 0.4,
    'bytes_outbound_tcpip': 0.1,
    ('quick', 'bytes_outbound_tcpip'): 0.25,
    'bytes_inbound_payload': 0.1,
    ('quick', 'bytes_inbound_payload'): 0.5,
    'bytes_inbound_app_protocol': 0.075,
    ('quick', 'bytes_inbound_app_protocol'): 0.25,
    'bytes_inbound_tls_handshake': 0.15,
    'bytes_inbound_tls_record': 0.1,
    ('quick', 'bytes_inbound_tls_record'): 0.3,
    'bytes_inbound_keepalive': 0.4,
    ('ios-push-throttle', 'bytes_inbound_keepalive'): 0.6,
    'bytes_inbound_call_signalling': 1.0,
    ('calls-turn', 'bytes_inbound_call_signalling'): 0.2,
    'bytes_inbound_turn_media': 4.0,
    ('calls-turn', 'bytes_inbound_turn_media'): 0.4,
    'bytes_inbound_tcpip': 0.1,
    ('quick', 'bytes_inbound_tcpip'): 0.25,
    'bytes_outbound_billed': 0.15,
    ('quick', 'bytes_outbound_billed'): 0.4,
    'payload_bytes_per_delivery': 0.2,
    'peak_ccu': 0.5,
    'ccu_mean': 0.075,
    ('quick', 'ccu_mean'): 0.2,
    'stored_bytes_mean': 0.4,
    ('quick', 'stored_bytes_mean'): 1.25,
    'connects_by_hour': 0.75,
    'expired': 0.2,
    'dropped': 0.1,
    'expired_share': 0.2,
    'dropped_share': 0.1,
    'rejected': 0.5,
    'messages_rejected': 0.5,
    'rejected_attempts': 0.2,
    'rejected_share': 0.5,
}

DEFAULT_TOLERANCE = 0.5


def tolerance(case: str, quantity: str) -> float:
    """The band of ``quantity`` in ``case``."""
    return TOLERANCE.get((case, quantity), TOLERANCE.get(quantity, DEFAULT_TOLERANCE))


# -- exemptions (differences by design) ------------------------------------------------------------------------
@dataclass(frozen=True)
class Exemption:
    reason: str
    tol: float | None = None  # None: not compared at all; else a known bias: band +-tol, no location test


def skip(reason: str) -> Exemption:
    """A quantity the engines define differently by design: not compared (reported with ``reason``)."""
    return Exemption(reason)


def widen(tol: float, reason: str) -> Exemption:
    """A known, bounded difference by design: no location test, the band widened to +-``tol``."""
    return Exemption(reason, tol)


def exemption_for(exemptions: dict, case: str, quantity: str) -> Exemption | None:
    """``exemptions`` keys: ``(case, quantity)``, or ``quantity`` alone (every case)."""
    return exemptions.get((case, quantity), exemptions.get(quantity))


# -- statistics -----------------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One quantity of one case: B against the references, seed by seed, tested."""

    case: str
    quantity: str
    mean_a: float  # the references' mean
    mean_b: float
    rel: float = 0.0  # mean relative difference (B - A) / ((mean A + mean B) / 2)
    lo: float = 0.0  # its 1 - BAND_ALPHA confidence interval
    hi: float = 0.0
    p: float = 1.0  # the t test (a profile: Bonferroni over its bins)
    se: float = 0.0  # standard error of rel
    df: int = 0
    spread: float = math.nan  # sd of the d_s / the sd the references predict (1 for a correct engine)
    bins: int = 1  # tests inside the row (a profile's bins)
    tol: float = 0.0
    mde: float = 0.0  # relative difference flagged with ~80 % probability at the first Holm step
    tested: bool = True  # in the Holm family
    banded: bool = True  # held to its band
    note: str = ""
    worst_bin: int | None = None  # a profile: the bin with the smallest p
    p_holm: float = 1.0
    significant: bool = False
    out_of_band: bool = False

    @property
    def failed(self) -> bool:
        return self.significant or self.out_of_band

    @property
    def reach(self) -> float:
        """The confidence interval's farthest end from 0."""
        return max(abs(self.lo), abs(self.hi))

    @property
    def band_use(self) -> float:
        """How much of its band the confidence interval uses (> 1: out of band)."""
        return self.reach / self.tol if self.tol else math.inf


@dataclass(frozen=True)
class Contrast:
    p: float
    mean: float  # mean of d_s = B_s - mean_k A_sk
    se: float
    df: int
    spread: float


def contrast_t(a: np.ndarray, b: np.ndarray) -> Contrast:
    """B against K references per seed: ``a`` (S x K), ``b`` (S). The t test of mean(d) = 0 described in the module
    docstring (K = 1: the paired t test). Degenerate cases: no variance and d = 0 (identical in every run) -> p = 1;
    no variance but d != 0 (a constant offset) -> p = 0."""
    a = np.asarray(a, dtype=float).reshape(len(b), -1)
    b = np.asarray(b, dtype=float)
    s, k = a.shape
    c = 1.0 + 1.0 / k
    abar = a.mean(axis=1)
    d = b - abar
    m = float(d.mean())
    ss_a, df_a = float(((a - abar[:, None]) ** 2).sum()), s * (k - 1)
    ss_d, df_d = float(((d - m) ** 2).sum()) / c, s - 1
    df = df_a + df_d
    var = (ss_a + ss_d) / df
    se = math.sqrt(var * c / s)
    spread = math.sqrt((ss_d / df_d) / (ss_a / df_a)) if df_a and ss_a > 0 else math.nan
    size = max(float(np.abs(a).max()), float(np.abs(b).max()), 1e-300)
    if se <= 1e-12 * size:
        return Contrast(1.0 if abs(m) <= 1e-12 * size else 0.0, m, 0.0, df, spread)
    return Contrast(float(2 * stats.t.sf(abs(m / se), df)), m, se, df, spread)


def _row(case: str, name: str, a: np.ndarray, b: np.ndarray, scale: float | None = None) -> Row:
    """One scalar quantity: ``a`` (S x K references), ``b`` (S)."""
    ma, mb = float(a.mean()), float(b.mean())
    row = Row(case, name, ma, mb)
    if not a.any() and not b.any():
        row.tested, row.banded, row.note = False, False, "zero in both engines: skipped"
        return row
    scale = (abs(ma) + abs(mb)) / 2 if scale is None else scale
    t = contrast_t(a, b)
    tq = stats.t.ppf(1 - BAND_ALPHA / 2, t.df)
    row.p, row.rel, row.se, row.df, row.spread = t.p, t.mean / scale, t.se / scale, t.df, t.spread
    row.lo, row.hi = row.rel - tq * row.se, row.rel + tq * row.se
    if t.se == 0.0:
        row.note = "identical in every run" if t.p == 1.0 else "a constant offset in every seed"
    return row


def _profile_row(case: str, name: str, a: np.ndarray, b: np.ndarray) -> Row:
    """A profile (``a``: S x K x bins, ``b``: S x bins, shares): each bin tested as a scalar, Bonferroni over the
    bins; relative differences are relative to the mean bin (1/24 of the connects: an average hour). The row shows
    the bin with the smallest p and the interval of the bin that reaches farthest."""
    scale = float((a.mean() + b.mean()) / 2)
    rows = [_row(case, f"{name}[{h}]", a[..., h], b[:, h], scale) for h in range(b.shape[1])]
    live = [r for r in rows if r.tested]
    if not live:
        return Row(case, name, 0.0, 0.0, tested=False, banded=False, note="zero in both engines: skipped")
    worst = min(live, key=lambda r: r.p)
    far = max(live, key=lambda r: r.reach)
    row = Row(case, name, worst.mean_a, worst.mean_b, rel=worst.rel, lo=far.lo, hi=far.hi,
              p=min(1.0, worst.p * len(live)), se=max(r.se for r in live), df=worst.df, spread=worst.spread,
              bins=len(live))
    row.worst_bin = int(_bin(worst.quantity))
    row.note = f"smallest p at hour {row.worst_bin}, farthest interval at hour {_bin(far.quantity)}"
    return row


def _bin(label: str) -> str:
    return label[label.index("[") + 1:-1]


def holm(rows: list[Row], alpha: float = ALPHA, family_size: int = 0) -> int:
    """Holm-Bonferroni over the tested rows (at least ``family_size`` hypotheses): sets ``p_holm`` (adjusted) and
    ``significant``; returns the family's size."""
    live = sorted((r for r in rows if r.tested), key=lambda r: r.p)
    m = max(len(live), family_size)
    running = 0.0
    for i, r in enumerate(live):
        running = max(running, min(1.0, (m - i) * r.p))
        r.p_holm = running
        r.significant = running < alpha
    return m


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    alpha: float = ALPHA
    family: int = 0  # hypotheses in the Holm family
    seeds: int = 0
    references: int = 0

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.failed]

    @property
    def ok(self) -> bool:
        return not self.failures

    def row(self, case: str, quantity: str) -> Row:
        return next(r for r in self.rows if r.case == case and r.quantity == quantity)

    def cases(self) -> list[str]:
        return list(dict.fromkeys(r.case for r in self.rows))

    def min_p(self, case: str | None = None) -> float:
        """The smallest (unadjusted) location-test p of ``case`` (all cases: None)."""
        ps = [r.p for r in self.rows if r.tested and (case is None or r.case == case)]
        return min(ps) if ps else 1.0

    def max_band_use(self, case: str | None = None) -> float:
        uses = [r.band_use for r in self.rows if r.banded and (case is None or r.case == case)]
        return max(uses) if uses else 0.0

    def summary(self) -> str:
        lines = [f"{len(self.cases())} cases x {self.seeds} seeds x (1 + {self.references} reference runs); Holm "
                 f"family of {self.family} tests at FWER {self.alpha:g} (first step: p < {self.alpha / max(self.family, 1):.1e})"]
        for case in self.cases():
            rows = [r for r in self.rows if r.case == case]
            live = [r for r in rows if r.tested]
            lines.append(f"  {case:18} tested {len(live):3d}, skipped {len(rows) - len(live):2d}, min p "
                         f"{self.min_p(case):8.2e}, most of a band used {self.max_band_use(case):.2f}, failed "
                         f"{sum(r.failed for r in rows)}")
        return "\n".join(lines)

    def table(self, only_failed: bool = False) -> str:
        head = (f"{'case':18} {'quantity':28} {'mean A':>10} {'mean B':>10} {'rel':>7} {'99% CI':>17} {'tol':>5} "
                f"{'mde':>6} {'spread':>6} {'p':>8} {'p_holm':>8}  verdict")
        lines = [head]
        for r in self.rows:
            if only_failed and not r.failed:
                continue
            verdict = " ".join(v for v, on in (("DIFFERS", r.significant), ("OUT-OF-BAND", r.out_of_band)) if on)
            verdict = verdict or ("ok" if r.tested or r.banded else "-")
            lines.append(f"{r.case:18} {r.quantity:28} {r.mean_a:10.4g} {r.mean_b:10.4g} {r.rel:+7.3f} "
                         f"{f'[{r.lo:+.3f},{r.hi:+.3f}]':>17} {r.tol:5.2f} {r.mde:6.3f} {r.spread:6.2f} "
                         f"{r.p:8.1e} {r.p_holm:8.1e}  {verdict} {r.note}".rstrip())
        return "\n".join(lines)


Pairs = dict[str, tuple[list[list[dict]], list[dict]]]


def compare(pairs: Pairs, exemptions: dict | None = None, alpha: float = ALPHA, family_size: int = 0) -> Report:
    """Compare engine B with the fast references: ``pairs`` is ``{case: (references' quantities per seed (a list of
    K dicts each), B's quantities per seed)}``, in the same seed order (:meth:`Runs.pairs` builds it). One Holm family
    over all cases, of at least ``family_size`` tests (give the full comparison's size to judge a subset of its cases
    as strictly as the full comparison would)."""
    exemptions = exemptions or {}
    rows: list[Row] = []
    seeds = k = 0
    for case, (qa, qb) in pairs.items():
        if len(qa) != len(qb) or len(qa) < 2:
            raise ValueError(f"{case}: need the same seeds (at least 2) for both engines, got {len(qa)} and {len(qb)}")
        seeds, k = len(qa), len(qa[0])
        for name in qa[0][0]:
            a = np.array([[q[name] for q in refs] for refs in qa], dtype=float)
            b = np.array([q.get(name, np.zeros_like(qa[0][0][name])) for q in qb], dtype=float)
            row = (_profile_row if b.ndim == 2 else _row)(case, name, a, b)
            row.tol = tolerance(case, name)
            ex = exemption_for(exemptions, case, name)
            if ex is not None:
                row.tested = False  # a difference by design: no location test
                row.banded = row.banded and ex.tol is not None
                row.tol = ex.tol if ex.tol is not None else row.tol
                how = "not compared" if ex.tol is None else f"band +-{ex.tol:g}"
                row.note = f"exempt ({how}): {ex.reason}"
            rows.append(row)
    m = holm(rows, alpha, family_size)
    for r in rows:
        if r.tested and r.df:  # the relative difference flagged with ~80 % probability at the first Holm step
            r.mde = (stats.t.ppf(1 - alpha / m / r.bins / 2, r.df) + stats.t.ppf(0.8, r.df)) * r.se
        r.out_of_band = r.banded and r.band_use > 1
    return Report(rows, alpha, m, seeds, k)


# -- runs, cached, in parallel -------------------------------------------------------------------------------------
def _job(run: Callable[[dict, int], RunResult], raw: dict, seed: int) -> tuple[dict, dict, float]:
    r = run(raw, seed)
    return quantities(r), r.usage, r.wall_s


class Runs:
    """Runs' quantities (and usage), cached by (engine name, case name, seed): reused across tests. Missing runs
    are computed ``workers`` at a time in worker processes."""

    def __init__(self, workers: int = WORKERS) -> None:
        self.workers = workers
        self._q: dict[tuple[str, str, int], dict] = {}
        self._usage: dict[tuple[str, str, int], dict] = {}
        self.wall_s: dict[str, float] = {}
        self.runs = 0

    def _store(self, key, out) -> None:
        q, usage, wall = out
        self._q[key], self._usage[key] = q, usage
        self.wall_s[key[0]] = self.wall_s.get(key[0], 0.0) + wall
        self.runs += 1

    def prefetch(self, jobs: Iterable[tuple[Engine, Case, int]]) -> None:
        """Run every job not cached yet (in parallel when ``workers`` > 1; the slowest engines first)."""
        todo, seen = [], set()
        for eng, case, seed in jobs:
            key = (eng.name, case.name, seed)
            if key not in self._q and key not in seen:
                seen.add(key)
                todo.append((key, eng, case, seed))
        if not todo:
            return
        if self.workers <= 1 or len(todo) == 1:
            for key, eng, case, seed in todo:
                self._store(key, _job(eng.run, case.raw, seed))
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        todo.sort(key=lambda j: not j[1].name.startswith("events"))  # the slow ones first: the pool ends together
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx) as pool:
            futures = [(key, pool.submit(_job, eng.run, case.raw, seed)) for key, eng, case, seed in todo]
            for key, fut in futures:
                self._store(key, fut.result())

    def quantities(self, eng: Engine, case: Case, seeds=SEEDS) -> list[dict]:
        self.prefetch((eng, case, s) for s in seeds)
        return [self._q[(eng.name, case.name, s)] for s in seeds]

    def usage(self, eng: Engine, case: Case, seed: int) -> dict:
        self.prefetch([(eng, case, seed)])
        return self._usage[(eng.name, case.name, seed)]

    def pairs(self, b: Engine, a: tuple[Engine, ...] = REFERENCES, cases=CASES, seeds=SEEDS) -> Pairs:
        """``{case: (a's quantities per seed, b's per seed)}`` for :func:`compare`, running what is missing."""
        self.prefetch((e, c, s) for c in cases for s in seeds for e in (b, *a))
        return {c.name: ([[self._q[(e.name, c.name, s)] for e in a] for s in seeds],
                         [self._q[(b.name, c.name, s)] for s in seeds]) for c in cases}


# -- calibration of the bands --------------------------------------------------------------------------------------
#: A band is BAND_FACTOR standard errors (the worst case's, in the null calibration): a correct engine's 99 %
#: interval (|Z| + 2.86 u standard errors, u^2 ~ chi2(19)/19) reaches it with probability 1.2e-4 when the calibration's
#: own standard error (also ~ chi2(19)) sets the band; 3e-5 at 11, 1e-5 at 12 (the rounding up adds ~20 %).
BAND_FACTOR = 10.0
_GRID = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0,
         4.0, 5.0)
#: Quantities one case exists to exercise (sparse elsewhere): the owner's band is its own entry.
OWNER = {q: "calls-turn" for q in ("connections_call", "bytes_outbound_call_signalling", "bytes_inbound_call_signalling",
                                   "bytes_outbound_turn_media", "bytes_inbound_turn_media")}


def _round_up(x: float) -> float:
    return next((g for g in _GRID if g >= x), float(math.ceil(x)))


def calibrate(runs: Runs | None = None, seeds=CALIBRATION_SEEDS) -> tuple[dict, dict]:
    """Suggested :data:`TOLERANCE`, and the table it comes from: BAND_FACTOR x each quantity's standard error in the
    null comparison (NULL against the references) on ``seeds``, the worst case's, rounded up; an :data:`OWNER` case,
    and a case needing more than twice the median over cases, get their own (case, quantity) entry."""
    runs = runs or Runs()
    rep = compare(runs.pairs(NULL, seeds=seeds))
    need: dict[str, dict[str, float]] = {}
    for r in rep.rows:
        if r.banded:
            need.setdefault(r.quantity, {})[r.case] = BAND_FACTOR * r.se
    out: dict = {}
    for q, by_case in need.items():
        med = float(np.median(list(by_case.values())))
        own = {c: v for c, v in by_case.items() if (v > 2 * med and len(by_case) > 2) or OWNER.get(q) == c}
        rest = [v for c, v in by_case.items() if c not in own] or list(own.values())
        out[q] = _round_up(max(rest))
        for c, v in own.items():
            out[(c, q)] = _round_up(v)
    return out, need


if __name__ == "__main__":
    suggested, table = calibrate()
    names = [c.name for c in CASES]
    print(f"{'BAND_FACTOR x null standard error':34}" + "".join(f"{n[:11]:>12}" for n in names))
    for q, by_case in table.items():
        print(f"{q:34}" + "".join(f"{by_case[n]:12.3f}" if n in by_case else f"{'-':>12}" for n in names))
    print("TOLERANCE = {")
    for k, v in suggested.items():
        print(f"    {k!r}: {v},")
    print("}")
