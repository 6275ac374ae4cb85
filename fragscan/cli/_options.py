"""Command options drawn from the settings models' fields, so that each default and help text is written
once, in the field that the option fills (and that the report records)."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from rich.markup import escape

_FIELD: Any = object()  # "the field's own default"
# Plugins are a command's concern, loaded before any name is looked up; `fragscan mask` words its own.
PLUGIN_HELP = "Load this plugin .py file first (repeatable)."


def option(
    model: type[BaseModel], name: str, *declarations: str, default: Any = _FIELD, text: bool = False, **extra: Any
) -> Any:
    """``typer.Option`` for the field ``name`` of ``model``: its default (``default`` overrides it where the
    command means something else by leaving the option out), its description as the help text. ``text``:
    the option is parsed as a string (a number or 'auto', a comma-separated list), so the default is shown
    as one."""
    return typer.Option(_default(model, name, default, text), *declarations, help=help_text(model, name), **extra)


def argument(model: type[BaseModel], name: str, *, default: Any = _FIELD) -> Any:
    """``typer.Argument`` for the field ``name`` of ``model``, as :func:`option`."""
    return typer.Argument(_default(model, name, default, False), help=help_text(model, name))


def help_text(model: type[BaseModel], name: str) -> str:
    """The field's description as a sentence. '[ours]' marks a choice in the report's settings; in --help
    it is noise, and rich would take it for markup."""
    description = model.model_fields[name].description
    if not description:
        raise TypeError(f"{model.__name__}.{name} has no description to serve as its option's help")
    description = description.removeprefix("[ours] ")
    return escape(description[0].upper() + description[1:] + ("" if description.endswith(".") else "."))


def _default(model: type[BaseModel], name: str, default: Any, text: bool) -> Any:
    if default is _FIELD:
        default = model.model_fields[name].default
    if default is PydanticUndefined:
        return ...
    if isinstance(default, tuple):  # click takes a repeatable option's default as a list
        return ",".join(default) if text else list(default)
    return str(default) if text else default
