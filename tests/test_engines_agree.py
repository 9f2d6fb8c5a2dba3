"""The two world engines agree: the fast engine (bulk numpy, day by day) against the events engine (the reference).

Eight small scenarios (``tests/agreement.py`` CASES, 300 users x 2 days each: the quick app with the reference
defaults, heavy-tailed users included; then, with calm users (equal rates, every active user active every day: the
run-to-run noise of a 300-user app is mostly its few heavy users, which would hide a mechanism's bias), the quick app
again, TLS off, store flag off with a TTL, calls with TURN, heavy groups, a plan whose rate limit rejects and whose
throttle acts, an iOS push throttle carried across midnight), five seeds each. Per seed the events engine runs once and the fast engine four
times with independent behaviour (its *references*); the same seed gives every run the same population and social
graph. ~55 quantities per run: MAU, DAU, connections by cause, full and resumed handshakes, messages by outcome,
bytes by category and direction, peak and mean concurrency, the stored-bytes level, per-unit rates (resumed share,
copies per message, outcome shares, payload per delivery) and connects by hour of day (a 24-hour profile).

Test: per quantity, d_s = events(s) - mean of the references(s) (paired by seed: the population cancels) and a
two-sided Student t test of mean d = 0 with the run-to-run variance pooled from the references' spread and the
d_s' (19 df; i.i.d. runs under the null make it exact); the hourly profile hour by hour, Bonferroni over its 24
hours; Holm-Bonferroni over every quantity of every scenario together at family-wise alpha = 1 %: a correct events
engine fails in at most 1 % of seed sets. And a tolerance band per quantity, so that no test passes because
variance is huge: the 99 % CI of the mean relative difference must lie within +-tol (agreement.TOLERANCE, 10
standard errors of the null calibration on other seeds: <= 1.2e-4 per quantity, ~0.3 % over the file, added to
the false-alarm rate).
Quantities zero in both engines are skipped with a note; differences by design are listed in EVENTS_EXEMPTIONS
with their reason.

The null, calibrating the test: the same comparison with the fast engine once more (independent behaviour) in the
events engine's place. It passes on every scenario; and it flags each injected fault (in the fast engine only):
the TLS resumption probability x 0.95 (on the resumed share of handshakes and on full handshakes) and the push
throttle forgetting its slots at midnight (on push connections and on connects at hour 0). The events engine is
held to the same (OTHER); its comparison is skipped, "events engine not yet available", while simulate() raises
for engine: events or silently runs the fast engine.
"""

from __future__ import annotations

import numpy as np
import pytest
from agreement import (
    ALPHA,
    CASE,
    CASES,
    EVENTS,
    NULL,
    PROFILE,
    REFERENCES,
    Report,
    Row,
    Runs,
    compare,
    contrast_t,
    references,
    skip,
    unavailable,
    widen,
)

#: Differences between the fast and the events engine by design: one line each, with the reason.
#: ``skip(reason)``: not compared; ``widen(tol, reason)``: a known, bounded bias (no location test, band +-tol).
#: Keys: a quantity (every case) or (case, quantity).
#: None is needed today. Where the engines' mechanics differ, the model is defined once and both follow it, so the
#: quantities compare as they are: a launch a notification prompts holds the connection but is not a screen session
#: (no reads, no messages); "online" for a live chat is connected for a reason other than a push wake, and a reply
#: answers the last thread opened towards the user (the fast engine decides threads before wake-ups exist); a push is
#: counted when sent, for a copy that finds its recipient offline. Differences left, below this test's resolution and
#: said in the engines' docstrings: the events engine spreads a session's messages over the whole session (the fast
#: one over its part before midnight), and an iOS copy that arrives while an earlier push keeps the phone awake uses
#: up its throttle slot in the fast engine (it was a push candidate) but sends no push in the events engine.
#: Differences this file found and that were fixed instead: see the history of sim/world/mobile/push.py,
#: sim/world/events/mobile.py and conversation.py.
EVENTS_EXEMPTIONS: dict = {
    # "connections_reconnect": skip("..."),
    # ("calls-turn", "peak_ccu"): widen(0.6, "..."),
}

#: The engines held against the fast references: the null (the fast engine itself) calibrates the test, the
#: events engine is what the file is for. An engine is a function (scenario_dict, seed) -> RunResult.
OTHER = {"null": (NULL, {}), "events": (EVENTS, EVENTS_EXEMPTIONS)}


@pytest.fixture(scope="module")
def runs():
    return Runs()


