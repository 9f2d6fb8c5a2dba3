"""Outputs appear whole: every file is written beside its target and moved into place (``os.replace``)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Files that mark a directory as an earlier sweep (so ``--out`` may reuse it).
SWEEP_MARKERS = ("study.json", "runs.jsonl")


def atomic_write(path: str | Path, write: Callable[[str], Any]) -> None:
    """``write(tmp_path)`` writes the content; the temp file then replaces ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, data: Any) -> None:
    def w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, default=str)
            fh.write("\n")

    atomic_write(path, w)


def check_sweep_dir(out: str | Path) -> Path:
    """``--out`` must be absent, empty, or an earlier sweep (resume); checked before anything runs."""
    from sim.run import check_out_dir

    return check_out_dir(out, earlier=lambda p: any((p / m).is_file() for m in SWEEP_MARKERS),
                         what=f"an earlier sweep (no {' or '.join(SWEEP_MARKERS)})", writes_inside=True)
