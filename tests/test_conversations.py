"""Conversation structure (sim/world/conversations.py): fixed heavy-tailed contacts and groups,
recipients only among them, bursts between the same people, exact conservation, latency histogram.

Statistical tests state their test and false-alarm rate; each was run against an injected fault
(named in the test) and failed on it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.rng import Streams
from sim.scenario import load_scenario
from sim.simulate import simulate
from sim.world import conversations as conv
from sim.world.mobile.messaging import LATENCY_KEYS, latency_histogram, latency_quantiles
from sim.world.population import Population
from sim.world.timeline import KEY


def _pop(sets=()):
    sc = load_scenario("chat-app", ["population.users=3000", "simulation.days=1", *sets])
    return sc, Population.draw(sc, Streams(sc.seed))


def test_graph_is_fixed_and_heavy_tailed():
    """Contacts: log-normal degrees (sigma 1). Test: IQR of log(degree) in [1.1, 1.6].

    For sigma 1 the IQR is 1.35; over ~2,700 users the sample IQR has sd ~0.04, so the band is > 5 sd
    wide on each side (false alarm < 1e-6). Injected fault: contacts_sigma 0 (Poisson-like degrees,
    IQR ~0.1) fails it.
    """
    sc, pop = _pop()
    again = Population.draw(sc, Streams(sc.seed))
    s, s2 = pop.social, again.social
    assert np.array_equal(s.contacts.items, s2.contacts.items) and np.array_equal(s.groups.items, s2.groups.items)
    k = s.contacts.size(pop.active_ids)
    assert (k >= 1).all()
    assert k.mean() == pytest.approx(sc.messaging.conversations.contacts_mean, rel=0.1)
    q1, q3 = np.percentile(np.log(k), [25, 75])
    assert 1.1 < q3 - q1 < 1.6, q3 - q1
    # undirected: u lists v iff v lists u
    u = np.repeat(np.arange(pop.n), np.diff(s.contacts.off))
    fwd = np.sort(u * KEY + s.contacts.items)
    assert np.array_equal(fwd, np.sort(s.contacts.items * KEY + u))
    # groups: sizes >= 2, heavy right tail, every active user in >= 1 group
    size = s.group_size
    assert size.min() >= 2 and np.percentile(size, 99) > 3 * np.median(size)
    assert (s.member_of.size(pop.active_ids) >= 1).all()
    # the other per-user draws do not depend on the graph
    off = Population.draw(load_scenario("chat-app", ["population.users=3000", "messaging.conversations.enabled=false"]),
                          Streams(sc.seed))
    assert off.social is None and np.array_equal(off.platform, pop.platform) and np.array_equal(off.msg_mult, pop.msg_mult)


def test_group_fanout_mean_is_calibrated():
    """The posting exponent beta makes the expected fan-out of a group message group_recipients_mean."""
    sc, pop = _pop()
    rng = np.random.default_rng(5)
    users = np.repeat(pop.active_ids, 50)
    g = pop.social.group(rng, users)
    w = (pop.msg_mult * pop.session_mult)[users]
    mean = float((w * pop.social.fanout(g)).sum() / w.sum())
    assert mean == pytest.approx(sc.messaging.group_recipients_mean, rel=0.03)


@pytest.fixture(scope="module")
def captured():
    """One small chat-app run, recording every batch of copies with its originated messages."""
    import sim.world.mobile.world as mobile

    seen, threads = [], []
    orig_fan, orig_one = mobile.fan_out, conv.one_to_one

    def fan(rng, pop, msgs, *a, **k):
        c = orig_fan(rng, pop, msgs, *a, **k)
        seen.append((pop, c.sender.copy(), c.recipient.copy()))
        return c

    def one(rng, social, sender, t, sessions, *a, **k):
        r = orig_one(rng, social, sender, t, sessions, *a, **k)
        threads.append((sender.copy(), t.copy(), r.copy(), sessions))
        return r

    mp = pytest.MonkeyPatch()
    mp.setattr(mobile, "fan_out", fan)
    mp.setattr(conv, "one_to_one", one)
    try:
        sc = load_scenario("chat-app", ["population.users=2000", "simulation.days=2"])
        r = simulate(sc, progress=False, raise_errors=True)
    finally:
        mp.undo()
    return sc, r, seen, threads


def test_recipients_are_contacts_or_group_mates(captured):
    _, _, seen, _ = captured
    pop = seen[0][0]
    s = pop.social
    u = np.repeat(np.arange(pop.n), np.diff(s.contacts.off))
    pairs = [u * KEY + s.contacts.items]
    g_of = np.repeat(np.arange(s.group_size.size), s.group_size)
    for gsz in np.unique(s.group_size):  # all ordered member pairs of every group, by size class
        gs = np.flatnonzero(s.group_size == gsz)
        mem = s.groups.items[(s.groups.off[gs][:, None] + np.arange(gsz)).ravel()].reshape(gs.size, gsz)
        pairs.append((mem[:, :, None] * KEY + mem[:, None, :]).ravel())
    del g_of
    allowed = np.unique(np.concatenate(pairs))
    total = 0
    for _, snd, rcpt in seen:
        q = snd * KEY + rcpt
        assert np.isin(q, allowed).all()
        assert (snd != rcpt).all()
        total += q.size
    assert total > 50_000


def test_messages_come_in_bursts_to_the_same_partner(captured):
    """Consecutive 1:1 messages of a sender in one session go to the same partner far more often than
    independent draws would.

    Null (independent Zipf draws from the sender's contacts): a pair coincides with probability
    sum_i p_i^2 for that sender's list. Test: one-sided z-test of the observed share over the pairs
    against the mean null probability, z > 4 (false alarm 3e-5; pairs of one sender are not quite
    independent, which a 4-sigma bar absorbs). Injected fault: session_focus 0, reply_probability 0,
    live_conversation_fraction 0 (every message drawn independently): z ~ 0, fails.
    """
    _, _, seen, threads = captured
    social = seen[0][0].social
    same, null = [], []
    for sender, t, rcpt, sessions in threads:
        skey = sessions.user * KEY + sessions.start
        si = np.searchsorted(skey, sender * KEY + t, side="right") - 1
        order = np.lexsort((t, si))
        si, snd, r = si[order], sender[order], rcpt[order]
        pair = si[1:] == si[:-1]
        same.append(r[1:][pair] == r[:-1][pair])
        k = social.contacts.size(snd[1:][pair]).astype(np.float64)
        # P(position i) of the sampler: log((i + 2) / (i + 1)) / log(k + 1); sum of squares per k
        null.append(_zipf_collision(k))
    same, null = np.concatenate(same), np.concatenate(null)
    n = same.size
    assert n > 5_000
    p0 = null.mean()
    z = (same.mean() - p0) / math.sqrt(p0 * (1 - p0) / n)
    assert z > 4, (same.mean(), p0, z)
    assert same.mean() > 0.5  # "mostly one or two partners" per session


def _zipf_collision(k: np.ndarray) -> np.ndarray:
    out = np.empty(k.size)
    for kk in np.unique(k):
        i = np.arange(int(kk))
        p = np.log((i + 2) / (i + 1)) / np.log(kk + 1)
        out[k == kk] = (p * p).sum()
    return out


def test_conservation_and_latency_histogram(captured):
    _, r, _, _ = captured
    c = r.usage["counts"]
    assert c["messages_sent"] + c.get("stored_at_start", 0) == (
        c["delivered"] + c["stored"] + c["expired"] + c["dropped"] + c["rejected"] + c["discarded"])
    # every delivered copy is in exactly one latency bucket
    assert sum(c.get(k, 0) for k in LATENCY_KEYS) == c["delivered"]
    assert c["latency_le_0s"] == c["delivered_immediately"]
    q = latency_quantiles(c, (0.5, 0.9))
    assert 0 <= q[0.5] <= 60  # most copies arrive within seconds (online, or woken)
    assert q[0.5] <= q[0.9]


def test_latency_quantiles_read_the_histogram():
    delay = np.array([0, 0, 500, 5_000, 30_000, 7_200_000, 100_000_000], dtype=np.int64)
    h = latency_histogram(delay)
    assert h.tolist() == [2, 1, 1, 1, 0, 0, 1, 0, 1]
    counts = dict(zip(LATENCY_KEYS, h.tolist(), strict=True))
    q = latency_quantiles(counts, (0.25, 0.5, 0.99))
    assert q[0.25] == 0.0
    assert 1.0 < q[0.5] <= 10.0  # the 4th of 7 lies in (1 s, 10 s]
    assert q[0.99] == 86_400.0


def test_push_limits_are_platform_values():
    """Throttles from PF §4.1-4.2, not calibration: iOS 3/h, Android FCM high priority unthrottled."""
    sc = load_scenario("chat-app")
    assert sc.push.min_interval_ios_s == 1200
    assert sc.push.min_interval_android_s == 0