@pytest.fixture(scope="module", params=list(OTHER))
def other(request, runs):
    eng, exemptions = OTHER[request.param]
    why = unavailable(eng, runs)
    if why is not None:
        pytest.skip(f"events engine not yet available ({why})")
    return eng, exemptions


@pytest.fixture(scope="module")
def report(other, runs) -> Report:
    eng, exemptions = other
    return compare(runs.pairs(eng), exemptions)


def explain(rep: Report, only_failed: bool = True) -> str:
    return rep.summary() + "\n" + rep.table(only_failed=only_failed)


# -- the comparison ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_engines_agree_on_every_scenario(report):
    print("\n" + explain(report, only_failed=False))
    assert report.ok, explain(report)
    assert report.cases() == [c.name for c in CASES]
    for case in report.cases():  # at least twelve quantities of every scenario are tested
        assert sum(r.tested for r in report.rows if r.case == case) >= 12, case


@pytest.mark.slow
def test_every_scenario_exercises_its_mechanism(runs):
    q = {c.name: runs.quantities(REFERENCES[0], c)[0] for c in CASES}
    assert q["quick"]["resumed_handshakes"] > 0 and q["quick"]["connections_push"] > 0
    assert q["tls-off"]["full_handshakes"] == q["tls-off"]["bytes_outbound_tls_record"] == 0
    assert q["no-store-ttl"]["dropped"] > 1000 and q["no-store-ttl"]["expired"] > 1000
    assert q["calls-turn"]["connections_call"] > 500 and q["calls-turn"]["bytes_outbound_turn_media"] > 0
    assert q["heavy-groups"]["copies_per_message"] > 2.5 * q["quick"]["copies_per_message"]
    assert q["plan-binds"]["messages_rejected"] > 100 and q["plan-binds"]["rejected_attempts"] > 1000
    usage = runs.usage(REFERENCES[0], CASE["plan-binds"], 1)
    assert usage["enforcement"]["throttled_from"] is not None
    assert set(usage["enforcement"]["rejected"]) == {"message_rate", "throttled"}
    assert q["ios-push-throttle"]["connections_background"] == 0  # iPhones: no background socket


@pytest.mark.slow
def test_the_runs_of_a_seed_share_the_population_not_the_behaviour(runs):
    for c in CASES:
        per_engine = [runs.quantities(e, c) for e in (*REFERENCES, NULL)]
        for seed_runs in zip(*per_engine, strict=True):
            mau = [q["mau"] for q in seed_runs]
            assert max(mau) - min(mau) <= 0.01 * max(mau), (c.name, mau)  # the same users are active
            # drawn independently: payload bytes (log-normal sizes of thousands of messages) never tie by chance
            assert len({q["bytes_outbound_payload"] for q in seed_runs}) == len(seed_runs)


# -- the same comparison flags injected faults ---------------------------------------------------------------------
def flagged(rep: Report, case: str, quantity: str, family: int) -> Row:
    """The row of ``quantity``, asserted flagged as the full comparison would flag it: p x family < ALPHA
    (Bonferroni at the full family's size, so the full Holm rejects it whatever the other p-values)."""
    row = rep.row(case, quantity)
    assert row.p * family < ALPHA, (quantity, row.p, family, "\n" + explain(rep, only_failed=False))
    return row


#: Where fewer resumed handshakes show (and nowhere else).
TLS_VISIBLE = {"resumed_share", "full_handshakes", "resumed_handshakes", "bytes_outbound_tls_handshake",
               "bytes_inbound_tls_handshake", "bytes_outbound_billed"}


@pytest.mark.slow
def test_a_five_percent_change_of_tls_resumption_is_flagged(other, report, runs):
    # injected fault: the resumption probability x 0.95 (0.8 -> 0.76) in the scenario the fast engine gets
    eng, exemptions = other
    case = CASE["quick"]
    rep = compare(runs.pairs(eng, references("tls"), cases=[case]), exemptions, family_size=report.family)
    print("\n" + explain(rep))
    assert not rep.ok
    share = flagged(rep, case.name, "resumed_share", report.family)
    full = flagged(rep, case.name, "full_handshakes", report.family)
    assert share.rel > 0 and full.rel < 0  # the correct engine (B) resumes more, so pays fewer full handshakes
    assert {r.quantity for r in rep.failures} <= TLS_VISIBLE, [r.quantity for r in rep.failures]


