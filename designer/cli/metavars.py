"""Real metavars in help pages: ``--agent NAME``, ``--wall-limit SECONDS``, a bare flag for
``--auto-approve``, instead of typer's ``<str>``/``<bool>``/``<float range>`` labels that
crowd option names out of an 80-column help page."""
from __future__ import annotations

from pathlib import Path
from typing import Any

SECONDS = ("time_budget", "wall_limit", "cpu_limit", "llm_timeout", "budget_seconds", "seconds")
BY_NAME = {"agent": "NAME", "pipeline": "NAME", "family": "NAME", "session": "NAME", "proposer": "NAME",
           "dataset": "NAME|FILE", "model": "MODEL", "api_base": "URL", "db": "URL", "status": "STATUS",
           "memory_mb": "MB", "output_mb": "MB", "budget_usd": "USD", "prices": "IN,OUT",
           "params": "JSON", "columns": "MAP", "sort": "KEY", "epsilon": "P", "temperature": "T",
           "sampler": "NAME", "parent_policy": "POLICY", "answer_format": "FORMAT", "split": "NAME",
           "executor_name": "NAME", "output": "FILE"}


def metavar_for(name: str, annotation: Any) -> str:
    """The metavar of option ``name`` (python name) with type ``annotation``."""
    if name in BY_NAME:
        return BY_NAME[name]
    if name in SECONDS:
        return "SECONDS"
    if annotation is int:
        return "N"
    if annotation is float:
        return "X"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "DIR" if name.endswith(("dir", "workspace")) else "FILE"
    return name.upper()


ARGUMENTS = {"experiment_id": "ID", "target": "FILE.py|FAMILY", "version": "vN"}


def set_metavars(command: Any) -> None:
    """Give every option and argument of ``command`` and its sub-commands (click objects
    built by typer) without an explicit metavar a real one; flags (``--help`` too) get none."""
    for param in getattr(command, "params", []):
        kind = getattr(param, "param_type_name", "")
        if kind == "argument":
            param.metavar = param.metavar or ARGUMENTS.get(param.name, (param.name or "").upper())
            param.display_type_rich = lambda ctx: None   # the name column already says it
        elif kind == "option" and param.metavar is None:
            param.metavar = "" if param.is_flag else metavar_for(param.name or "", param.type_descriptor.annotation)
    _bare_help_flag(command)
    for sub in getattr(command, "commands", {}).values():
        set_metavars(sub)


def _bare_help_flag(command: Any) -> None:
    """``--help`` is made when a page is printed; give it no metavar then."""
    made = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = made(ctx)
        if option is not None:
            option.metavar = ""
        return option
    command.get_help_option = get_help_option
