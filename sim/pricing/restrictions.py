"""Runtime restrictions: the limits a plan enforces *while the application runs*.

The bill (``sim/pricing/pricing.py``) is one half of what a plan does; the other half is what it does to the
application: the IoT seed suspends a channel for a minute when its messages per minute exceed the
limit (closing every connection on it), discards new messages when a device buffer is full, drops
MQTT sessions past the limit; the messaging seed rate-limits messages per second and throttles an
application that ignores its 50 % / 75 % notifications. The world (``sim/world``) reads these
records and nothing else of a plan: it knows no prices.

Each restriction is one row of a seed's table:

* ``scope`` -- what the limit is counted on (one channel, one device, the whole platform ...);
* ``measure`` -- what is counted, and over which window (``*_per_minute`` counts reset each minute);
* ``limit`` -- the number (bytes for storage and traffic, a count otherwise), or ``limit_per_mau``
  for a limit proportional to the application's size (the messaging seed's rate limit);
* ``action`` -- what the platform does when it is exceeded, with ``duration`` for suspensions.

A **daily message quota** (``measure: messages_per_day``, ``action: reject``; Azure IoT Hub's daily
messages per unit, Pusher Channels' daily message limit) counts *units* per **UTC day**: the count
resets at 00:00 UTC whatever the period's time zone (``simulation.tz``), as those platforms reset it.
Past the limit the platform refuses every further message of that UTC day. Two optional fields say
what a message uses:

* ``counts`` -- ``originated`` (the default): each message the app's clients send; or
  ``originated_and_delivered``: also each copy the platform delivers (Pusher counts a published
  message and each delivery), so a message uses ``1 + fan-out`` times its size units;
* ``unit_bytes`` -- a message of ``s`` payload bytes uses ``ceil(s / unit_bytes)`` units, at least 1
  (Azure counts 4 KB chunks: ``unit_bytes: 4096``); without it each message is 1 unit.

``limit_per_mau`` works for it too (a per-user daily allowance). sim/world/plan_enforcer.py enforces it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Scope = Literal["platform", "app", "account", "channel", "stream", "device", "container", "abque", "cdn",
                "mqtt_session"]
Measure = Literal[
    "traffic_bytes_per_minute",      # REST/MQTT, channel or stream traffic in one minute
    "api_requests_per_minute",
    "messages_per_minute",           # channel messages, MQTT messages
    "messages_per_second",           # the messaging seed's app-wide rate limit
    "active_connections",
    "active_sessions",
    "subscriptions_per_session",
    "stored_bytes",                  # buffer / container / CDN / persistent session / retained storage
    "retained_bytes",
    "log_retention_days",
    "inactive_days",
    "messages_per_day",              # a daily message quota, per UTC day (reset at 00:00 UTC)
]
Action = Literal[
    "suspend",                       # close every connection of the scope and reject new ones for `duration`
    "reject",                        # reject the requests/messages over the limit
    "discard_new",                   # new messages are discarded (buffer full)
    "delete_new_files",              # CDN: new files deleted
    "discard_new_sessions",
    "discard_new_subscriptions",
    "delete_session",                # persistent MQTT session storage exceeded
    "not_stored",                    # new retained messages are not stored
    "delete_obsolete",               # obsolete log records are deleted
    "delete_account",
    "throttle",                      # messaging seed: throttle after ignored notifications
]


class Restriction(BaseModel):
    """One runtime restriction of a plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Scope
    measure: Measure
    limit: Decimal | None = Field(None, ge=0)
    limit_per_mau: Decimal | None = Field(None, gt=0, description="limit = this x MAU (registered users)")
    limit_min: Decimal | None = Field(
        None, ge=0, description="with limit_per_mau: the limit is at least this (a small app's floor)")
    action: Action
    duration: str | None = Field(None, description="how long a suspension lasts, e.g. 1min")
    counts: Literal["originated", "originated_and_delivered"] | None = Field(
        None, description="messages_per_day: what uses the quota -- each message sent (originated, the default), or "
        "also each copy delivered (originated_and_delivered: 1 + fan-out per message)")
    unit_bytes: int | None = Field(
        None, description="messages_per_day: a message of s payload bytes uses ceil(s / unit_bytes) units (at least 1); "
        "default 1 unit per message")
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Restriction:
        if (self.limit is None) == (self.limit_per_mau is None):
            raise ValueError("give exactly one of limit or limit_per_mau")
        if self.limit_min is not None and self.limit_per_mau is None:
            raise ValueError("limit_min goes with limit_per_mau")
        if self.measure == "messages_per_day":
            if self.action != "reject":
                raise ValueError(f"action: a daily message quota (messages_per_day) rejects, got {self.action!r}")
        else:
            for fld in ("counts", "unit_bytes"):
                if getattr(self, fld) is not None:
                    raise ValueError(f"{fld} goes with measure messages_per_day, not {self.measure}")
        if self.unit_bytes is not None and (isinstance(self.unit_bytes, bool) or self.unit_bytes <= 0):
            raise ValueError(f"unit_bytes must be a positive whole number of bytes, got {self.unit_bytes!r}")
        if self.action == "suspend" and not self.duration:
            raise ValueError("a suspension needs a duration (e.g. 1min)")
        if self.duration is not None:
            from sim.pricing.period import Interval

            interval = Interval.parse(self.duration)   # raises ValueError with the accepted forms
            if interval.daily:
                raise ValueError("a suspension lasts seconds, minutes or hours, not days")
        return self

    @property
    def duration_s(self) -> int:
        from sim.pricing.period import Interval

        return Interval.parse(self.duration).seconds if self.duration else 0

    @property
    def counts_delivered(self) -> bool:
        """messages_per_day: each delivered copy uses the quota too (``counts: originated_and_delivered``)."""
        return self.counts == "originated_and_delivered"

    def resolved_limit(self, users: int) -> float:
        """The limit as a number, for an application of ``users`` registered users."""
        if self.limit is not None:
            return float(self.limit)
        per_mau = float(self.limit_per_mau) * users
        return per_mau if self.limit_min is None else max(per_mau, float(self.limit_min))


class Throttling(BaseModel):
    """Messaging seed FAQ: "We will throttle or temporarily disable your app only if you do not take any
    action after these notifications." The app is throttled once usage passes 100 % of a free limit and
    ``grace`` has passed since the last notification with no action (simulated apps take none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grace: str = Field("24h", description="time after the last notification before throttling starts")
    messages_per_second: Decimal = Field(..., gt=0, description="app-wide message rate while throttled")
    on: Literal["free_limits", "credits"] = Field(
        "free_limits", description="what runs out: a free limit (a Free plan), or the PAYG credits of an account "
        "(scenario `accounts`, sim/months: the ledger decides when; a run without an account is never throttled)")
