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


def _one_paragraph_command_help() -> None:
    """Join the first paragraph of a command's help into one line in the command list."""
    from typer import rich_utils

    command_help = getattr(rich_utils, "_make_command_help", None)
    if command_help is None or getattr(command_help, "_plain_help", False):
        return

    def one_paragraph(*, help_text: str, markup_mode: Any) -> Any:
        first, _, rest = help_text.strip().partition("\n\n")
        joined = " ".join(line.strip() for line in first.splitlines())
        return command_help(
            help_text=joined + ("\n\n" + rest if rest else ""), markup_mode=markup_mode
        )

    one_paragraph._plain_help = True  # type: ignore[attr-defined]
    rich_utils._make_command_help = one_paragraph


def _patching_rich_utils(format_help: Any) -> Any:
    def patched(self: Any, ctx: Any, formatter: Any) -> Any:
        _one_paragraph_command_help()
        return format_help(self, ctx, formatter)

    return patched


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
    # typer imports rich_utils (rich.markdown, markdown-it: ~0.1-0.2 s) only to render help or
    # an error; patch it then, not at start-up, so commands that print no help start faster.
    for command_class in (getattr(core, "TyperCommand", None), getattr(core, "TyperGroup", None)):
        format_help = getattr(command_class, "format_help", None)
        if format_help is not None:
            command_class.format_help = _patching_rich_utils(format_help)  # type: ignore[union-attr]
    option._plain_help = True
