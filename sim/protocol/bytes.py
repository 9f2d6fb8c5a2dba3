"""Bytes one event puts on the wire, per direction and meter category (:class:`Bytes`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sim.meters import CATEGORIES, DIRECTIONS

_OTHER = {"out": "in", "in": "out"}


def _freeze(side: Mapping[str, float]) -> Mapping[str, float]:
    unknown = set(side) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown byte categories {sorted(unknown)}; known: {CATEGORIES}")
    # Zero entries are dropped so that equal traffic compares equal however it was built.
    return MappingProxyType({k: float(v) for k, v in side.items() if v})


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


@dataclass(frozen=True)
class Bytes:
    """Bytes one event puts on the wire: per direction ('out' server->client, 'in' client->server), per category.

    Immutable (read-only mappings, zero entries dropped); categories are those of :mod:`sim.meters`.
    """

    out: Mapping[str, float] = field(default_factory=dict)
    inb: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", _freeze(self.out))
        object.__setattr__(self, "inb", _freeze(self.inb))

    @classmethod
    def of(cls, direction: str, category: str, n: float) -> Bytes:
        """``n`` bytes of one category in one direction."""
        _check_direction(direction)
        return cls(out={category: n}) if direction == "out" else cls(inb={category: n})

    def side(self, direction: str) -> Mapping[str, float]:
        _check_direction(direction)
        return self.out if direction == "out" else self.inb

    def __add__(self, other: Bytes) -> Bytes:
        if not isinstance(other, Bytes):
            return NotImplemented

        def merge(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
            return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in a.keys() | b.keys()}

        return Bytes(merge(self.out, other.out), merge(self.inb, other.inb))

    def __radd__(self, other: object) -> Bytes:
        if other == 0:  # lets sum() start from its integer 0
            return self
        return NotImplemented

    def scaled(self, k: float) -> Bytes:
        """These bytes ``k`` times (e.g. ``k`` identical keep-alive cycles)."""
        return Bytes({c: v * k for c, v in self.out.items()}, {c: v * k for c, v in self.inb.items()})

    def total(self, direction: str, billed_only: bool = False) -> float:
        """All bytes in ``direction``; ``billed_only`` leaves out ``tcpip`` (absorbed, never billed)."""
        return float(sum(v for c, v in self.side(direction).items() if not (billed_only and c == "tcpip")))

    def get(self, direction: str, category: str) -> float:
        return float(self.side(direction).get(category, 0.0))

