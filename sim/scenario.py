"""Scenario files: what world to simulate, validated, overridable, self-documenting.

A scenario is a YAML mapping validated by the pydantic models below (unknown keys and bad values are
errors naming the file, the dotted key and the reason). Every default cites where it comes from:
``PF §x`` is ``shared/reference/protocol-facts.md`` section x (§6 holds the recommended defaults),
``seed`` is the messaging seed (``shared/seeds/000_13281a036d458080.txt``); "assumption" marks a
number no source gives, exposed so that it can be varied.

``--set key.path=value`` overrides any key (value parsed as a YAML scalar) *before* validation, and
an unknown path is an error naming it. :func:`reference_markdown` renders the key reference from the
field descriptions, so the documentation cannot drift from the schema.
"""

from __future__ import annotations

import copy
import types
import typing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sim import yamlio
from sim.errors import InputError
from sim.pricing.account import Account
from sim.protocol import ProtocolConfig
from sim.strict import StrictModel
from sim.world.growth import Growth
from sim.world.iot.config import IotFleetConfig

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
DEFAULT_START = datetime(2026, 11, 1, tzinfo=UTC)

#: Device-mix presets for ``population.device_mix`` (share of mobile users per OS).
DEVICE_MIXES: dict[str, dict[str, float]] = {
    # Worldwide mobile OS share, roughly 72 % Android / 28 % iOS (StatCounter 2024, from memory: unverified).
    "global": {"android": 0.72, "ios": 0.28},
    # United States, roughly 42 % Android / 58 % iOS (StatCounter 2024, from memory: unverified).
    "us": {"android": 0.42, "ios": 0.58},
    "android": {"android": 1.0, "ios": 0.0},
    "ios": {"android": 0.0, "ios": 1.0},
}
#: Time-zone presets for ``population.timezones`` (UTC offset in hours -> share of users).
TIMEZONE_PRESETS: dict[str, dict[float, float]] = {
    "utc": {0.0: 1.0},
    "europe": {0.0: 0.2, 1.0: 0.6, 2.0: 0.2},
    "americas": {-8.0: 0.2, -6.0: 0.2, -5.0: 0.35, -3.0: 0.25},
    "global": {-5.0: 0.15, -3.0: 0.1, 0.0: 0.1, 1.0: 0.15, 3.0: 0.05, 5.5: 0.2, 7.0: 0.1, 8.0: 0.15},
}

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PosFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]


class Strict(StrictModel):
    """Base for every scenario section: strict (sim/strict.py), defaults validated too."""

    model_config = ConfigDict(validate_default=True)


