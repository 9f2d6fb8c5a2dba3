"""Custom client behaviour: a user's own client class or generator, named in the scenario by import path.

A scenario's ``clients`` list gives each behaviour a share of the users::

    engine: events
    clients:
      - behaviour: mybots:Every10s      # module:attribute (or module.attribute)
        share: 0.05
        params: {interval_s: 10}

The module must be importable: on ``PYTHONPATH``, installed, or in the directory ``sim`` runs in.
The class must subclass :class:`sim.world.events.client.Client` and implement ``run()`` as a SimPy
generator; a plain generator function ``def behaviour(client): ...`` is wrapped into one (it receives
the :class:`Client`, whose methods connect, send, ping and sleep). See ``notebooks/custom-client.ipynb``.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys


@contextlib.contextmanager
def _cwd_on_path():
    """Modules next to where ``sim`` runs are importable (the console script does not put the current
    directory on ``sys.path``, ``python -m sim`` does)."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)


def resolve_behaviour(path: str):
    """The class or generator function ``path`` names; ``ValueError`` with a one-line reason otherwise."""
    if ":" in path:
        mod_name, _, attr = path.partition(":")
    else:
        mod_name, _, attr = path.rpartition(".")
    if not mod_name or not attr:
        raise ValueError(f"{path!r} is not a dotted import path (package.module:Name)")
    try:
        with _cwd_on_path():
            mod = importlib.import_module(mod_name)
    except Exception as exc:  # noqa: BLE001 - a user's module may raise anything on import
        raise ValueError(f"cannot import module {mod_name!r}: {type(exc).__name__}: {exc}") from None
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    from sim.world.events.client import Client

    if inspect.isclass(obj):
        if not issubclass(obj, Client):
            raise ValueError(f"{path!r} is a class but not a subclass of sim.world.events.Client")
        return obj
    if inspect.isgeneratorfunction(obj):
        return obj
    raise ValueError(f"{path!r} is neither a Client subclass nor a generator function")
