"""Resume: every finished run is stored, keyed by what determines it.

Why a key and not a point label: ``p003`` means nothing once a study changes, but a run is fully determined
by its resolved scenario (every key, defaults included, with its seed), the plans (their full rules), the
replication and the package version. :func:`run_key` hashes exactly those, so re-running the same study into
the same directory computes only what is missing, and editing one value recomputes only the points it moves.

The store is ``DIR/runs.jsonl``, one JSON record per finished run, appended and flushed as each run finishes:
a killed sweep loses at most the runs in flight (a half-written last line is ignored on reading). Failed runs
are recorded too (their error is in the tables) but count as missing, so the next sweep retries them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

STORE = "runs.jsonl"


def run_key(scenario_doc: dict, plans: list[dict], replication: int, seed: int, version: str,
            keep_series: bool = False) -> str:
    """sha256 of the canonical JSON of everything that determines a run."""
    doc = {"scenario": scenario_doc, "plans": plans, "replication": replication, "seed": seed,
           "version": version, "keep_series": keep_series}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RunStore:
    """Append-only record of finished runs in ``DIR/runs.jsonl``."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / STORE
        self._fh = None

    def load(self) -> dict[str, dict[str, Any]]:
        """Every successful run stored so far, by key (later records win; torn lines are skipped)."""
        done: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return done
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the line a kill cut short
                if isinstance(rec, dict) and "key" in rec:
                    if rec.get("error"):
                        done.pop(rec["key"], None)
                    else:
                        done[rec["key"]] = rec
        return done

    def append(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._repair_tail()
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
        self._fh.flush()  # in the OS's hands: survives a killed process

    def _repair_tail(self) -> None:
        """A kill mid-write leaves a line without its newline: end it, so the next record starts clean."""
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb+") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
