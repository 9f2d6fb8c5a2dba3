"""Named, reproducible random streams.

Why: a run must give the same usage for the same seed however the code evolves around it. If
streams were handed out in call order, adding one draw (or one new feature) anywhere would shift
every later stream and change all results. Here each purpose gets its own
:class:`numpy.random.SeedSequence` whose spawn key is derived from *stable names* (``"sessions"``,
``"messages"``, day number ...) with a hash that does not depend on Python's hash randomisation, so
streams are independent of each other and of the order in which they are requested.

    streams = Streams(seed=42)
    rng = streams.generator("sessions", day)        # numpy Generator for sessions of one day
    ss = streams.seed_sequence("iot")                # to hand to a sub-model (the IoT fleet)
"""

from __future__ import annotations

import hashlib

import numpy as np


def name_key(part: str | int) -> int:
    """A stable 32-bit integer for a stream-name part (ints pass through, strings are hashed)."""
    if isinstance(part, bool):
        part = int(part)
    if isinstance(part, int | np.integer):
        if part < 0:
            raise ValueError(f"stream key parts must be non-negative, got {part}")
        return int(part)
    digest = hashlib.blake2b(str(part).encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "little")


class Streams:
    """A family of independent random streams for one run (``seed``) and replication."""

    def __init__(self, seed: int, replication: int = 0) -> None:
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.seed = int(seed)
        self.replication = int(replication)

    def seed_sequence(self, *names: str | int) -> np.random.SeedSequence:
        """The SeedSequence for the stream named by ``names`` (e.g. ``("messages", 3)``)."""
        if not names:
            raise ValueError("a stream needs at least one name")
        key = (self.replication, *(name_key(n) for n in names))
        return np.random.SeedSequence(entropy=self.seed, spawn_key=key)

    def generator(self, *names: str | int) -> np.random.Generator:
        """A fresh PCG64 generator for the stream named by ``names``."""
        return np.random.Generator(np.random.PCG64(self.seed_sequence(*names)))
