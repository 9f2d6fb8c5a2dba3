"""What each plan costs, and what each plan loses: one scenario under several plans.

A bill is half the answer. A plan's runtime restrictions also act on the application (rejected
messages, suspended channels, the reconnect storms that follow, discarded buffers), so the same
scenario produces different usage under different plans. :func:`run_plans` simulates the scenario
once without limits, with every plan's enforcer watching in dry-run mode; only the plans whose
limits would have acted get a run of their own (a run whose limits never bind is identical to the
unrestricted one, same seed, so it is not repeated). Each :class:`PlanOutcome` then holds the bill
on that plan's own usage, the enforcement report, and the extra connections and bytes its limits
caused compared with the unrestricted run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from sim.meters import BILLED_OUTBOUND
from sim.pricing.bill import Bill
from sim.world.enforcer import Enforcer

#: Counters compared between a plan's run and the unrestricted run (what a storm adds).
STORM_COUNTS = ("full_handshakes", "resumed_handshakes")


@dataclass
class PlanOutcome:
    """One plan's view of one scenario."""

    plan: str
    bill: Bill
    quote: Bill | None
    usage: dict
    enforced: bool                                   # a separate run with this plan's limits was made
    enforcement: dict = field(default_factory=dict)  # suspensions, rejected, discarded, notifications
    extra: dict = field(default_factory=dict)        # vs the unrestricted run (storm_extra): negative = fewer
    binds: bool = False                              # the plan's runtime limits acted (or, not re-run, would act)

    def row(self) -> dict[str, Any]:
        """A flat, pandas-friendly row for the comparison table."""
        enf = self.enforcement
        suspensions = enf.get("suspensions", [])
        return {
            "plan": self.plan,
            "total": self.bill.total,
            "calculator": None if self.quote is None else self.quote.total,
            "violations": len(self.bill.violations),
            "notifications": len(self.bill.notifications),
            "rejected": sum(enf.get("rejected", {}).values()),
            "discarded": sum(enf.get("discarded", {}).values()),
            "dropped": sum(enf.get("dropped", {}).values()),
            "refused_connections": sum(enf.get("refused_connections", {}).values()),
            "suspensions": len(suspensions),
            "suspended_minutes": sum(s.get("minutes", 0) for s in suspensions),
            "extra_connections": self.extra.get("connections", 0),
            "extra_established_connections": self.extra.get("established_connections", 0),
            "extra_full_handshakes": self.extra.get("full_handshakes", 0),
            "extra_resumed_handshakes": self.extra.get("resumed_handshakes", 0),
            "extra_outbound_bytes": self.extra.get("outbound_bytes", 0),
            "own_run": self.enforced,
        }


def billed_outbound(usage: dict) -> int:
    out = usage.get("breakdown", {}).get("outbound", {})
    return int(sum(out.get(c, 0) for c in BILLED_OUTBOUND))


def connection_attempts(counts: dict) -> int:
    """Connection attempts: established connections (``connections``) plus refused ones (``rejected_connections``,
    the IoT fleet's attempts refused for want of an MQTT session or during a channel suspension). Each attempt
    pays a TLS handshake, so this is the count that ``full_handshakes + resumed_handshakes`` counts."""
    return int(counts.get("connections", 0)) + int(counts.get("rejected_connections", 0))


def storm_extra(usage: dict, baseline: dict) -> dict[str, int]:
    """What a plan's run added over the unrestricted run, each figure ``plan run - unrestricted run`` (negative:
    fewer):

    * ``connections``: connection attempts (:func:`connection_attempts`), the events the handshakes count, so
      ``connections == full_handshakes + resumed_handshakes`` (with TLS on). A storm of refused reconnections
      makes it large and positive;
    * ``established_connections``: connections the platform accepted; a plan that refuses sessions has fewer
      (the reason a count of established connections alone came out negative beside a storm of handshakes);
    * ``full_handshakes``, ``resumed_handshakes``; ``outbound_bytes``: billed outbound bytes.
    """
    counts, base = usage.get("counts", {}), baseline.get("counts", {})
    extra = {"connections": connection_attempts(counts) - connection_attempts(base),
             "established_connections": int(counts.get("connections", 0)) - int(base.get("connections", 0))}
    extra |= {k: int(counts.get(k, 0)) - int(base.get(k, 0)) for k in STORM_COUNTS}
    extra["outbound_bytes"] = billed_outbound(usage) - billed_outbound(baseline)
    return extra


