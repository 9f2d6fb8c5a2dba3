"""Reading YAML (and JSON) files the way YAML 1.2 reads them, with errors that name the line.

PyYAML follows YAML 1.1, which surprises users of every file this project reads:

* ``6.0e9`` and ``1e5`` are *strings* in 1.1 (it wants ``6.0e+9``); usage and plan files are full of
  such numbers (the issue's own usage example writes ``3.0e9``), and ``--set population.users=1e5``
  should mean a number;
* ``off``, ``on``, ``yes``, ``no`` are booleans in 1.1, so ``tls: off`` would become ``False``.

:class:`Loader` resolves numbers and booleans as YAML 1.2 does (only ``true``/``false`` are booleans).
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from sim.errors import InputError


class Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats (1e9, 6.0e9) and booleans (true/false only)."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"),
)
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
    """Parse YAML text (raises yaml.YAMLError)."""
    return yaml.load(text, Loader=Loader)  # noqa: S506 -- a SafeLoader subclass


def parse(text: str, source: str, json_first: bool = False) -> Any:
    """Parse JSON or YAML text; a syntax error becomes an InputError naming the line and column."""
    if json_first:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(source, None, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    try:
        return load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(source, None, f"malformed YAML{where}: {problem}") from None
