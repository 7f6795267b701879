"""The rich consoles the commands print to, made on first use.

rich (its console, tables, markup) costs ~40 ms of start-up, which a command that prints plain
JSON (`auditor similarity`) or nothing need not pay; every other command gets the same
`rich.console.Console` as before, created when it first prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["lazy_console"]


class _OnFirstUse:
    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            console: Any = Console(**self._options)
            # rich fixes the size for good from COLUMNS/LINES set when a console is built.
            # Built at the first print, that would be whatever environment the first print
            # saw (a test's `env={"COLUMNS": ...}`); read them at each print instead, which is
            # what a console built at start-up without them did (same values in one process).
            console.width = None
            console.height = None
            self._console = console
        return getattr(self._console, name)


def lazy_console(*, stderr: bool = False) -> Console:
    """A `rich.console.Console(stderr=stderr)` created when one of its attributes is first
    read."""
    return cast("Console", _OnFirstUse(stderr=stderr))
