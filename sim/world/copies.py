"""Recipient copies and their outcomes: the unit of delivery, storage and conservation in both engines.

Every originated message becomes one *copy* per recipient (receipts are copies too). A copy ends
delivered at once, delivered from the store, expired at its TTL, dropped (store flag off), discarded
(a storage cap) or still pending; :class:`sim.world.message_meter.MessageMeter` counts and meters
them whichever engine decided them. Also here: the delivery-latency histogram both engines report.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from sim.world.timeline import KEY

MSG, DELIVERY_RECEIPT, READ_RECEIPT = 0, 1, 2

# outcomes of a routing pass (DISCARDED is set by the world when a storage cap refuses a store)
DELIVERED_NOW, DELIVERED_LATER, DROPPED, EXPIRED, PENDING, DISCARDED = 0, 1, 2, 3, 4, 5


@dataclass
class Copies:
    """One row per recipient copy (messages and receipts)."""

    recipient: np.ndarray  # int64
    sender: np.ndarray  # int64
    t: np.ndarray  # int64 ms: sent (= stored) time
    size: np.ndarray  # int64 payload bytes
    kind: np.ndarray  # int8: MSG / DELIVERY_RECEIPT / READ_RECEIPT
    store: np.ndarray  # bool: store flag (False: drop if offline)
    new: np.ndarray  # bool: first routing (not yet counted as sent)

    def __len__(self) -> int:
        return int(self.t.size)

    def take(self, idx) -> Copies:
        return Copies(*(getattr(self, f.name)[idx] for f in fields(self)))

    def sorted(self) -> Copies:
        """Sorted by (recipient, time): what timeline queries and push throttling want."""
        key = self.recipient * KEY + self.t
        if key.size < 2 or bool(np.all(key[1:] >= key[:-1])):
            return self
        return self.take(np.argsort(key, kind="stable"))

    @staticmethod
    def concat(parts: list[Copies]) -> Copies:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Copies.empty()
        return Copies(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Copies)))

    @staticmethod
    def empty() -> Copies:
        z = np.zeros(0, dtype=np.int64)
        return Copies(z, z, z, z, np.zeros(0, np.int8), np.zeros(0, bool), np.zeros(0, bool))


@dataclass
class Routed:
    outcome: np.ndarray  # int8 per copy
    when: np.ndarray  # int64 ms: delivery / drop / expiry time (NEVER if pending)
    offline: np.ndarray  # bool: recipient offline at send time


#: Delivery-latency histogram (delivery time - send time of delivered message copies): upper bucket
#: edges in seconds, log-spaced; bucket ``latency_le_<name>`` counts delays in (previous edge, edge],
#: ``latency_le_0s`` those delivered at once, ``latency_gt_1d`` the rest.
LATENCY_EDGES_S = (0, 1, 10, 60, 600, 3600, 21600, 86400)
LATENCY_NAMES = ("0s", "1s", "10s", "1min", "10min", "1h", "6h", "1d")
LATENCY_KEYS = tuple(f"latency_le_{x}" for x in LATENCY_NAMES) + ("latency_gt_1d",)


def latency_histogram(delay_ms: np.ndarray) -> np.ndarray:
    """Counts per :data:`LATENCY_KEYS` bucket."""
    edges = np.asarray(LATENCY_EDGES_S, dtype=np.int64) * 1000
    return np.bincount(np.searchsorted(edges, delay_ms, side="left"), minlength=len(LATENCY_KEYS))


def latency_quantiles(counts: dict, qs=(0.5, 0.9)) -> dict[float, float]:
    """Quantiles (s) of the delivery latency from a run's ``counts``.

    Log-linear inside a bucket ((0, 1 s] linear; the open last bucket reads as 1 d): a bucket is a
    decade or less wide, so the answer is within its bucket whatever the shape inside.
    """
    n = np.array([counts.get(k, 0) for k in LATENCY_KEYS], dtype=np.float64)
    tot = n.sum()
    out = {}
    if tot == 0:
        return {q: float("nan") for q in qs}
    cum = np.cumsum(n) / tot
    edges = np.array(LATENCY_EDGES_S + (LATENCY_EDGES_S[-1],), dtype=np.float64)
    for q in qs:
        b = int(np.searchsorted(cum, q, side="left"))
        if b == 0:
            out[q] = 0.0
            continue
        lo, hi = edges[b - 1], edges[b]
        f = (q - cum[b - 1]) / max(cum[b] - cum[b - 1], 1e-300)
        out[q] = float(lo + f * (hi - lo) if lo == 0 else lo * (hi / lo) ** f)
    return out
