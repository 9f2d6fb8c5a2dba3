"""PNG plots of a run (matplotlib, Agg backend: works headless and in CI).

Three pictures answer the questions a pricing analyst asks first: how many connections are up
(concurrency drives the 10 x CCU rule), what the outbound bytes are made of (payload vs overheads,
stacked by category), and how much is stored (the storage meter).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sim.meters import BILLED_OUTBOUND  # noqa: E402


def _hourly(frame: pd.DataFrame, cols: list[str], how: str) -> pd.DataFrame:
    data = frame[cols]
    return data.resample("1h").max() if how == "max" else data.resample("1h").sum()


def write_plots(frame: pd.DataFrame, out_dir: str | Path, title: str = "") -> list[Path]:
    """Write connections.png, outbound_bytes.png and stored_bytes.png; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(10, 4))
    if "ccu_max" in frame:
        ax.plot(frame.index, frame["ccu_max"], lw=0.6, label="max per minute")
    if "ccu" in frame:
        ax.plot(frame.index, frame["ccu"].rolling(60, min_periods=1).mean(), lw=1.2, label="hourly mean")
    ax.set_ylabel("concurrent connections")
    ax.set_title(f"{title} concurrent connections".strip())
    ax.legend(loc="upper right")
    fig.autofmt_xdate()
    paths.append(out / "connections.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    cols = [f"out_{c}_bytes" for c in (*BILLED_OUTBOUND, "tcpip") if f"out_{c}_bytes" in frame]
    hourly = _hourly(frame, cols, "sum") / 1e6
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.stackplot(hourly.index, *(hourly[c] for c in cols),
                 labels=[c.removeprefix("out_").removesuffix("_bytes") + (" (not billed)" if "tcpip" in c else "")
                         for c in cols])
    ax.set_ylabel("MB per hour (server -> client)")
    ax.set_title(f"{title} outbound bytes by category".strip())
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    fig.autofmt_xdate()
    paths.append(out / "outbound_bytes.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    if "stored_bytes" in frame:
        ax.plot(frame.index, frame["stored_bytes"] / 1e6, lw=0.8)
    ax.set_ylabel("stored MB")
    ax.set_title(f"{title} stored messages".strip())
    fig.autofmt_xdate()
    paths.append(out / "stored_bytes.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths
