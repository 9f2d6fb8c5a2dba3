"""PNG plots of a run (matplotlib, Agg backend: works headless and in CI).

Three pictures answer the questions a pricing analyst asks first:

* ``connections.png``: how many connections are up: the chat app's (concurrency drives the 10 x CCU rule) and
  the IoT fleet's (``iot_connections``), each on its own line;
* ``outbound_bytes.png``: what is billed. Top: the billed outbound categories stacked per hour (they make up
  the ``outbound_bytes`` meter), TURN media on its own line (it is its own meter, ``turn_bytes``), TCP/IP
  overhead as a dashed line (reported, never billed, so never stacked on billed bytes). Bottom: the same two
  meters cumulated over the period, with each plan's included quantity (or free limit) as a horizontal line:
  a period is billed as one month, so the monthly quota is what the whole period's total is compared with;
* ``stored_bytes.png``: what is stored: stored chat messages and the IoT fleet's device buffers, stacked (their
  sum is the ``stored_bytes`` meter), with each plan's included storage (or limit) as a line.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sim.meters import BILLED_OUTBOUND  # noqa: E402

#: The byte meters the plots draw, and what they are called on them.
PLOTTED_METERS = {"outbound_bytes": "billed outbound", "turn_bytes": "TURN", "stored_bytes": "storage"}


@dataclass(frozen=True)
class Quota:
    """A plan's included quantity (or free limit) of a byte meter, in bytes, for the whole billed period."""

    plan: str
    meter: str                 # outbound_bytes | turn_bytes | stored_bytes
    bytes: float
    kind: str                  # "included" | "limit"
    aggregation: str           # how the plan aggregates the meter (sum, avg, daily_avg, max)

    def label(self, scale: float, unit: str) -> str:
        what = "included" if self.kind == "included" else "free limit"
        per = ("for the whole period (billed as one month)" if self.aggregation == "sum"
               else f"(compared with the period's {self.aggregation})")
        return f"{self.plan}: {self.bytes / scale:g} {unit} {PLOTTED_METERS[self.meter]} {what} {per}"


def _byte_quota(plan, metric_name: str, amount: Decimal) -> tuple[str, float, str] | None:
    """(meter, bytes, aggregation) of a plan's quantity of ``metric_name``, when it is a plotted byte meter."""
    from sim.pricing.plan import UNITS

    metric = plan.metrics[metric_name]
    dim, factor = UNITS.get(metric.unit, (None, Decimal(0)))
    if metric.meter not in PLOTTED_METERS or dim != "bytes":
        return None
    return metric.meter, float(amount * factor), metric.aggregation


def quotas_of(plans) -> list[Quota]:
    """The included quantities and free limits of ``plans`` (Plan objects, shipped names or plan files) on the
    byte meters the plots draw. A quota in GB is converted to bytes (GB = 10^9 bytes)."""
    from sim.pricing.plan import load_plan

    out: list[Quota] = []
    for plan in plans:
        plan = load_plan(plan) if isinstance(plan, str | Path) else plan
        for charge in plan.charges:
            hit = _byte_quota(plan, charge.metric, charge.included) if charge.included > 0 else None
            if hit:
                out.append(Quota(plan.name, hit[0], hit[1], "included", hit[2]))
        for lim in plan.limits:
            hit = _byte_quota(plan, lim.metric, lim.max) if lim.max is not None else None
            if hit:
                out.append(Quota(plan.name, hit[0], hit[1], "limit", hit[2]))
    return out


def _col(frame: pd.DataFrame, name: str) -> pd.Series | None:
    return frame[name] if name in frame and frame[name].any() else None


def _scale(peak: float) -> tuple[float, str]:
    if peak >= 1e9:
        return 1e9, "GB"
    return (1e6, "MB") if peak >= 1e6 else (1e3, "KB")


#: A quota further above the data than this is not drawn to scale (it would flatten the data to a line at
#: zero): it is named in a note on the panel instead, with how much of it the period used.
OFF_SCALE = 4.0


def _fit_quotas(ax, quotas: list[Quota], peaks: dict[str, float], styles=("-.", ":")) -> float:
    """Draw the quotas near the data as lines and name the others in a note; set the y range; return the scale
    (bytes per axis unit), chosen from what is drawn. ``peaks``: each meter's largest value on this panel."""
    data_peak = max(list(peaks.values()) + [0.0])
    near = [q for q in quotas if not data_peak or q.bytes <= OFF_SCALE * data_peak]
    far = [q for q in quotas if q not in near]
    top = max([data_peak] + [q.bytes for q in near] + [0.0])
    scale, unit = _scale(top)
    for i, q in enumerate(near):
        ax.axhline(q.bytes / scale, lw=1.0, ls=styles[i % len(styles)], color=f"C{(i + 5) % 10}",
                   label=q.label(scale, unit))
    for q in far:    # a legend entry without a line: the quota is named, not drawn
        fscale, funit = _scale(q.bytes)
        ax.plot([], [], ls="none", label=f"off the scale: {q.label(fscale, funit)}; this run reached "
                                         f"{peaks.get(q.meter, 0.0) / q.bytes:.2%} of it")
    entries = len(quotas) + 2                   # room above the data for the legend (quotas + the data lines)
    ax.set_ylim(0, (1.2 + 0.12 * entries) * top / scale if top else 1)
    return scale


