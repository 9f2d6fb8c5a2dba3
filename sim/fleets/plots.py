"""Pictures of a fleet: the CDF of bills, the share of apps within each free limit, the fleet's load over a day.

Why these three: a capacity planner tuning a free tier asks how the bills spread (most apps pay nothing, a few
pay most), which free limit apps hit first (the binding one is the one to tune), and when in the day the
servers are busiest and who (free or paying apps) makes them so. Matplotlib's Agg backend; each function
returns the figure's path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bills_cdf(apps, fleet, path: str | Path) -> Path:
    """Empirical CDF of each plan's bill over the apps priced under it (a symmetric-log x axis: zero bills
    show at 0, the tail on a log scale)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    top = 1.0
    for p in fleet.plans:
        col = f"total.{p.name}"
        v = np.sort(apps[col].dropna().to_numpy(dtype=float)) if col in apps else np.zeros(0)
        if not v.size:
            continue
        top = max(top, float(v[-1]))
        y = np.arange(1, v.size + 1) / v.size
        ax.step(np.r_[v[0], v], np.r_[0.0, y], where="post", lw=1.5,
                label=f"{p.name} ({v.size} apps, {np.mean(v == 0):.0%} pay 0)")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=-0.3, right=top * 1.5)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"bill for the period ({fleet.plans[0].currency if fleet.plans else ''})")
    ax.set_ylabel("share of apps with a bill <= x")
    ax.set_title(f"{fleet.name}: bills across {len(apps)} apps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def free_limits(apps, fleet, path: str | Path) -> Path:
    """For each plan with limits: the share of the apps priced under it within each limit (use <= 1), and
    within all of them (the plan's free share)."""
    plt = _plt()
    bars: list[tuple[str, float, int]] = []
    for p in fleet.plans:
        if not p.limits:
            continue
        priced = apps[f"free.{p.name}"].notna() if f"free.{p.name}" in apps else apps["app"] < 0
        n = int(priced.sum())
        if not n:
            continue
        for m in dict.fromkeys(lim.metric for lim in p.limits):
            use = apps.loc[priced, f"use.{p.name}.{m}"].to_numpy(dtype=float)
            bars.append((f"{p.name}: {m}", float(np.mean(use <= 1.0)), n))
        bars.append((f"{p.name}: all limits", float((apps.loc[priced, f"free.{p.name}"] == True).mean()), n))  # noqa: E712
    fig, ax = plt.subplots(figsize=(7.5, max(2.5, 0.32 * len(bars) + 1.2)))
    if bars:
        y = np.arange(len(bars))[::-1]
        colors = ["tab:green" if lab.endswith("all limits") else "tab:blue" for lab, _, _ in bars]
        ax.barh(y, [b[1] for b in bars], color=colors)
        ax.set_yticks(y, [f"{lab} (n={n})" for lab, _, n in bars], fontsize=8)
        for yi, (_, share, _) in zip(y, bars, strict=True):
            ax.text(min(share, 0.98), yi, f" {share:.0%}", va="center", ha="left" if share < 0.9 else "right",
                    fontsize=8)
    else:
        ax.text(0.5, 0.5, "no plan with limits", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of apps within the limit")
    ax.set_title(f"{fleet.name}: apps within each free limit")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def load_day(load, path: str | Path, title: str = "") -> Path:
    """The fleet's load by minute of the UTC day: the mean day stacked free + paying, and the busiest day's total
    (dashed), for concurrency, messages per second and egress."""
    plt = _plt()
    n = len(load)
    days = max(1, n // 1440)
    minutes = np.arange(min(n, 1440)) / 60.0
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    for ax, (col, label, scale) in zip(axes, (("ccu", "concurrent connections", 1.0),
                                              ("messages_per_s", "messages per second", 1.0),
                                              ("egress_bytes_per_s", "egress, Mbit/s", 8 / 1e6)), strict=True):
        free, paying, total = (_days(load[c], days, scale) for c in (f"{col}_free", f"{col}_paying", col))
        ax.stackplot(minutes, free.mean(axis=0), paying.mean(axis=0), labels=["free apps (mean day)",
                                                                             "paying apps (mean day)"],
                     colors=["tab:green", "tab:blue"], alpha=0.6)
        busiest = int(total.max(axis=1).argmax())
        ax.plot(minutes, total[busiest], "k--", lw=0.8, label=f"all apps, busiest day (day {busiest + 1})")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    axes[-1].set_xlabel("hour of the day (UTC)")
    axes[-1].set_xticks(range(0, 25, 3))
    fig.suptitle(f"{title}: fleet load over a day" if title else "fleet load over a day")
    fig.tight_layout()
    return _save(fig, path)


def _days(col, days: int, scale: float) -> np.ndarray:
    """A per-minute column as days x minutes of the day (a period shorter than a day: one partial day)."""
    v = col.to_numpy(dtype=float) * scale
    return v[: days * 1440].reshape(days, -1) if v.size >= 1440 else v.reshape(1, -1)


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
