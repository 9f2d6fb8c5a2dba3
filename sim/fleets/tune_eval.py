"""Evaluating candidates: which apps are free under each one and every figure of the free tier, vectorised
over candidates x apps with numpy (see :mod:`sim.fleets.tune_problem` for why the one fleet run is enough).

**Free under a candidate.** An app is free iff every limit holds on its measured quantities: ``q <= max`` for
a ``max`` limit (the quantity after the plan's ``at_least`` derivation, as the pricing engine compares it),
``q <= fraction x other`` for a ``max_fraction_of`` limit (the other metric's measured, not derived,
quantity, as :func:`sim.pricing.pricing._violations` does). Limits that are not variables keep the plan's
values. Evaluation is vectorised over candidates x apps with numpy; candidates with the same set of free apps
share every figure, so each distinct free set is evaluated once.

**The free tier's cost** of a candidate, for the fleet's simulated period (billed as one month, README "Billing
period"): the sum over free apps of ``outbound_gb x per_gb_egress + stored_gb x per_gb_month_stored +
connection_hours x per_connection_hour``, plus ``servers x per_server_month``, where ``servers = max(ceil(peak
over 15-minute bins of the free apps' summed CCU / connections_per_server), ceil(sum of the free apps' peak
messages per second / messages_per_second_per_server))``. The CCU peak is exact on ``app_ccu.npy`` (the free
indicator matrix times the apps x bins matrix); the message term sums per-app peaks, an upper bound of the
coincident peak (the apps table keeps no per-bin message rate). Costs are floats during the search (the
chosen point's exact money: :mod:`sim.fleets.tune_report`).

**Requirements and their intervals.** The fleet's apps are a random sample of the apps its distributions
describe, so a requirement on "the share of apps that run free" is a statement about that population:

* ``free_share``: ``k`` of the archetype's ``n`` apps are free; the point estimate is ``k / n`` and the
  requirement holds when the one-sided Clopper-Pearson lower bound at ``confidence`` (``beta.ppf(1 - c, k,
  n - k + 1)``) is at least ``at_least``. ``ci_high`` reports the one-sided upper bound at the same level.
* ``free_cost``: a bootstrap over apps (``search.bootstrap`` resamples, 2,000 by default, weights seeded from
  ``search.seed``): each resample's cost is its free apps' summed per-app costs plus the servers for its
  free CCU in the candidate's peak bin (the bin held where the point estimate peaks) and its summed message
  peaks. The requirement holds when the point value and the percentile upper bound at ``confidence`` are both
  at most ``at_most``; ``ci_low`` is the percentile at ``1 - confidence``.
* ``servers``: the point value, at most ``at_most``.

**Pessimistic and optimistic share.** Apps simulated on a sample of their users have MAU and peak CCU known
within a sampling CI (``mau_ci_low/high``, ``peak_ccu_ci_low/high``). The share is re-counted with every
sampled app's quantities at the CI bound that makes it least likely to be free (MAU and CCU at their highs,
the MAU a CCU fraction refers to at its low: *pessimistic*) and most likely (*optimistic*). It is not a
confidence interval: it bounds how far the sampling error of the sampled apps could move the share if every
one of them erred the same way at once, which is an extreme case; a requirement whose decision does not
change between the two is robust to the sampling.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from sim.fleets.tune_problem import LimitSpec, Problem

#: Candidates evaluated per chunk (memory: chunk x apps bits, and one chunk x apps booleans per variable value).
CHUNK = 32_768

#: Free sets per bootstrap matrix product.
BOOT_CHUNK = 128


def free_packed(p: Problem, values: np.ndarray, which: str = "point") -> np.ndarray:
    """Candidates (rows of ``values``, one column per variable) x apps, bit-packed (``np.packbits`` rows): set
    where the app is free. ``which``: "point", or "pessimistic" / "optimistic" (sampled apps' MAU and CCU at
    their CI bounds).

    Each limit is compared once per distinct value of its variable (a grid has few per axis), packed, and the
    candidates' rows are the AND of their values' rows: a 30 x 30 x 30 grid over 1,000 apps is 27,000 x 125
    bytes of ANDs, not 27,000 x 1,000 x 5 comparisons."""
    qw, bw = {"point": ("point", "point"), "pessimistic": ("high", "low"), "optimistic": ("low", "high")}[which]
    values = np.asarray(values, dtype=np.float64).reshape(-1, len(p.names))

    def holds(s: LimitSpec, thr: np.ndarray) -> np.ndarray:
        q = s.qty[qw]
        if s.kind == "max":
            return q[None, :] <= thr[:, None]
        return q[None, :] <= thr[:, None] * s.base[bw][None, :]

    fixed = np.ones((1, p.n), dtype=bool)
    for s in p.limits:
        if s.var is None:
            fixed &= holds(s, np.array([s.fixed]))
    out = np.repeat(np.packbits(fixed, axis=1), len(values), axis=0)
    for v in range(len(p.names)):
        uniq, inv = np.unique(values[:, v], return_inverse=True)
        mask = np.ones((len(uniq), p.n), dtype=bool)
        for s in p.limits:
            if s.var == v:
                mask &= holds(s, uniq)
        out &= np.packbits(mask, axis=1)[inv.reshape(-1)]
    return out


def free_matrix(p: Problem, values: np.ndarray, which: str = "point") -> np.ndarray:
    """Candidates x apps booleans: True where the app is free (see :func:`free_packed`)."""
    return np.unpackbits(free_packed(p, values, which), axis=1, count=p.n).astype(bool)


def unique_rows(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, inverse) of a uint8 matrix: rows hashed to 64 bits, then checked (a collision falls back
    to numpy's exact row sort, which is 10x slower on wide rows)."""
    if len(packed) == 0:
        return packed, np.zeros(0, dtype=np.int64)
    width = -(-packed.shape[1] // 8) * 8
    words = np.zeros((len(packed), width), dtype=np.uint8)
    words[:, :packed.shape[1]] = packed
    words = words.view(np.uint64)
    mult = np.random.default_rng(12345).integers(1, 2**63, size=words.shape[1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        h = (words * mult[None, :]).sum(axis=1, dtype=np.uint64)
        h ^= (words ^ (words >> np.uint64(29))).sum(axis=1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if not np.array_equal(words, words[first][inverse]):
        uniq, inverse = np.unique(packed, axis=0, return_inverse=True)
        return uniq, inverse.reshape(-1)
    return packed[first], inverse


class SetCache:
    """Figures of each distinct set of free apps, computed once (many candidates share a set)."""

    def __init__(self, p: Problem) -> None:
        self.p = p
        self.index: dict[bytes, int] = {}
        self.packed: list[np.ndarray] = []
        cols = [np.eye(len(p.arch_list))[p.arch_of], p.app_cost[:, None], p.mps[:, None], p.paid_total[:, None]]
        self.lin = np.hstack(cols)       # apps x (archetypes + 3)
        self.stats: list[np.ndarray] = []   # per chunk of new sets: rows of lin sums
        self.peak: list[np.ndarray] = []
        self.peak_bin: list[np.ndarray] = []
        self.boot: dict[int, np.ndarray] = {}   # set id -> bootstrap costs
        self._weights: np.ndarray | None = None
        self._flat: tuple | None = None

    def ids(self, packed: np.ndarray) -> np.ndarray:
        """Set ids of the rows of a packed free matrix, computing the figures of sets not seen before."""
        uniq, inverse = unique_rows(packed)
        local = np.empty(len(uniq), dtype=np.int64)
        new = []
        for i, row in enumerate(uniq):
            k = row.tobytes()
            sid = self.index.get(k)
            if sid is None:
                sid = len(self.index)
                self.index[k] = sid
                self.packed.append(row)
                new.append(row)
            local[i] = sid
        if new:
            self._compute(np.array(new))
        return local[inverse.reshape(-1)]

    def _compute(self, packed: np.ndarray) -> None:
        p = self.p
        f = np.unpackbits(packed, axis=1, count=p.n).astype(np.float64)
        self.stats.append(f @ self.lin)
        peaks = np.zeros(len(f))
        bins = np.zeros(len(f), dtype=np.int64)
        if p.ccu.shape[1]:
            f32 = f.astype(np.float32)
            for a in range(0, len(f), 256):
                load = f32[a:a + 256] @ p.ccu
                bins[a:a + 256] = load.argmax(axis=1)
                peaks[a:a + 256] = load.max(axis=1)
        self.peak.append(peaks)
        self.peak_bin.append(bins)
        self._flat = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._flat is None:
            self._flat = (np.vstack(self.stats), np.concatenate(self.peak), np.concatenate(self.peak_bin))
        return self._flat

    def free_of(self, sid: int) -> np.ndarray:
        return np.unpackbits(self.packed[sid], count=self.p.n).astype(bool)

    # bootstrap of the free tier's cost
    def weights(self) -> np.ndarray:
        if self._weights is None:
            from sim.rng import Streams

            rng = Streams(self.p.tune.search.seed).generator("tune", "bootstrap")
            n = self.p.n
            self._weights = rng.multinomial(n, np.full(n, 1.0 / n), size=self.p.tune.search.bootstrap).astype(np.float64)
        return self._weights

    def bootstrap(self, sids: np.ndarray) -> None:
        """Bootstrap costs (resamples) of the sets ``sids`` not yet done."""
        todo = [int(s) for s in dict.fromkeys(sids.tolist()) if int(s) not in self.boot]
        if not todo:
            return
        p = self.p
        w = self.weights()
        _, _, pbin = self.arrays()
        for a in range(0, len(todo), BOOT_CHUNK):
            chunk = todo[a:a + BOOT_CHUNK]
            f = np.unpackbits(np.array([self.packed[s] for s in chunk]), axis=1, count=p.n).astype(np.float64)
            ccu_at = p.ccu[:, pbin[chunk]].T.astype(np.float64) if p.ccu.shape[1] else np.zeros_like(f)
            x = np.hstack([(f * p.app_cost).T, (f * ccu_at).T, (f * p.mps).T])     # apps x 3m
            r = w @ x
            m = len(chunk)
            cost = r[:, :m] + _servers(p, r[:, m:2 * m], r[:, 2 * m:]) * float(p.prices["servers"])
            for j, s in enumerate(chunk):
                self.boot[s] = cost[:, j]


def _servers(p: Problem, ccu_peak: np.ndarray, mps_sum: np.ndarray) -> np.ndarray:
    out = np.zeros(np.shape(ccu_peak))
    if p.cps is not None:
        out = np.maximum(out, np.ceil(np.asarray(ccu_peak) / p.cps - 1e-9))
    if p.mpss is not None:
        out = np.maximum(out, np.ceil(np.asarray(mps_sum) / p.mpss - 1e-9))
    return np.maximum(out, 0.0)


@dataclass
class Evaluation:
    """Figures of every evaluated candidate (arrays, one entry per candidate)."""

    values: np.ndarray             # candidates x variables
    sid: np.ndarray
    free: np.ndarray               # apps free (count)
    share: np.ndarray
    share_arch: np.ndarray         # candidates x archetypes (NaN where the archetype has no app)
    var_cost: np.ndarray
    servers: np.ndarray
    cost: np.ndarray
    revenue: np.ndarray
    req_value: list[np.ndarray]
    req_low: list[np.ndarray]
    req_high: list[np.ndarray]
    req_met: list[np.ndarray]
    feasible: np.ndarray
    seconds: float = 0.0


def evaluate(p: Problem, values: np.ndarray, progress: bool = False) -> Evaluation:
    """Every figure of every candidate, vectorised; free-cost bootstraps for the sets that could meet it."""
    import scipy.stats  # noqa: F401 (imported before the clock starts: a second on a cold start)

    t0 = time.perf_counter()
    values = np.asarray(values, dtype=np.float64).reshape(-1, len(p.names))
    sid = np.empty(len(values), dtype=np.int64)
    chunks = range(0, len(values), CHUNK)
    if progress and len(values) > 20 * CHUNK:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="candidates", unit="chunk", leave=False)
    for a in chunks:
        sid[a:a + CHUNK] = p.sets.ids(free_packed(p, values[a:a + CHUNK]))
    stats, peak, _ = p.sets.arrays()
    s = stats[sid]
    na = len(p.arch_list)
    counts = s[:, :na]
    n_arch = np.bincount(p.arch_of, minlength=na).astype(np.float64)
    free = counts.sum(axis=1)
    share = free / p.n
    share_arch = counts / np.where(n_arch > 0, n_arch, np.nan)
    var_cost, mps_sum, paid_free = s[:, na], s[:, na + 1], s[:, na + 2]
    servers = _servers(p, peak[sid], mps_sum)
    cost = var_cost + servers * float(p.prices["servers"])
    revenue = float(p.paid_total.sum()) - paid_free

    req_value, req_low, req_high, req_met = [], [], [], []
    n_c = len(values)
    for r in p.tune.requirements:
        b = r.body
        if r.kind == "free_share":
            if b.archetype == "all":
                k, n = free, p.n
            else:
                j = p.arch_list.index(b.archetype)
                k, n = counts[:, j], int(n_arch[j])
            lo, hi = clopper_pearson(np.rint(k).astype(np.int64), n, b.confidence)
            val = k / n if n else np.zeros(n_c)
            req_value.append(val)
            req_low.append(lo)
            req_high.append(hi)
            req_met.append(lo >= b.at_least - 1e-12)
        elif r.kind == "servers":
            req_value.append(servers)
            req_low.append(np.full(n_c, np.nan))
            req_high.append(np.full(n_c, np.nan))
            req_met.append(servers <= b.at_most)
        else:
            req_value.append(cost)
            req_low.append(np.full(n_c, np.nan))
            req_high.append(np.full(n_c, np.nan))
            req_met.append(np.zeros(n_c, dtype=bool))
    # the free-cost bootstrap: only for sets that meet everything else and whose point cost is within budget
    others = np.ones(n_c, dtype=bool)
    for r, met in zip(p.tune.requirements, req_met, strict=True):
        if r.kind != "free_cost":
            others &= met
    for i, r in enumerate(p.tune.requirements):
        if r.kind != "free_cost":
            continue
        budget = float(r.body.at_most)
        cand = others & (cost <= budget + 1e-9)
        p.sets.bootstrap(sid[cand])
        lo = np.full(n_c, np.nan)
        hi = np.full(n_c, np.nan)
        c = r.body.confidence
        idx = np.flatnonzero(cand)
        if idx.size:
            uniq, inv = np.unique(sid[idx], return_inverse=True)
            boots = np.vstack([p.sets.boot[int(u)] for u in uniq])
            qlo, qhi = np.quantile(boots, [1 - c, c], axis=1)
            lo[idx], hi[idx] = qlo[inv], qhi[inv]
        req_low[i], req_high[i] = lo, hi
        req_met[i] = cand & (hi <= budget + 1e-9)
    feasible = np.ones(n_c, dtype=bool)
    for met in req_met:
        feasible &= met
    return Evaluation(values, sid, free, share, share_arch, var_cost, servers, cost, revenue, req_value, req_low,
                      req_high, req_met, feasible, time.perf_counter() - t0)


def clopper_pearson(k: np.ndarray, n: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Clopper-Pearson bounds at ``confidence`` for ``k`` successes of ``n``: (lower, upper)."""
    from scipy.stats import beta

    k = np.asarray(k)
    if n <= 0:
        return np.zeros(k.shape), np.ones(k.shape)
    table_k = np.arange(n + 1)
    with np.errstate(all="ignore"):
        lo = np.where(table_k > 0, beta.ppf(1 - confidence, np.maximum(table_k, 1), n - table_k + 1), 0.0)
        hi = np.where(table_k < n, beta.ppf(confidence, table_k + 1, np.maximum(n - table_k, 1)), 1.0)
    k = np.clip(k, 0, n)
    return lo[k], hi[k]