class Simulation(Strict):
    """The billing period simulated, and how the world gets into steady state before it starts."""

    start: datetime = Field(
        DEFAULT_START, description="Start of the period: any minute, any UTC offset (stored in UTC). "
        "Default 2026-11-01T00:00Z (issue).",
    )
    days: int | None = Field(30, ge=1, le=92, description="Length of the billing period in days (with `months`: set "
                             "from them; `null` to drop a file's days when `--set simulation.months=N`).")
    months: int | None = Field(
        None, ge=1, le=24, description="Simulate this many calendar months from `start`, each its own billing period "
        "(sim/months): one world whose state (users, stored messages, open connections) carries across month "
        "boundaries, one usage and one bill per month and plan, account ledgers over them. `start` must fall on day "
        "1-28 of a month; `days` is then the months' days.",
    )
    tz: str | None = Field(
        None, description="Time zone of the period's calendar days (per-day meters: DAU, element counts): an "
        "IANA name (Europe/Berlin) or an offset (+01:00). Default: the offset written in start, else UTC.",
    )
    warmup_days: int = Field(
        1, ge=0, le=7, description="Days simulated before the period and discarded, so the period starts in "
        "steady state: connections up, phones in Doze, messages waiting in the store, as if the app had been "
        "running (nothing of the warm-up is billed). 1 day covers every state the mobile model carries except "
        "copies waiting for users away for longer (assumption; see sim/world/mobile/world.py).",
    )

    @model_validator(mode="before")
    @classmethod
    def _tz_from_start(cls, v: Any) -> Any:
        """Keep the offset the user wrote (``2026-11-01T00:00:00+01:00``) as the period's time zone."""
        if not isinstance(v, dict) or v.get("tz") is not None or "start" not in v:
            return v
        start = v["start"]
        if isinstance(start, str):
            try:
                start = datetime.fromisoformat(start.replace("Z", "+00:00"))
            except ValueError:
                return v  # the field validator reports it
        off = start.utcoffset() if isinstance(start, datetime) and start.tzinfo is not None else None
        if off:
            minutes = int(off.total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            v = {**v, "tz": f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"}
        return v

    @model_validator(mode="after")
    def _months(self) -> Simulation:
        """``months``: the period is that many calendar months from ``start``; ``days`` follows from them."""
        if self.months is None:
            if self.days is None:
                raise ValueError("days: give the period's days, or months")
            return self
        from sim.world.clock import month_bounds

        bounds = month_bounds(self.start, self.months, self.tz)
        days = round((bounds[-1] - bounds[0]).total_seconds() / 86_400)
        if "days" in self.model_fields_set and self.days is not None and self.days != days:
            raise ValueError(f"months: {self.months} months from {bounds[0].date()} are {days} days, but days is "
                             f"{self.days}; give months or days, not both")
        self.days = days
        return self

    @field_validator("start", mode="before")
    @classmethod
    def _date_ok(cls, v: Any) -> Any:
        if isinstance(v, date) and not isinstance(v, datetime):
            return datetime(v.year, v.month, v.day, tzinfo=UTC)
        return v

    @field_validator("start")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            return v.replace(tzinfo=UTC)
        return v.astimezone(UTC)

    @field_validator("tz")
    @classmethod
    def _zone_ok(cls, v: str | None) -> str | None:
        if v is not None:
            from sim.pricing.period import parse_zone

            parse_zone(v)  # ValueError names the zone
        return v


class Population(Strict):
    """Who uses the app."""

    users: int = Field(ge=1, le=50_000_000, description="Registered users (mobile devices) of the app.")
    monthly_active_fraction: Fraction = Field(
        1.0, description="Share of registered users who use the app at all in the period (the rest never connect)."
    )
    dau_over_mau: Fraction = Field(
        0.75, description="Probability that an active user opens the app on a given day. PF §6 dau_over_mau 0.75 "
        "(WhatsApp 0.70 in 2014, 0.77 in 2017).",
    )
    device_mix: str | dict[str, Fraction] = Field(
        "global", description=f"OS mix: a preset ({', '.join(DEVICE_MIXES)}) or a mapping android/ios -> share.",
    )
    timezones: str | dict[float, NonNegFloat] = Field(
        "utc", description=f"UTC offsets (hours) -> share of users, or a preset ({', '.join(TIMEZONE_PRESETS)}).",
    )
    sample: Annotated[int, Field(ge=2)] | None = Field(
        None, description="Simulate this many of the `users` and scale the usage to all of them (sim/sampling.py): "
        "bytes, counts and stored levels by users / sample, MAU and peak CCU estimated with a confidence interval "
        "(usage `sampling` section). null, or a sample of at least `users`, simulates everyone.",
    )
    sample_confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = Field(
        0.95, description="Confidence level of the sampled MAU and peak-CCU intervals.",
    )

    @field_validator("device_mix")
    @classmethod
    def _mix(cls, v: str | dict[str, float]) -> dict[str, float]:
        if isinstance(v, str):
            if v not in DEVICE_MIXES:
                raise ValueError(f"unknown device mix preset {v!r}; known: {', '.join(DEVICE_MIXES)}")
            return dict(DEVICE_MIXES[v])
        unknown = set(v) - {"android", "ios"}
        if unknown:
            raise ValueError(f"unknown platform {sorted(unknown)[0]!r}; known: android, ios (IoT devices: the iot section)")
        mix = {"android": float(v.get("android", 0.0)), "ios": float(v.get("ios", 0.0))}
        if abs(sum(mix.values()) - 1.0) > 1e-9:
            raise ValueError(f"shares must sum to 1, got {sum(mix.values())}")
        return mix

    @field_validator("timezones")
    @classmethod
    def _tz(cls, v: str | dict[float, float]) -> dict[float, float]:
        if isinstance(v, str):
            if v not in TIMEZONE_PRESETS:
                raise ValueError(f"unknown time-zone preset {v!r}; known: {', '.join(TIMEZONE_PRESETS)}")
            return dict(TIMEZONE_PRESETS[v])
        if not v or sum(v.values()) <= 0:
            raise ValueError("needs at least one offset with a positive share")
        bad = [k for k in v if not -12.0 <= k <= 14.0]
        if bad:
            raise ValueError(f"UTC offset {bad[0]} out of range [-12, 14]")
        return {float(k): float(s) for k, s in v.items()}


class Diurnal(Strict):
    """Time-of-day profile of foreground activity (local time)."""

    shape: Literal["cosine", "flat"] = Field(
        "cosine", description="'cosine': 1 + A cos(2pi (h - peak)/24); 'flat': uniform over the day (tests)."
    )
    peak_to_mean: Annotated[float, Field(ge=1.0, le=2.0)] = Field(
        1.7, description="Busiest hour over the mean hour. PF §6 diurnal_profile 1.7 (Cisco VNI busy-hour ratio 1.72).",
    )
    peak_hour: Annotated[float, Field(ge=0.0, lt=24.0)] = Field(
        21.0, description="Local hour of the peak (assumption: evening peak; PF §6 puts the trough at 03-05 h).",
    )


class Activity(Strict):
    """Foreground use: sessions with the app on screen."""

    sessions_per_dau_per_day: Annotated[float, Field(ge=1.0)] = Field(
        20.0, description="Mean foreground sessions per active user per day (at least 1). WhatsApp measurements: "
        "~23 app launches/day (onlinestatusmonitor.com, 1,000 users monitored 2013-14) and 20.99 sessions/day on "
        "Android (Similarweb 2025 via digitalinformationworld.com); within PF §4.4's 10-200 phone interactions/day "
        "(Falaki 2010). With push wake-ups and Doze windows this gives PF §6 reconnects_per_dau_per_day ~25.",
    )
    session_rate_sigma: NonNegFloat = Field(
        1.0, description="Log-normal sigma of each user's session-rate multiplier (mean 1, drawn once per run; 0 = "
        "every user has the same rate). PF §4.4: mean phone interactions per day range 10-200 across users (Falaki "
        "2010), a factor 20; read as p10-p90 as PF §6 does (reconnects p10 5 / p90 100) that is sigma 1.17, read as "
        "the min-max of 255 users sigma 0.56; 1.0 lies between.",
    )
    min_one_session: bool = Field(
        True, description="A day-active user opens the app at least once (1 + Poisson(m - 1) sessions, so DAU is exact); "
        "false: Poisson(m) sessions, a Poisson process of session starts (M/G/inf tests).",
    )
    session_mean_s: PosFloat = Field(71.6, description="Mean foreground session length, s. PF §4.4 (Böhmer 2011: 71.6 s).")
    session_distribution: Literal["exponential", "lognormal"] = Field(
        "lognormal", description="Session length distribution (mean session_mean_s)."
    )
    session_sigma: NonNegFloat = Field(1.0, description="Log-normal sigma of session length (assumption).")
    diurnal: Diurnal = Field(default_factory=Diurnal)


class Android(Strict):
    """Android background life (AOSP DeviceIdleController / freezer defaults, PF §4.1)."""

    bg_socket_lifetime_s: NonNegFloat = Field(
        10.0, description="Socket survives this long after the app leaves the screen. PF §6 android_bg_socket_lifetime: "
        "10 s (Android 14+ cached-app freezer).",
    )
    keeps_background_socket: Fraction = Field(
        0.1, description="Share of Android devices whose app keeps its socket in the background (foreground service, "
        "older OS) until Doze suspends the network. Assumption: since Android 8 background services stop after ~1 min "
        "and Android 14+ freezes cached apps after 10 s (PF §4.1, PF §6 android_bg_socket_lifetime 'unless a foreground "
        "service is running'), so only apps running a foreground service (a permanent notification, which mainstream "
        "chat apps do not use) and Android <= 7 devices keep a socket; 0.1 is a generous bound (was 0.3, uncited). "
        "These devices form the right tail of connections per user (~50-100 Doze windows/day).",
    )
    stationary_probability: Fraction = Field(
        0.5, description="Share of screen-off gaps in which the device lies still and may enter deep Doze (assumption).",
    )
    light_after_inactive_s: NonNegFloat = Field(240.0, description="Light Doze starts after screen-off. PF §4.1 (AOSP 240,000 ms).")
    light_idle_s: PosFloat = Field(300.0, description="First light-idle period. PF §4.1 (AOSP light_idle_to 300,000 ms).")
    light_idle_factor: Annotated[float, Field(ge=1.0)] = Field(2.0, description="Light-idle growth. PF §4.1 (AOSP 2).")
    light_max_idle_s: PosFloat = Field(900.0, description="Light-idle cap. PF §4.1 (AOSP 900,000 ms).")
    light_maintenance_s: PosFloat = Field(
        60.0, description="Light maintenance window (network allowed). PF §4.1 budget 60-300 s (lower end).",
    )
    deep_after_inactive_s: NonNegFloat = Field(
        3600.0, description="Deep Doze entry after screen-off (stationary). PF §4.1: inactive 30 min + idle-pending 30 min.",
    )
    deep_idle_s: PosFloat = Field(3600.0, description="First deep-idle period. PF §4.1 (AOSP idle_to 1 h).")
    deep_idle_factor: Annotated[float, Field(ge=1.0)] = Field(2.0, description="Deep-idle growth. PF §4.1 (AOSP 2.0).")
    deep_max_idle_s: PosFloat = Field(21600.0, description="Deep-idle cap. PF §4.1 (AOSP 6 h).")
    deep_maintenance_s: PosFloat = Field(300.0, description="First deep maintenance window. PF §4.1 (AOSP 5 min).")
    deep_max_maintenance_s: PosFloat = Field(600.0, description="Deep maintenance window cap. PF §4.1 (AOSP 10 min).")


class Ios(Strict):
    """iOS background life (PF §4.2)."""

    bg_socket_lifetime_s: NonNegFloat = Field(
        5.0, description="App suspended this long after backgrounding. PF §6 ios_bg_socket_lifetime 5 s.",
    )
    background_task_fraction: Fraction = Field(
        0.0, description="Share of backgroundings that request a background task (socket kept background_task_s).",
    )
    background_task_s: NonNegFloat = Field(30.0, description="Background task length. PF §4.2 (~30 s on iOS 13+).")


class OsModel(Strict):
    android: Android = Field(default_factory=Android)
    ios: Ios = Field(default_factory=Ios)


class Network(Strict):
    """Sockets, NATs, TLS session resumption and reconnects."""

    heartbeat_s: NonNegFloat = Field(
        240.0, description="App heartbeat interval while connected (0 = none). PF §6 chat_app_heartbeat 240 s cellular.",
    )
    nat_idle_timeout_s: PosFloat = Field(
        1800.0, description="Idle TCP mapping lifetime in carrier/home NATs. PF §6 nat_tcp_idle_timeout 30 min "
        "(range 5-60 min). An idle background socket dies silently after it unless heartbeats are shorter.",
    )
    tls_resumption_probability: Fraction = Field(
        0.8, description="A reconnect within the ticket lifetime resumes the TLS session. PF §6 (0.8).",
    )
    ticket_lifetime_s: NonNegFloat = Field(
        7200.0, description="TLS session-ticket lifetime. PF §1.4/§6 (OpenSSL default 7,200 s; <= 7 days).",
    )
    graceful_close_fraction: Fraction = Field(
        0.0, description="Share of disconnects that close TCP/TLS gracefully. PF §2/§6: suspended or frozen apps and NAT "
        "timeouts send nothing, so the default is 0.",
    )
    reconnect_backoff_s: NonNegFloat = Field(
        2.0, description="Mean reconnect delay after a dead socket is detected or a suspension ends (exponential, "
        "assumption: SDKs retry after 1-5 s with jitter).",
    )


class Push(Strict):
    """Push notifications (FCM / APNs) that wake a sleeping app for incoming messages and calls."""

    enabled: bool = Field(True, description="Offline recipients are woken by a push (else they wait for their next session).")
    delay_s: NonNegFloat = Field(2.0, description="Push to reconnect delay. PF §6 push_wakeup (1-3 s).")
    wake_s: PosFloat = Field(30.0, description="How long a woken app stays connected. PF §4.2 (iOS: up to 30 s).")
    min_interval_android_s: NonNegFloat = Field(
        0.0, description="Debounce: at most one wake per recipient per this interval on Android (0 = none beyond the "
        "wake itself). PF §4.1: FCM high-priority messages are delivered immediately, even in Doze, and are not "
        "rate-limited for apps in the Active bucket. A copy arriving while a wake is up is served by it, so a "
        "conversation burst costs one wake (sim/world/mobile/push.py). Was 14,400 s, a calibration for independent recipients.",
    )
    min_interval_ios_s: NonNegFloat = Field(
        1200.0, description="At most one wake per recipient per this interval on iOS: PF §4.2, Apple recommends at most "
        "2-3 background pushes per hour and throttles beyond that (1,200 s = 3/h). Copies that find the app asleep "
        "after its slot's wake wait for the next wake or session. Was 14,400 s (calibration).",
    )
    disabled_fraction: Fraction = Field(
        0.1, description="Share of users who turned the app's notifications off, fixed for the run: they are never "
        "woken, and their copies wait for their next session or background window (assumption; iOS asks for "
        "permission and opt-in rates of messaging apps are high).",
    )
    open_probability: Fraction = Field(
        0.65, description="Share of push wake-ups after which the user opens the app: the foreground session starts at "
        "the wake, so wake and session are one connection, and it is one of the user's sessions_per_dau_per_day (the "
        "measured launch counts include launches notifications prompt). Pielot, Vradi & Park, 'Dismissed!', "
        "MobileHCI 2018 (794,525 notifications of 278 users): messaging notifications convert at ~65 %, other kinds "
        "15-25 %. Session length follows activity.session_mean_s / session_sigma.",
    )


class MessageSize(Strict):
    """Payload size of a text message."""

    distribution: Literal["fixed", "lognormal"] = Field("lognormal", description="Size distribution.")
    mean_bytes: PosFloat = Field(
        250.0, description="Mean payload bytes. PF §6 text_payload_bytes: ~250 B on-wire envelope after E2E encryption.",
    )
    sigma: NonNegFloat = Field(0.6, description="Log-normal sigma (assumption).")


class Conversations(Strict):
    """Who talks to whom: fixed contacts and groups, and messages in bursts between the same people."""

    enabled: bool = Field(
        True, description="Recipients come from the sender's contacts and groups, in per-session threads "
        "(sim/world/conversations.py); false: recipients uniform among active users, independently per message.",
    )
    contacts_mean: Annotated[float, Field(ge=1.0)] = Field(
        30.0, description="Mean number of contacts a user messages at all during the period (assumption; log-normal "
        "degree of an undirected configuration-model graph among active users).",
    )
    contacts_sigma: NonNegFloat = Field(
        1.0, description="Log-normal sigma of the contact count: a heavy tail of users with hundreds of contacts "
        "(assumption).",
    )
    groups_per_user_mean: Annotated[float, Field(ge=1.0)] = Field(
        4.0, description="Mean groups an active user belongs to, 1 + Poisson(mean - 1) (assumption).",
    )
    group_size_sigma: NonNegFloat = Field(
        0.8, description="Log-normal sigma of group sizes (assumption: mostly small groups, a few large ones); the scale "
        "puts the size-biased mean (the group a posting member is in) at group_recipients_mean + 1.",
    )
    muted_group_fraction: Fraction = Field(
        0.5, description="Share of group memberships muted by the member, fixed for the run: no visible notification, "
        "so no push wake (FCM deprioritises pushes without a user-visible notification to normal priority, deferred "
        "in Doze, PF §4.1); the copy waits for the member's next connection (assumption for the share).",
    )
    session_focus: Fraction = Field(
        0.8, description="Share of a session's 1:1 (group) messages that go to the session's thread: its partner "
        "(group); the rest go to other contacts (groups) (assumption: a session is mostly one or two chats).",
    )
    reply_probability: Fraction = Field(
        0.7, description="Share of sessions whose 1:1 thread answers the last contact who messaged the user within "
        "reply_window_s before the session's first message (assumption).",
    )
    reply_window_s: NonNegFloat = Field(
        3600.0, description="How long an unanswered incoming message makes its sender the next session's partner (assumption).",
    )
    live_contacts: Annotated[int, Field(ge=0)] = Field(
        8, description="Favourite contacts checked for being online when a session looks for a live conversation "
        "(assumption; bounds the work per session).",
    )
    partner_skew: NonNegFloat = Field(
        1.0, description="Zipf exponent of how a user's messages spread over their contacts (fixed random order per "
        "user): 1 = the i-th favourite gets weight 1/i, 0 = uniform (assumption).",
    )


class Messaging(Strict):
    """Chat messages, groups, storage and receipts."""

    messages_per_dau_per_day: NonNegFloat = Field(
        40.0, description="Messages originated per active user per day. PF §6 messages_sent_per_dau_per_day 40.",
    )
    rate_sigma: NonNegFloat = Field(
        1.0, description="Sigma of the per-user log-normal rate multiplier (mean 1): a heavy tail of chatty users (assumption).",
    )
    size: MessageSize = Field(default_factory=MessageSize)
    live_conversation_fraction: Fraction = Field(
        0.5, description="Share of foreground sessions whose 1:1 thread goes to a favourite contact who is online at the "
        "session's first message (the first online one among conversations.live_contacts favourites), if any: a live "
        "conversation (assumption; 0 = threads go to contacts whatever their state).",
    )
    media_fraction: Fraction = Field(0.10, description="Share of messages carrying media. PF §6 media_message_fraction 0.10.")
    media_message_bytes: PosFloat = Field(
        6000.0, description="Bytes of a media message through the server: URL + thumbnail; the file itself goes to a file "
        "server (seed: 'use your own file servers') (assumption).",
    )
    group_fraction: Fraction = Field(
        0.2, description="Share of messages sent to a group (assumption; with group_recipients_mean 6 the received/sent "
        "ratio is 2.0, PF §6 group_fanout_received_per_sent).",
    )
    group_recipients_mean: Annotated[float, Field(ge=1.0)] = Field(
        6.0, description="Mean recipients of a group message (the group's other members, capped by "
        "group_recipients_max). With conversations on, group sizes are heavy-tailed (conversations.group_size_sigma) "
        "and how much members post in small versus large groups is solved so that the mean over messages is this; "
        "off: 1 + Poisson(mean - 1).",
    )
    group_recipients_max: Annotated[int, Field(ge=1)] = Field(255, description="Largest group fan-out (assumption: 256-member groups).")
    conversations: Conversations = Field(default_factory=lambda: Conversations())
    no_store_fraction: Fraction = Field(
        0.0, description="Share of messages sent with the store flag off: dropped (and counted) if the recipient is offline "
        "(seed: 'setting a flag while sending').",
    )
    ttl_s: NonNegFloat | None = Field(
        None, description="Lifetime of a stored message; null = unlimited (seed: 'Unlimited message retention time').",
    )
    stored_overhead_bytes: NonNegFloat = Field(0.0, description="Bytes stored per message on top of its payload (metadata).")
    delivery_receipts: bool = Field(True, description="Recipients send a delivery receipt per delivered copy.")
    read_receipts: bool = Field(True, description="Recipients send a read receipt when they next open the app.")
    receipt_bytes: NonNegFloat = Field(
        24.0, description="Payload of a receipt (message id + status; assumption). Receipts are metered as app_protocol.",
    )


class Calls(Strict):
    """Voice/video calls: signalling through the server, media peer-to-peer or relayed through TURN."""

    calls_per_dau_per_day: NonNegFloat = Field(
        0.3, description="Calls started per active user per day. PF §4.4: 2 B call-minutes/day on ~1.5 B DAU -> ~1.3 "
        "min/DAU; with 4-min calls ~0.3.",
    )
    duration_mean_s: PosFloat = Field(240.0, description="Mean call duration, s (assumption).")
    duration_sigma: NonNegFloat = Field(1.0, description="Log-normal sigma of the call duration (assumption).")
    video_fraction: Fraction = Field(0.3, description="Share of video calls (assumption).")
    turn_relay_fraction: Fraction = Field(
        0.20, description="Share of calls relayed through TURN. PF §6 turn_relay_fraction 0.20 (callstats.io); the seed "
        "says ~5 % of users (optimistic bound).",
    )
    audio_wire_kbps: NonNegFloat = Field(
        48.8, description="Relayed audio per direction, kbit/s. PF §5.3 (Opus 24 kbit/s + RTP/SRTP/UDP/IP = 48.8).",
    )
    video_kbps: NonNegFloat = Field(500.0, description="Video per direction, kbit/s. PF §6 video_bitrate (640x360).")
    offer_bytes_audio: NonNegFloat = Field(1176.0, description="SDP offer, audio. PF §5.1 (Chrome audio-only offer).")
    offer_bytes_video: NonNegFloat = Field(5086.0, description="SDP offer, audio+video. PF §5.1 (Chrome 120).")
    candidates_per_side: Annotated[int, Field(ge=0)] = Field(4, description="ICE candidates per side. PF §6 call_setup_signalling.")
    candidate_bytes: NonNegFloat = Field(150.0, description="Bytes per candidate. PF §6 call_setup_signalling.")
    control_messages: Annotated[int, Field(ge=0)] = Field(
        4, description="Call-control messages (ring, ringing, connected, hangup): with offer and answer 6 messages, "
        "within the seed's 5-8.",
    )
    control_bytes: NonNegFloat = Field(200.0, description="Bytes per control message. PF §6 call_setup_signalling.")
    keepalive_interval_s: PosFloat = Field(5.0, description="Keep-alive/quality message period per end. PF §6 (RFC 7675).")
    keepalive_bytes: NonNegFloat = Field(120.0, description="Keep-alive/quality message size. PF §6 (100-150 B).")


class ClientSpec(Strict):
    """A custom client behaviour run by the ``events`` engine for a share of the users."""

    behaviour: str = Field(
        description="Dotted import path of a client class (a subclass of sim.world.events.Client) or a generator "
        "function taking the client: `package.module:Name` or `package.module.Name`.",
    )
    share: Fraction = Field(description="Share of the registered users that run this client instead of the default one.")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword parameters handed to the client (its `params`).")

    @model_validator(mode="after")
    def _importable(self) -> ClientSpec:
        from sim.world.events.custom import resolve_behaviour

        resolve_behaviour(self.behaviour)  # raises ValueError naming what is wrong
        return self


class Scenario(Strict):
    """A simulated world: who, how long, what they do, and which plans to price it under."""

    name: str = Field("scenario", description="Short name (used in reports).")
    description: str = Field("", description="Free text.")
    seed: Annotated[int, Field(ge=0)] = Field(1, description="Root random seed (--seed overrides).")
    engine: Literal["fast", "events"] = Field(
        "fast", description="World engine: `fast` (bulk numpy, day by day: sim/world/mobile, sim/world/iot) or "
        "`events` (one SimPy process per client, the reference model, open to custom clients: sim/world/events).",
    )
    clients: list[ClientSpec] = Field(
        default_factory=list, description="Custom client behaviours with their shares of the users (engine: events only).",
    )
    simulation: Simulation = Field(default_factory=Simulation)
    population: Population
    activity: Activity = Field(default_factory=Activity)
    os: OsModel = Field(default_factory=OsModel)
    network: Network = Field(default_factory=Network)
    push: Push = Field(default_factory=Push)
    messaging: Messaging = Field(default_factory=Messaging)
    calls: Calls = Field(default_factory=Calls)
    protocol: ProtocolConfig = Field(
        default_factory=ProtocolConfig, description="Wire model (sim/protocol/config.py ProtocolConfig).",
    )
    iot: IotFleetConfig | None = Field(
        None, description="Optional IoT tracker fleet (sim/world/iot/config.py IotFleetConfig).",
    )
    plans: list[str] = Field(
        default_factory=list, description="Plans to price the usage against: plan names or plan file paths.",
    )
    growth: Growth | None = Field(
        None, description="How the population grows over a run of `simulation.months` (sim/world/growth.py Growth): "
        "`population.users` are present at the start; users join during each month and some leave.",
    )
    accounts: dict[str, Account] = Field(
        default_factory=dict, description="Per plan (a name in `plans`): the account over a multi-month run "
        "(sim/pricing/account.py Account): PAYG credits and their top-up policy, the Free -> PAYG switch, the "
        "payment of invoices.",
    )

    @model_validator(mode="after")
    def _sane(self) -> Scenario:
        if self.network.heartbeat_s and self.network.heartbeat_s < 1:
            raise ValueError("network.heartbeat_s must be 0 (none) or at least 1 s")
        if self.growth is not None:
            if not self.simulation.months:
                raise ValueError("growth: needs simulation.months (a population grows over months)")
            if self.engine != "fast":
                raise ValueError("growth: runs on the fast engine only (engine: fast); the events engine has no "
                                 "presence windows yet")
            self.growth.check_against(self.population.users, self.simulation.months)
        for name in self.accounts:
            if name not in self.plans:
                raise ValueError(f"accounts: {name!r} is not one of the scenario's plans ({', '.join(self.plans) or 'none'})")
        if self.accounts and not self.simulation.months:
            raise ValueError("accounts: need simulation.months (an account is kept over billing months)")
        return self

    @field_validator("clients")
    @classmethod
    def _clients(cls, v: list[ClientSpec], info: ValidationInfo) -> list[ClientSpec]:
        if v and info.data.get("engine") != "events":
            raise ValueError("custom clients run on the events engine only (set engine: events)")
        if sum(c.share for c in v) > 1.0 + 1e-9:
            raise ValueError(f"the shares add up to {sum(c.share for c in v):g}, more than 1")
        return v


# -- loading ----------------------------------------------------------------------------------------------


def resolve_scenario_path(path: str | Path) -> Path:
    """``quick`` and ``quick.yaml`` find ``scenarios/quick.yaml``; any existing path is used as is."""
    p = Path(path)
    if p.exists():
        return p
    for cand in (SCENARIO_DIR / p, SCENARIO_DIR / f"{p}.yaml"):
        if cand.exists():
            return cand
    raise InputError(str(path), None, "no such scenario file")


def load_scenario(path: str | Path, sets: list[str] | None = None, seed: int | None = None) -> Scenario:
    """Read, override and validate a scenario file; every problem is an :class:`InputError`."""
    p = resolve_scenario_path(path)
    source = str(p)
    raw = yamlio.read_mapping(p, "scenario file", "a scenario must be a YAML mapping")
    raw = apply_sets(raw, sets or [], source)
    if seed is not None:
        raw["seed"] = seed
    _resolve_beside(raw, p.parent)
    return validate_scenario(raw, source)


def _resolve_beside(raw: dict, folder: Path) -> None:
    """A relative ``certificate_chain`` (protocol, iot.protocol) is read beside the scenario file when it is there
    (else from the working directory, as given)."""
    for section in (raw.get("protocol"), (raw.get("iot") or {}).get("protocol") if isinstance(raw.get("iot"), dict)
                    else None):
        if isinstance(section, dict) and isinstance(section.get("certificate_chain"), str):
            path = Path(section["certificate_chain"])
            if not path.is_absolute() and (folder / path).is_file():
                section["certificate_chain"] = str(folder / path)


def validate_scenario(raw: dict, source: str = "<scenario>") -> Scenario:
    """Validate raw scenario data; NaN/infinity anywhere and booleans for numbers are refused first
    (also inside sections that are not :class:`Strict`, such as ``protocol`` and ``iot``)."""
    yamlio.check_numbers(Scenario, raw, source)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(_field_path(err["loc"])) or None
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        got = _short(repr(err.get("input")))
        raise InputError(source, loc, f"{msg}; got {got}{more}" if err["type"] != "missing" else msg) from None


def _short(text: str, most: int = 80) -> str:
    """A value as shown in an error: one line, at most ``most`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 3] + "..."


def _field_path(loc: tuple) -> list[str]:
    """The dotted key of a pydantic error location, without union-member tags such as ``str``."""
    out: list[str] = []
    for part in loc:
        text = str(part)
        if text in _UNION_TAGS or "[" in text:
            break  # past this point pydantic names the type it tried, not a key
        out.append(text)
    return out


_UNION_TAGS = {"str", "int", "float", "bool", "dict", "list", "none"}


def apply_sets(raw: dict, sets: list[str], source: str = "--set") -> dict:
    """Apply ``key.path=value`` overrides (YAML scalars) to a copy of ``raw``; unknown paths are errors."""
    out = copy.deepcopy(raw)
    for item in sets:
        path, parts, text = yamlio.split_set(item)
        _check_path(Scenario, parts, path)
        try:
            value = yamlio.load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        node = out
        for part in parts[:-1]:
            key: Any = _yaml_key(part)
            if isinstance(node, list):
                node = node[_index(node, part, path)]
                continue
            if not isinstance(node.get(key), dict | list):
                node[key] = {}  # absent, or a preset name being replaced by explicit sub-keys
            node = node[key]
        last: Any = _yaml_key(parts[-1])
        if isinstance(node, list):
            node[_index(node, parts[-1], path)] = value
        else:
            node[last] = value
    return out


def _index(node: list, part: str, path: str) -> int:
    """A list position named in a ``--set`` path, or an InputError saying which positions exist."""
    try:
        i = int(part)
    except ValueError:
        raise InputError("--set", path, f"{part!r} is not a list position (0 to {len(node) - 1})") from None
    if not -len(node) <= i < len(node):
        raise InputError("--set", path, f"position {i} is out of range: the list has {len(node)} items")
    return i


def _yaml_key(part: str) -> Any:
    try:
        return yamlio.load(part) if part.lstrip("-").replace(".", "", 1).isdigit() else part
    except yaml.YAMLError:  # pragma: no cover
        return part


def _unwrap(annotation: Any) -> list[Any]:
    """The alternatives of an annotation (Optional/Union/Annotated unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for a in typing.get_args(annotation):
            out.extend(_unwrap(a))
        return out
    return [annotation]


def _check_path(model: Any, parts: list[str], full: str) -> None:
    """Raise InputError unless ``parts`` names a key of the schema (mappings accept any sub-key)."""
    if not parts:
        return
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise InputError("--set", full, "unknown key")
    head, rest = parts[0], parts[1:]
    fields = model.model_fields
    if head not in fields:
        raise InputError("--set", full, f"unknown key {head!r}; known here: {', '.join(fields)}")
    if not rest:
        return
    alts = _unwrap(fields[head].annotation)
    for alt in alts:
        origin = typing.get_origin(alt)
        if origin in (dict, list):
            return
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            _check_path(alt, rest, full)
            return
    raise InputError("--set", full, f"{head!r} has no sub-keys")


# -- reference ---------------------------------------------------------------------------------------------


def _type_name(annotation: Any) -> str:
    alts = _unwrap(annotation)
    names = []
    for a in alts:
        if a is type(None):
            names.append("null")
        elif typing.get_origin(a) is Literal:
            names.append(" | ".join(repr(x) for x in typing.get_args(a)))
        elif typing.get_origin(a) is dict:
            names.append("mapping")
        elif typing.get_origin(a) is list:
            names.append("list")
        elif isinstance(a, type):
            names.append(a.__name__ if not issubclass(a, BaseModel) else "section")
        else:
            names.append(str(a))
    return " | ".join(names)


def _default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:  # pragma: no cover
            return "-"
        if isinstance(value, BaseModel):
            return "(section)"
        return repr(value)
    d = field.default
    return d.isoformat() if isinstance(d, datetime) else repr(d)


def reference_markdown() -> str:
    """Markdown reference of every scenario key, generated from the schema's field descriptions."""
    lines = [
        "# Scenario reference",
        "",
        "Generated from `sim/scenario.py` (`reference_markdown()`). PF = shared/reference/protocol-facts.md.",
        "Override any key with `--set key.path=value`.",
        "",
    ]

    def walk(model: type[BaseModel], prefix: str) -> None:
        rows = []
        subs = []
        for name, f in model.model_fields.items():
            key = f"{prefix}{name}"
            sub = next((a for a in _unwrap(f.annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)
            if sub is not None:
                subs.append((key, sub))
                if f.description:
                    rows.append(f"| `{key}` | section | {_default_text(f)} | {f.description} |")
                continue
            desc = (f.description or f"(undocumented in the schema: see {model.__module__})").replace("|", "\\|")
            rows.append(f"| `{key}` | {_type_name(f.annotation).replace('|', 'or')} | `{_default_text(f)}` | {desc} |")
        title = prefix.rstrip(".") or "top level"
        lines.extend([f"## `{title}`", "", (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else "", ""])
        lines.extend(["| key | type | default | meaning |", "|---|---|---|---|", *rows, ""])
        for key, sub in subs:
            walk(sub, f"{key}.")

    walk(Scenario, "")
    return "\n".join(lines)


def scenario_dict(scenario: Scenario) -> dict:
    """The resolved scenario as plain JSON-ready data (what run.json records)."""
    return scenario.model_dump(mode="json")
