"""YAML reading with YAML 1.2 numbers.

PyYAML follows YAML 1.1, where ``6.0e9`` and ``1e9`` are *strings* (1.1 wants ``6.0e+9``). Usage
and plan files are full of such numbers (the issue's own example writes ``3.0e9``), so every YAML
file the project reads goes through :func:`load`, whose loader resolves them as floats.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class Loader(yaml.SafeLoader):
    """SafeLoader that also reads 1e9, 6.0e9, 2.5E-3 as floats."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def load(text: str) -> Any:
    return yaml.load(text, Loader=Loader)  # noqa: S506 -- a SafeLoader subclass
