"""Shared test fixtures (kept minimal: each test module holds its own helpers)."""

from __future__ import annotations

import copy

import pytest


@pytest.fixture
def world_scenario():
    """Build a validated mobile-world Scenario from a small base plus nested overrides."""
    from sim.scenario import validate_scenario

    base = {
        "name": "test",
        "seed": 7,
        "simulation": {"days": 1},
        "population": {"users": 500, "timezones": "utc"},
    }

    def make(**sections):
        raw = copy.deepcopy(base)
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(raw.get(key), dict):
                raw[key] = {**raw[key], **value}
            else:
                raw[key] = value
        return validate_scenario(raw, "<test>")

    return make
