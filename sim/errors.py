"""One exception for every kind of bad input.

The CLI turns an :class:`InputError` into a single line on stderr and exit status 2, and writes
nothing (the message is kept to one line: newlines in quoted values or library messages are folded). Its message always names the file, the field (a dotted path such as
``charges.0.unit_price``) and what is wrong, so a user can fix the input without reading code.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: a file, the field inside it, and what is wrong with it."""

    def __init__(self, source: str | None, field: str | None, problem: str):
        self.source = source
        self.field = field
        self.problem = problem
        where = ": ".join(part for part in (source, field) if part)
        text = f"{where}: {problem}" if where else problem
        super().__init__(" ".join(text.split()))  # one line, whatever a value or a library put in it
