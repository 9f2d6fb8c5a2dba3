"""Reading YAML (and JSON) files the way YAML 1.2 reads them, safely, with errors that name the line.

PyYAML follows YAML 1.1, which surprises users of every file this project reads:

* ``6.0e9`` and ``1e5`` are *strings* in 1.1 (it wants ``6.0e+9``); usage and plan files are full of
  such numbers (the issue's own usage example writes ``3.0e9``), and ``--set population.users=1e5``
  should mean a number;
* ``off``, ``on``, ``yes``, ``no`` are booleans in 1.1, so ``tls: off`` would become ``False``.

:class:`Loader` resolves numbers and booleans as YAML 1.2 does (only ``true``/``false`` are booleans).

Every input file is untrusted, so reading is bounded before any Python object is built:

* :func:`read_text` refuses directories, devices and FIFOs (``/dev/null``, a pipe that never ends),
  files over :data:`MAX_FILE_BYTES`, binary files (a NUL byte) and text that is not UTF-8;
* the composer counts the nodes that aliases expand to and refuses more than :data:`MAX_ALIAS_NODES`
  (a "billion laughs" file is a few lines whose aliases expand to 10^9 nodes: PyYAML shares the
  nodes, but anything that walks the result -- validation, ``deepcopy``, ``json.dumps`` -- does not);
  the count is taken while composing, before construction, so a bomb costs microseconds;
* nesting deeper than :data:`MAX_DEPTH` is refused (YAML while composing, JSON through the
  decoder's own recursion guard plus a check of the result), never a ``RecursionError``;
* a key given twice in one mapping is an error naming the key (YAML and JSON): last-one-wins would
  silently drop half of what the user wrote;
* JSON ``NaN``/``Infinity`` and numbers that overflow a float are refused; a YAML date that does not
  exist (``2026-02-30``) stays a string, so the field's own validation names the field.

:func:`check_numbers` then walks parsed data beside a pydantic schema and refuses NaN/infinity
anywhere and booleans where the schema wants a number (pydantic's lax mode reads ``true`` as 1).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from sim.errors import InputError

#: Largest input file read (bytes): a 92-day usage file of one-minute series is ~40 MB of JSON.
MAX_FILE_BYTES = 256 * 2**20
#: Most nodes that aliases may expand to in one document.
MAX_ALIAS_NODES = 100_000
#: Deepest nesting of lists/mappings accepted (the schemas need 4).
MAX_DEPTH = 64


class _BoundedComposer(yaml.composer.Composer):
    """Composer that refuses deep nesting and alias expansion beyond the limits while composing."""

    def compose_document(self):
        self._depth, self._expanded, self._sizes = 0, 0, {}
        self._nodes = 0
        return super().compose_document()

    def compose_node(self, parent, index):
        event = self.peek_event()
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        before = self._nodes
        node = super().compose_node(parent, index)
        self._depth -= 1
        if isinstance(event, yaml.AliasEvent):
            size = self._sizes.get(id(node), 1)
            self._expanded += size
            self._nodes += size
            if self._expanded > MAX_ALIAS_NODES:
                raise ComposerError(None, None, f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes "
                                    "(an alias bomb?)", event.start_mark)
        else:
            self._nodes += 1
            if event.anchor is not None:
                self._sizes[id(node)] = self._nodes - before
        return node


class _CheckedConstructor(yaml.constructor.SafeConstructor):
    """SafeConstructor that refuses duplicate keys and leaves impossible dates as strings."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, typing.Hashable) and key in seen:
                    raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                if isinstance(key, typing.Hashable):
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:  # 2026-02-30: the field's validation says which field
            return self.construct_scalar(node)

    def construct_yaml_int(self, node):
        try:
            return super().construct_yaml_int(node)
        except ValueError as exc:  # more digits than int() converts
            raise ConstructorError(None, None, f"integer out of range: {exc}", node.start_mark) from None


_CheckedConstructor.add_constructor("tag:yaml.org,2002:timestamp", _CheckedConstructor.construct_yaml_timestamp)
_CheckedConstructor.add_constructor("tag:yaml.org,2002:int", _CheckedConstructor.construct_yaml_int)


class Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _BoundedComposer,
             _CheckedConstructor, yaml.resolver.Resolver):
    """Safe loader with YAML 1.2 floats (1e9, 6.0e9) and booleans (true/false only), bounded and strict."""

    def __init__(self, stream):
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _BoundedComposer.__init__(self)
        _CheckedConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


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
    """Parse YAML text (raises yaml.YAMLError, also for bombs, deep nesting and duplicate keys)."""
    return yaml.load(text, Loader=Loader)  # noqa: S506 -- a SafeConstructor subclass


# -- files -----------------------------------------------------------------------------------------------


def read_mapping(path: str | Path, kind: str, problem: str) -> dict:
    """A YAML file that must hold a mapping (a scenario, study, fleet or tune file); ``problem`` is the one line
    said when it holds something else."""
    raw = parse(read_text(path, kind), str(path))
    if not isinstance(raw, dict):
        raise InputError(str(path), None, problem)
    return raw