@pytest.mark.slow
def test_a_push_throttle_that_forgets_its_slots_at_midnight_is_flagged(other, report, runs):
    # injected fault: the fast engine forgets at every midnight which throttle slots already had their wake-up, so
    # recipients woken late in the evening are woken again by the first copy after 00:00
    eng, exemptions = other
    case = CASE["ios-push-throttle"]
    rep = compare(runs.pairs(eng, references("midnight"), cases=[case]), exemptions, family_size=report.family)
    print("\n" + explain(rep))
    assert not rep.ok
    push = flagged(rep, case.name, "connections_push", report.family)
    hours = flagged(rep, case.name, PROFILE, report.family)
    assert push.rel < 0  # the faulty engine wakes more
    assert hours.worst_bin == 0 and hours.rel < 0  # ... right after midnight


# -- the statistics themselves (no simulation) ----------------------------------------------------------------------
def _q(**kw) -> dict:
    return {k: float(v) for k, v in kw.items()}


def _pairs(a: np.ndarray, b: np.ndarray, name: str = "x") -> dict:
    """One case from arrays: ``a`` (S x K references), ``b`` (S)."""
    return {"c": ([[_q(**{name: v}) for v in row] for row in a], [_q(**{name: v}) for v in b])}


def test_contrast_t_is_the_paired_t_test_with_one_reference_and_handles_degenerate_cases():
    from scipy import stats

    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 1, (6, 1)), rng.normal(10.5, 1, 6)
    assert contrast_t(a, b).p == pytest.approx(stats.ttest_rel(b, a[:, 0]).pvalue)
    assert contrast_t(np.ones((5, 4)), np.ones(5)).p == 1.0  # identical in every run
    assert contrast_t(np.ones((5, 4)), np.full(5, 2.0)).p == 0.0  # a constant offset


def test_contrast_t_holds_its_false_alarm_rate_and_sees_a_shift():
    # i.i.d. runs with a per-seed (population) level: the test rejects at its nominal rate, and sees a shift of 3 sigma (6 standard errors)
    rng = np.random.default_rng(7)
    level = rng.normal(0, 5, (4000, 5, 1))
    runs_ = level + rng.normal(0, 1, (4000, 5, 5))
    p = np.array([contrast_t(r[:, :4], r[:, 4]).p for r in runs_])
    assert abs((p < 0.05).mean() - 0.05) < 0.012 and abs((p < 0.01).mean() - 0.01) < 0.006
    shifted = np.array([contrast_t(r[:, :4], r[:, 4] + 3.0).p for r in runs_[:500]])
    assert (shifted < 0.001).mean() > 0.9


def test_holm_ranks_by_p():
    rng = np.random.default_rng(4)
    a = rng.normal(100, 1, (5, 4))
    b = a.mean(1) + rng.normal(0, 1, 5)
    one = _pairs(a, b)["c"]
    two = _pairs(a * 0.5, b * 0.5 + 5, "y")["c"]
    pairs = {"c": ([[{**x, **y} for x, y in zip(ra, rb, strict=True)] for ra, rb in zip(one[0], two[0], strict=True)],
                   [{**x, **y} for x, y in zip(one[1], two[1], strict=True)])}
    rep = compare(pairs)
    assert rep.family == 2
    assert rep.row("c", "y").significant and not rep.row("c", "x").significant
    assert rep.row("c", "y").p_holm == pytest.approx(2 * rep.row("c", "y").p)


def test_the_band_fails_an_engine_whose_noise_would_hide_any_difference():
    # B is 10 % off with 100 % noise of its own: the t test cannot see it, the band refuses it
    rng = np.random.default_rng(1)
    a = rng.normal(1000, 10, (5, 4))
    b = a.mean(1) * (1.1 + rng.normal(0, 1.0, 5))
    row = compare(_pairs(a, b)).row("c", "x")
    assert not row.significant and row.out_of_band and row.spread > 10


def test_zero_quantities_are_skipped_and_exemptions_say_why():
    a = np.arange(20.0).reshape(5, 4)
    rep = compare(_pairs(np.zeros((5, 4)), np.zeros(5)))
    assert "skipped" in rep.row("c", "x").note and not rep.row("c", "x").tested and rep.ok
    rep = compare(_pairs(np.ones((5, 4)), np.ones(5)))
    assert "identical" in rep.row("c", "x").note and rep.ok
    shifted = _pairs(a, a.mean(1) * 1.2 + 1)
    assert not compare(shifted).ok
    rep = compare(shifted, {"x": skip("defined differently")})
    assert rep.ok and "defined differently" in rep.row("c", "x").note
    rep = compare(shifted, {("c", "x"): widen(1.5, "a known bias")})
    assert rep.ok and not rep.row("c", "x").tested and rep.row("c", "x").banded