def cheapest_usable_choice(outcomes: list[PlanOutcome]) -> tuple[str | None, list[str]]:
    """``(cheapest, tie)`` among the plans whose hard limits hold and that lost nothing (no rejection, discard,
    drop, refused connection or suspension); failing that, among those whose limits hold; failing that, all.
    One cheapest plan: ``(plan, [])``; equal lowest totals: ``(None, [tied plans])`` (:func:`sim.pricing.report.lowest`).
    Only plans in the bills' main currency are compared (:func:`sim.pricing.report.main_currency`)."""
    from sim.pricing.report import lowest, main_currency

    currency = main_currency([o.bill for o in outcomes])
    outcomes = [o for o in outcomes if o.bill.currency == currency]  # totals in other currencies are not compared
    clean = [o for o in outcomes if not o.bill.violations and not any(
        o.row()[k] for k in ("rejected", "discarded", "dropped", "refused_connections", "suspensions"))]
    pool = clean or [o for o in outcomes if not o.bill.violations] or outcomes
    return lowest([(o.plan, o.bill.total) for o in pool])


def cheapest_usable(outcomes: list[PlanOutcome]) -> str | None:
    """The cheapest usable plan (:func:`cheapest_usable_choice`); None when there is none or on a tie."""
    return cheapest_usable_choice(outcomes)[0]


def comparison_rows(outcomes: list[PlanOutcome]) -> list[dict[str, Any]]:
    return [o.row() for o in outcomes]


def comparison_table(outcomes: list[PlanOutcome]) -> str:
    """Plans across the top: cost, calculator, and everything each plan loses."""
    from tabulate import tabulate

    from sim.pricing.report import cheapest_mark

    rows = comparison_rows(outcomes)
    name, tie = cheapest_usable_choice(outcomes)
    labels = [
        ("total", "bill"), ("calculator", "calculator (payload only)"), ("violations", "hard limits exceeded"),
        ("notifications", "notifications"), ("rejected", "messages rejected"), ("discarded", "messages discarded"),
        ("dropped", "messages dropped (device queue full)"), ("refused_connections", "refused connection attempts"),
        ("suspensions", "suspensions"), ("suspended_minutes", "suspended minutes"),
        ("extra_connections", "connection attempts vs unrestricted run"),
        ("extra_established_connections", "established connections vs unrestricted run"),
        ("extra_full_handshakes", "full TLS handshakes vs unrestricted run"),
        ("extra_outbound_bytes", "billed outbound bytes vs unrestricted run"), ("own_run", "limits changed the run"),
    ]
    body = []
    for key, label in labels:
        cell = _change if key.startswith("extra_") else _cell
        body.append([label] + [cell(r[key]) for r in rows])
    headers = ["per plan"] + [r["plan"] + cheapest_mark(r["plan"], name, tie, len(rows)) for r in rows]
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True,
                    colalign=["left"] + ["right"] * len(rows))


def change_text(v: int | float) -> str:
    """A difference against the unrestricted run, in words that cannot contradict each other: ``+1,218,574``,
    ``3,649 fewer``, ``0``."""
    if v > 0:
        return f"+{v:,}"
    if v < 0:
        return f"{-v:,} fewer"
    return "0"


def _change(v) -> str:
    return change_text(v) if isinstance(v, int | float) and not isinstance(v, bool) else _cell(v)


def _cell(v: Any) -> str:
    if isinstance(v, Decimal):
        return f"{v:,.2f}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v is None:
        return ""
    return f"{v:,}" if isinstance(v, int) else str(v)


