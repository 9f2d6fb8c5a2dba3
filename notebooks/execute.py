"""Execute the notebooks in a real Jupyter kernel and save them with their outputs.

    python notebooks/execute.py                       # every notebooks/*.ipynb, re-executed and saved in place
    python notebooks/execute.py what-if-tls.ipynb     # just this one
    python notebooks/execute.py --check               # execute, report, write nothing

Each notebook runs as Jupyter runs it: an ipykernel kernel on this interpreter (``sys.executable``, whatever
kernelspecs are or are not installed), working directory ``notebooks/``, a timeout per cell. Volatile metadata
(execution timestamps, the interpreter's exact version) is left out, so a re-run only changes what the notebook
computed. tests/test_notebooks.py executes notebooks with :func:`execute` too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent
CELL_TIMEOUT_S = 600
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


class ThisInterpreterKernelSpecs(KernelSpecManager):
    """Resolves every kernel name to ipykernel's own spec for this interpreter (``sys.executable``).

    A notebook must run against the installed ``sim``, not whatever a system-wide ``python3`` kernelspec points at.
    """

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        from ipykernel.kernelspec import RESOURCES, get_kernel_dict

        return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())


def execute(path: str | Path, *, cwd: str | Path = NOTEBOOK_DIR, timeout: int = CELL_TIMEOUT_S,
            cells: int | None = None) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` top to bottom in a fresh kernel started in ``cwd``; return it with outputs.

    ``cells`` keeps only the first that many cells (a quick partial run). A failing cell raises
    :class:`nbclient.exceptions.CellExecutionError` naming the cell and its traceback.
    """
    nb = nbformat.read(str(path), as_version=4)
    if cells is not None:
        nb.cells = nb.cells[:cells]
    km = KernelManager(kernel_spec_manager=ThisInterpreterKernelSpecs(), kernel_name="python3")
    client = NotebookClient(nb, km=km, kernel_name="python3", timeout=timeout, record_timing=False,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return strip_volatile(nb)


def strip_volatile(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop what changes from run to run or machine to machine without the notebook's results changing."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python", "file_extension": ".py", "mimetype": "text/x-python"}
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: every notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="execute only; do not write the outputs back")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = [Path(p) if Path(p).exists() else NOTEBOOK_DIR / p for p in args.notebooks]
    for path in paths or sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        t0 = time.perf_counter()
        nb = execute(path, timeout=args.timeout)
        nbformat.validate(nb)
        if not args.check:
            nbformat.write(nb, str(path))
        print(f"{path.name}: executed in {time.perf_counter() - t0:.1f} s{'' if args.check else ', saved'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
