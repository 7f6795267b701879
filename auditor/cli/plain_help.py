"""Help screens that read the way people expect: ``--broker`` (a flag takes no value) and
``auditor run [OPTIONS] SPEC`` (an argument in capitals, as click and man pages write it).

Typer 0.2x prints a flag as ``--broker <bool>`` and a required argument as ``{spec}`` in the
usage line, both of which read as if something else were expected, and keeps a docstring's line
breaks in the command list (a sentence broken mid-line). `plain_help` adjusts these display
functions of typer's (display only: parsing is untouched); on a typer without them it does
nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["plain_help"]


def _argument_name(param: Any) -> str:
    name = param.metavar or param.name.upper()
    return name + ("..." if param.nargs != 1 else "")


def plain_help() -> None:
    from typer import core

    option, argument = getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)
    if option is None or getattr(option, "_plain_help", False):
        return
    shown_type = getattr(option, "display_type_rich", None)
    if shown_type is not None:

        def display_type_rich(self: Any, ctx: Any) -> str | None:
            if getattr(self, "is_flag", False) and self.metavar is None:
                return None  # a flag: nothing to type after it
            return shown_type(self, ctx)

        option.display_type_rich = display_type_rich
    if argument is not None and hasattr(argument, "_usage_display_name"):

        def usage_name(self: Any) -> str:
            name = _argument_name(self)
            return name if self.required else f"[{name}]"

        argument._usage_display_name = usage_name
        if hasattr(argument, "_rich_display_name"):
            argument._rich_display_name = _argument_name
    from typer import rich_utils

    command_help = getattr(rich_utils, "_make_command_help", None)
    if command_help is not None:

        def one_paragraph(*, help_text: str, markup_mode: Any) -> Any:
            first, _, rest = help_text.strip().partition("\n\n")
            joined = " ".join(line.strip() for line in first.splitlines())
            return command_help(
                help_text=joined + ("\n\n" + rest if rest else ""), markup_mode=markup_mode
            )

        rich_utils._make_command_help = one_paragraph
    option._plain_help = True