def write_plots(frame: pd.DataFrame, out_dir: str | Path, title: str = "", plans=()) -> list[Path]:
    """Write connections.png, outbound_bytes.png and stored_bytes.png; return their paths.

    ``plans`` (Plan objects, names or files) draw their included quotas and free limits.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    quotas = quotas_of(plans)
    return [_connections(frame, out, title), _outbound(frame, out, title, quotas), _stored(frame, out, title, quotas)]


def _save(fig, path: Path) -> Path:
    fig.autofmt_xdate()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _connections(frame: pd.DataFrame, out: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(10, 4))
    app_max, app, iot = _col(frame, "ccu_max"), _col(frame, "ccu"), _col(frame, "iot_connections")
    if app_max is not None:
        ax.plot(frame.index, app_max, lw=0.6, label="app: max per minute")
    if app is not None:
        ax.plot(frame.index, app.rolling(60, min_periods=1).mean(), lw=1.2, label="app: hourly mean")
    if iot is not None:
        ax.plot(frame.index, iot, lw=1.0, label="IoT devices connected")
    if iot is not None and app_max is not None:
        ax.plot(frame.index, app_max + iot, lw=0.6, ls="--", color="black", label="all (the peak_ccu meter)")
    tops = [float(s.max()) for s in (app_max, app, iot) if s is not None]
    if iot is not None and app_max is not None:
        tops.append(float((app_max + iot).max()))
    if not tops:
        ax.text(0.5, 0.5, "no connections in this run", transform=ax.transAxes, ha="center")
    ax.set_ylim(0, 1.15 * max(tops + [1.0]))
    ax.set_ylabel("concurrent connections")
    ax.set_title(f"{title} concurrent connections".strip())
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    return _save(fig, out / "connections.png")


def _outbound(frame: pd.DataFrame, out: Path, title: str, quotas: list[Quota]) -> Path:
    billed = [c for c in BILLED_OUTBOUND if _col(frame, f"out_{c}_bytes") is not None]
    turn, tcpip = _col(frame, "out_turn_media_bytes"), _col(frame, "out_tcpip_bytes")
    if turn is not None:    # TURN is its own meter: its own panel, never stacked with outbound_bytes
        fig, (ax, tax, cum) = plt.subplots(3, 1, figsize=(10, 9), sharex=True, height_ratios=[3, 2, 2])
    else:
        fig, (ax, cum) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, height_ratios=[3, 2])
    hourly = frame[[f"out_{c}_bytes" for c in billed]].resample("1h").sum() / 1e6 if billed else None
    if hourly is not None:
        ax.stackplot(hourly.index, *(hourly[f"out_{c}_bytes"] for c in billed), labels=billed)
    else:
        ax.text(0.5, 0.5, "no billed outbound bytes in this run", transform=ax.transAxes, ha="center")
    if tcpip is not None:
        h = tcpip.resample("1h").sum() / 1e6
        ax.plot(h.index, h, color="grey", lw=1.0, ls="--", label="tcpip (not billed, not stacked)")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("MB per hour")
    ax.set_title(f"{title} billed outbound bytes (server -> client): the outbound_bytes meter by category, "
                 "stacked".strip(), fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=7, ncol=2)
    if turn is not None:
        h = turn.resample("1h").sum() / 1e6
        tax.fill_between(h.index, h, step=None, color="black", alpha=0.25)
        tax.plot(h.index, h, color="black", lw=1.0, label="turn_media")
        tax.set_ylim(bottom=0)
        tax.set_ylabel("MB per hour")
        tax.set_title("TURN relayed media: its own meter (turn_bytes), billed apart", fontsize=9)

    billed_total = frame[[f"out_{c}_bytes" for c in billed]].sum(axis=1).cumsum() if billed else None
    turn_total = turn.cumsum() if turn is not None else None
    peaks = {m: float(t.iloc[-1]) for m, t in (("outbound_bytes", billed_total), ("turn_bytes", turn_total))
             if t is not None}
    scale = _fit_quotas(cum, [q for q in quotas if q.meter in ("outbound_bytes", "turn_bytes")], peaks)
    unit = _scale(scale)[1]
    if billed_total is not None:
        cum.plot(frame.index, billed_total / scale, color="C0", lw=1.5, label="billed outbound so far (outbound_bytes)")
    if turn_total is not None:
        cum.plot(frame.index, turn_total / scale, color="black", lw=1.2, label="TURN so far (turn_bytes)")
    cum.set_ylabel(f"{unit} since the period's start")
    cum.set_title("cumulative over the billed period, against each plan's included quantity or free limit",
                  fontsize=9)
    if cum.get_legend_handles_labels()[0]:
        cum.legend(loc="upper left", fontsize=7)
    return _save(fig, out / "outbound_bytes.png")


def _stored(frame: pd.DataFrame, out: Path, title: str, quotas: list[Quota]) -> Path:
    app, iot = _col(frame, "stored_bytes"), _col(frame, "iot_stored_bytes")
    series = [(v, label) for v, label in ((app, "chat messages stored for offline users"),
                                          (iot, "IoT device buffers")) if v is not None]
    data_peak = float(sum(v for v, _ in series).max()) if series else 0.0
    fig, ax = plt.subplots(figsize=(10, 4))
    scale = _fit_quotas(ax, [q for q in quotas if q.meter == "stored_bytes"], {"stored_bytes": data_peak})
    unit = _scale(scale)[1]
    if series:
        ax.stackplot(frame.index, *(v / scale for v, _ in series), labels=[label for _, label in series])
    else:
        ax.text(0.5, 0.5, "nothing stored in this run", transform=ax.transAxes, ha="center")
    ax.set_ylabel(f"stored {unit}")
    ax.set_title(f"{title} stored bytes (the stored_bytes meter{', stacked' if len(series) > 1 else ''})".strip())
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=7)
    return _save(fig, out / "stored_bytes.png")