def plot_comparison(outcomes: list[PlanOutcome], path: str | Path, title: str = "") -> Path:
    """Two panels: what each plan costs (bill beside the calculator), what each plan loses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = comparison_rows(outcomes)
    names = [r["plan"] for r in rows]
    x = np.arange(len(rows))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8, 2.2 * len(rows) + 4), 4.2))
    ax1.bar(x - 0.2, [float(r["total"]) for r in rows], 0.4, label="bill (simulated usage)")
    ax1.bar(x + 0.2, [float(r["calculator"] or 0) for r in rows], 0.4, label="calculator (payload only)")
    top = max([float(r["total"]) for r in rows] + [1.0])
    for xi, r in zip(x, rows, strict=True):
        if r["violations"]:        # a free plan that is exceeded costs nothing, and is no option
            ax1.text(xi, float(r["total"]) + 0.02 * top, "limits\nexceeded", ha="center", va="bottom", fontsize=8,
                     color="firebrick")
    currencies = list(dict.fromkeys(o.bill.currency for o in outcomes))
    if len(currencies) > 1:  # a plan in another currency is named with it on the axis
        names = [n if o.bill.currency == currencies[0] else f"{n} ({o.bill.currency})"
                 for n, o in zip(names, outcomes, strict=True)]
    ax1.set_xticks(x, names, rotation=20, ha="right")
    ax1.set_ylabel(" / ".join(currencies))
    ax1.set_title("what each plan costs")
    ax1.legend(fontsize=8)
    # losses are counts of what the plan took away; a storm's extra handshakes count only when positive
    losses = [("rejected", "messages rejected"), ("discarded", "messages discarded"),
              ("dropped", "messages dropped"), ("refused_connections", "refused connections"),
              ("extra_full_handshakes", "extra full handshakes"), ("suspended_minutes", "suspended minutes")]
    width = 0.8 / len(losses)
    for i, (key, label) in enumerate(losses):
        ax2.bar(x - 0.4 + width * (i + 0.5), [max(0, r[key]) for r in rows], width, label=label)
    ax2.set_xticks(x, names, rotation=20, ha="right")
    ax2.set_yscale("symlog", linthresh=1)
    ax2.set_ylim(bottom=0)
    ax2.set_title("what each plan loses (counts, log scale)")
    ax2.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- running a scenario under several plans -----------------------------------------------------------------


class ProbeEnforcer(Enforcer):
    """Several dry-run enforcers watching one unrestricted run: each hook goes to all of them, and the
    world is told to admit everything (dry-run enforcers only record what they would have done)."""

    dry_run = True  # the events engine admits everything and reports each message (observe_message)

    def __init__(self, members: list[Enforcer]) -> None:
        super().__init__()
        self.members = members

    def observe_message(self, *a, **k):
        self._all("observe_message", *a, **k)

    def quota_admit(self, *a, **k):
        self._all("quota_admit", *a, **k)
        return None

    def message_cap(self, t_ms):
        """No cap (the members only watch): also tells the events engine that ``admit_messages`` need not be asked
        message by message (the members see each message through ``observe_message`` and ``quota_admit``)."""
        return None

    def _all(self, hook: str, *args, **kwargs) -> None:
        for member in self.members:
            getattr(member, hook)(*args, **kwargs)

    def begin(self, *a, **k):
        self._all("begin", *a, **k)

    def admit_messages(self, *a, **k):
        self._all("admit_messages", *a, **k)
        return None

    def suspensions(self, *a, **k):
        self._all("suspensions", *a, **k)
        return []

    def admit_storage(self, *a, **k):
        self._all("admit_storage", *a, **k)
        return None

    def day_end(self, day_end_ms, usage_so_far):
        """Every member sees the same usage, built once (it is a day's worth of per-minute arrays)."""
        cache: list = []

        def once():
            if not cache:
                cache.append(usage_so_far())
            return cache[0]

        self._all("day_end", day_end_ms, once)

    def note_rejected(self, *a, **k):
        self._all("note_rejected", *a, **k)

    def finish(self, *a, **k):
        self._all("finish", *a, **k)


def mobile_enforcer(plan, scenario, dry_run: bool, until_binding: bool = False):
    from sim.sampling import mobile_sample
    from sim.world.plan_enforcer import PlanEnforcer

    # a sampled world is shown the whole app's usage (sim.sampling.Scaled); per-second rates are not enforced on it,
    # and a daily quota (a sum over the day) is the sample's share of the app's
    sample = mobile_sample(scenario)
    return PlanEnforcer.from_plan(plan, users=scenario.population.users, dry_run=dry_run,
                                  rate_scale=None if sample is not None else 1.0,
                                  quota_scale=None if sample is None else sample.sample / sample.population,
                                  until_binding=until_binding)


def iot_enforcer(plan, scenario, dry_run: bool):
    """The IoT fleet's limits object for ``plan`` (None when the scenario has no fleet)."""
    if scenario.iot is None:
        return None
    from sim.world.iot.enforcer import IotPlanLimits

    return IotPlanLimits.from_plan(plan, dry_run=dry_run)


def _binds(*enforcers) -> bool:
    return any(e is not None and getattr(e, "binds", False) for e in enforcers)


def _flat_enforcement(usage: dict, bill: Bill) -> dict:
    """The issue's enforcement section: suspensions, rejected and discarded by reason, notifications.

    Mobile and IoT reports are merged; notifications come from the bill (pricing's exact rule)."""
    raw = dict(usage.get("enforcement") or {})
    iot = raw.pop("iot", None) or {}
    out: dict[str, Any] = {"suspensions": list(raw.get("suspensions", [])) + list(iot.get("suspensions", [])),
                           "rejected": {}, "discarded": {}, "dropped": {}, "refused_connections": {}}
    details = {"mobile": raw, "iot": iot} if (raw or iot) else {}
    for part in (raw, dict(iot, refused_connections=iot.get("rejected_connections") or {})):
        for section in ("rejected", "discarded", "dropped", "refused_connections"):
            for reason, n in (part.get(section) or {}).items():
                out[section][reason] = out[section].get(reason, 0) + int(n)
    out["notifications"] = [n.to_dict() for n in bill.notifications]
    out["throttled_from"] = raw.get("throttled_from")
    if raw.get("quota_days"):
        out["quota_days"] = list(raw["quota_days"])   # the UTC days a daily quota was reached (rejected: daily_quota)
    out["details"] = details
    return out


def run_plans(scenario, plans, *, seed: int | None = None, progress: bool = True, own_runs: str = "binding"):
    """Simulate ``scenario`` under each plan's runtime limits; returns (unrestricted run, outcomes).

    One unrestricted run is watched by every plan's enforcer in dry-run mode. A plan whose limits never
    acted on it gets that run (same seed: a restricted run whose limits never bind is identical); the
    others get a run of their own with their limits enforced. ``own_runs="priced"`` gives an own run only
    to binding plans that charge anything (:func:`charges_anything`): a free plan's bill is nothing
    whatever the usage, and whether its limits hold is decided on the unrestricted run (an app within
    every limit is never throttled; one over a limit got there before any throttling), so fleets skip
    that run (sim/fleets). The outcome's ``enforcement`` then holds the dry run's report.
    """
    from sim.pricing.pricing import price
    from sim.pricing.quote import quote
    from sim.pricing.usage import usage_from_dict
    from sim.simulate import simulate

    if scenario.simulation.months:
        raise ValueError("a scenario of simulation.months is billed month by month: sim.months.run.run_months, "
                         "not run_plans (which prices one period)")
    # a plan that gets no own run whatever happens is only asked whether it binds: its probe may stop there
    probes = [(mobile_enforcer(p, scenario, True, until_binding=own_runs == "priced" and not charges_anything(p)),
               iot_enforcer(p, scenario, True)) for p in plans]
    iot_probes = [i for _, i in probes if i is not None]
    # The fleet takes one limits object: the first plan's (dry-run) IoT limits watch the unrestricted run itself,
    # the others get a dry run each (dry runs are identical to the unrestricted run).
    base = simulate(scenario, seed=seed, progress=progress, enforcer=ProbeEnforcer([m for m, _ in probes]),
                    iot_enforcer=iot_probes[0] if iot_probes else None)
    for probe in iot_probes[1:]:
        simulate(scenario, seed=seed, progress=False, iot_enforcer=probe)
    if not base.ok:
        return base, []
    base.usage.pop("enforcement", None)    # the probes only watched: their reports are not part of this usage
    outcomes = []
    for plan, (m_probe, i_probe) in zip(plans, probes, strict=True):
        result, own, binds = base, False, _binds(m_probe, i_probe)
        if binds and (own_runs == "binding" or charges_anything(plan)):
            result = simulate(scenario, seed=seed, progress=progress, enforcer=mobile_enforcer(plan, scenario, False),
                              iot_enforcer=iot_enforcer(plan, scenario, False))
            own = True
            if not result.ok:
                return result, outcomes
        usage = result.usage
        priced = usage_from_dict(usage, f"<simulated usage under {plan.name}>")
        bill = price(priced, plan)
        counts = usage.get("counts", {})
        delivered = counts.get("delivered", 0)
        payload = usage.get("breakdown", {}).get("outbound", {}).get("payload", 0)
        mau = mau_of(usage)
        q = quote(plan, mau=mau, messages=int(delivered), size=payload / delivered if delivered else 0.0,
                  period=priced.period)
        outcomes.append(PlanOutcome(plan=plan.name, bill=bill, quote=q, usage=usage, enforced=own,
                                    enforcement=_flat_enforcement(usage, bill), extra=storm_extra(usage, base.usage),
                                    binds=binds))
    return base, outcomes


def charges_anything(plan) -> bool:
    """Whether a plan's bill can be more than nothing (:attr:`sim.pricing.plan.Plan.charges_anything`)."""
    return plan.charges_anything


def meter_values(meter) -> np.ndarray:
    """A usage meter's values: a series' values, a number as one value, nothing when absent."""
    if isinstance(meter, dict):
        return np.asarray(meter.get("values") or [], dtype=float)
    return np.zeros(0) if meter is None else np.asarray([meter], dtype=float)


def meter_peak(meter) -> float:
    """The largest value of a usage meter (a series' maximum, a number as it is), 0 when absent."""
    v = meter_values(meter)
    return float(v.max()) if v.size else 0.0


def mau_of(usage: dict) -> int:
    """MAU of a usage document: a number, or the sum of first-seen counts (how the simulator writes it)."""
    v = usage.get("meters", {}).get("mau", 0)
    return int(sum(v["values"])) if isinstance(v, dict) else int(v)