def split_set(item: str) -> tuple[str, list[str], str]:
    """A ``--set key.path=value`` item as ``(path, parts, value text)``; one InputError for each way it is
    malformed (the syntax every file kind's ``--set`` shares: scenarios, studies, fleets, tune files)."""
    if "=" not in item:
        raise InputError("--set", item, "expected key.path=value")
    path, text = item.split("=", 1)
    parts = path.strip().split(".")
    if not all(parts):
        raise InputError("--set", path, "empty key in path")
    return path, parts, text


def read_text(path: str | Path, kind: str) -> str:
    """The text of a regular, UTF-8, non-binary file of bounded size; anything else is an InputError."""
    source = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(source, None, f"no such {kind}") from None
    except OSError as exc:
        raise InputError(source, None, f"cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise InputError(source, None, f"{what}; expected a {kind}")
    if st.st_size > MAX_FILE_BYTES:
        raise InputError(source, None, f"{st.st_size:,} bytes; a {kind} may have at most {MAX_FILE_BYTES:,}")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(source, None, f"cannot read: {exc.strerror}") from None
    return decode(data, source, kind)


def decode(data: bytes, source: str, kind: str) -> str:
    """UTF-8 text without NUL bytes, or an InputError saying where the file stops being text."""
    if len(data) > MAX_FILE_BYTES:
        raise InputError(source, None, f"more than {MAX_FILE_BYTES:,} bytes; too large for a {kind}")
    nul = data.find(b"\0")
    if nul >= 0:
        raise InputError(source, None, f"binary file (NUL byte at offset {nul}); expected a {kind} (UTF-8 text)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(source, None, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                         f"expected a {kind}") from None


# -- parsing ---------------------------------------------------------------------------------------------


class _Duplicate(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(f"duplicate key {key!r}")
        out[key] = value
    return out


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Duplicate(f"number {text} overflows a float")
    return value


def _constant(text: str) -> None:
    raise _Duplicate(f"{text} is not a number this project accepts")


def load_json(text: str, source: str) -> Any:
    """Parse JSON strictly: no duplicate keys, NaN/Infinity or overflowing numbers, bounded nesting."""
    try:
        doc = json.loads(text, object_pairs_hook=_pairs, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise InputError(source, None, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InputError(source, None, f"malformed JSON: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # _Duplicate, or an integer with more digits than int() converts
        raise InputError(source, None, f"malformed JSON: {str(exc).split(';')[0]}") from None
    if _depth(doc) > MAX_DEPTH:
        raise InputError(source, None, f"malformed JSON: nested deeper than {MAX_DEPTH} levels")
    return doc


def _depth(doc: Any) -> int:
    """Nesting depth of parsed data, without recursion."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, d = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, d)
        if d <= MAX_DEPTH:
            stack.extend((c, d + 1) for c in children if isinstance(c, dict | list))
    return deepest


def parse(text: str, source: str, json_first: bool = False) -> Any:
    """Parse JSON or YAML text; a syntax error becomes an InputError naming the line and column."""
    if json_first:
        return load_json(text, source)
    try:
        return load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(source, None, f"malformed YAML{where}: {problem}") from None
    except RecursionError:  # pragma: no cover - the composer's depth limit comes first
        raise InputError(source, None, f"malformed YAML: nested deeper than {MAX_DEPTH} levels") from None


# -- numbers beside a schema -------------------------------------------------------------------------------


def alternatives(annotation: Any) -> list[Any]:
    """The alternatives of an annotation (Optional/Union/Annotated unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return alternatives(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [a for arg in typing.get_args(annotation) for a in alternatives(arg)]
    return [annotation]


def wants_number(annotation: Any) -> bool:
    """True when a field takes numbers but not booleans (so ``true`` there is a mistake, not 1)."""
    alts = alternatives(annotation)
    if bool in alts:
        return False
    for alt in alts:
        if alt in (int, float, Decimal):
            return True
        if typing.get_origin(alt) is Literal and all(type(a) is int for a in typing.get_args(alt)):
            return True
    return False


def check_numbers(annotation: Any, data: Any, source: str, path: str = "") -> None:
    """Refuse NaN/infinity anywhere in ``data``, and booleans where ``annotation`` wants a number."""
    if isinstance(data, float) and not math.isfinite(data):
        raise InputError(source, path or None, f"must be a finite number, got {data!r}")
    if isinstance(data, bool):
        if wants_number(annotation):
            raise InputError(source, path or None, f"expected a number, got {str(data).lower()}")
        return
    if isinstance(data, dict):
        for key, value in data.items():
            check_numbers(_member(annotation, key), value, source, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            check_numbers(_member(annotation, i), value, source, f"{path}.{i}" if path else str(i))


def _member(annotation: Any, key: Any) -> Any:
    """The annotation of ``key`` inside a value annotated ``annotation`` (Any when unknown)."""
    from pydantic import BaseModel

    for alt in alternatives(annotation):
        origin, args = typing.get_origin(alt), typing.get_args(alt)
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            field = alt.model_fields.get(key) if isinstance(key, str) else None
            return field.annotation if field is not None else Any
        if origin is dict and isinstance(key, str | int | float) and len(args) == 2:
            return args[1]
        if origin in (list, set, frozenset) and isinstance(key, int) and args:
            return args[0]
        if origin is tuple and isinstance(key, int) and args:
            return args[0] if len(args) == 2 and args[1] is Ellipsis else args[min(key, len(args) - 1)]
    return Any
