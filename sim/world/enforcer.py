"""The hook through which a plan's limits act on the world during a run.

Why a hook: plans carry restrictions (messages per second across the app, per-minute limits whose
breach suspends an element for one minute, storage caps that discard new messages). Those change
what happens next (rejected messages, reconnect storms after a suspension, discarded stores), so they
cannot be applied to the usage afterwards. The world therefore consults an :class:`Enforcer` once per
simulated day, at three points of its pipeline, *before* outcomes are decided:

1. :meth:`admit_messages` - after the day's messages are generated (time-sorted view given), before
   fan-out: return a mask of accepted originated messages (rate limits per second/minute).
2. :meth:`suspensions` - after connection timelines are built: return ``[a, b)`` windows (ms from the
   period start) during which all connections are closed by the server and new ones rejected; the
   world cuts every connection at ``a`` and makes clients that still want to be online reconnect at
   ``b`` + backoff (a reconnect storm, each reconnect paying a handshake). Messages whose sender is
   offline because of a suspension are rejected.
3. :meth:`admit_storage` - for copies about to be stored for offline recipients: return a mask of
   copies that may be stored (a storage cap discards the others; they count as ``dropped``).

The default does nothing. Subclasses keep their own state (e.g. a token bucket) and can record what
they did in :attr:`report`, which the world adds to the usage document's ``enforcement`` section.
"""

from __future__ import annotations

import numpy as np


class Enforcer:
    """No-op enforcer: admits everything, never suspends."""

    def __init__(self) -> None:
        self.report: dict = {}

    def admit_messages(self, t_ms: np.ndarray, sender: np.ndarray, fanout: np.ndarray) -> np.ndarray | None:
        """Mask of accepted originated messages (``None`` = all). Arrays are sorted by time."""
        return None

    def suspensions(self, day_start_ms: int, day_end_ms: int, messages_per_minute: np.ndarray,
                    connections_per_minute: np.ndarray) -> list[tuple[int, int]]:
        """Windows ``[a, b)`` (ms) in which the app is suspended. Per-minute arrays cover the day."""
        return []

    def admit_storage(self, t_ms: np.ndarray, nbytes: np.ndarray, stored_level_bytes: float) -> np.ndarray | None:
        """Mask of copies that may be stored (``None`` = all), given the stored level at day start."""
        return None
