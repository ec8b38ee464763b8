"""Entry point of ``agenticrs``: global options, sub-commands, one-line errors."""
from __future__ import annotations

import errno
import logging
import os
import re
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from designer.cli.output import err
from designer.cli.services import Options

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="AgenticRS design agent: evolve recommender agents, review and version them.")

GLOBAL_OPTIONS = ("--workspace", "--db")
GLOBAL_FLAGS = ("--verbose", "-v")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version
        sys.stdout.write(f"agenticrs {version('agenticrs')}\n")
        raise typer.Exit()


@app.callback()
def root(ctx: typer.Context,
         workspace: Path = typer.Option(Path("runs"), "--workspace", envvar="AGENTICRS_WORKSPACE",
                                        help="workspace folder (default ./runs)"),
         db: Optional[str] = typer.Option(None, "--db", envvar="AGENTICRS_DB",
                                          help="database URL, e.g. postgresql+psycopg://user@host/db"),
         verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging on stderr"),
         version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                      help="print the version and exit")) -> None:
    """Global options; they may also be given after the command."""
    _setup_logging(verbose)
    ctx.obj = Options(workspace=workspace, db=db)


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err, show_time=False, show_path=False)])
    logging.getLogger("optuna").setLevel(logging.WARNING)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--workspace X``/``--db X`` and ``-v``/``--verbose`` from anywhere to the front,
    so both orders work (no sub-command has options of these names)."""
    front, rest, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        if arg in GLOBAL_FLAGS:
            front.append(arg)
            i += 1
            continue
        if arg in GLOBAL_OPTIONS and i + 1 < len(argv):
            front += [arg, argv[i + 1]]
            i += 2
            continue
        if any(arg.startswith(o + "=") for o in GLOBAL_OPTIONS):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _register() -> None:
    from designer.cli import (agents, compose, design, evaluate, evolve, history, init, llm_logs, pipelines,
                              report, review)
    for module in (init, agents, pipelines, history, review, design, compose, evolve, evaluate, report, llm_logs):
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; expected errors print one line and exit 1 (usage errors exit 2)."""
    from designer.errors import DesignerError, UsageError
    from knowledge_base.errors import KnowledgeBaseError
    from sandbox.errors import SandboxError
    from typer.main import get_command
    from designer.cli.metavars import set_metavars
    _register()
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    command = get_command(app)
    set_metavars(command)
    try:
        code = command.main(args=args, prog_name="agenticrs", standalone_mode=False)
    except UsageError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        sys.exit(2)
    except (DesignerError, KnowledgeBaseError, SandboxError) as e:   # one root per package
        err.print(f"[bold red]error:[/] {escape(in_cli_words(str(e)))}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted: what was recorded is kept; run the same command to continue")
        sys.exit(130)
    except _click_exceptions() as e:
        e.show()
        sys.exit(e.exit_code)
    except _click_abort():
        sys.exit(1)
    except SystemExit:
        raise
    except Exception as e:  # the last line of defence: one line, the traceback only with -v
        err.print(f"[bold red]error:[/] {unexpected_message(e)}", highlight=False)
        logging.getLogger(__name__).debug("traceback", exc_info=True)
        sys.exit(1)
    if code == 130:  # typer turns Ctrl-C into a returned 130 without standalone mode
        err.print("interrupted: what was recorded is kept; run the same command to continue")
    if isinstance(code, int) and code:
        sys.exit(code)


PYTHON_COLUMNS = re.compile(r"Map them with columns=\{.*?\} \(or the CLI's column-mapping options\)")


def in_cli_words(message: str) -> str:
    """A library message as a CLI user acts on it: the data loader's Python-style column
    mapping becomes the ``--columns`` flag."""
    return PYTHON_COLUMNS.sub("Map them with --columns user=COL,item=COL,timestamp=COL[,rating=COL]", message)


NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def unexpected_message(error: Exception) -> str:
    """One line for an error no package translated: what happened and what to do next."""
    if isinstance(error, OSError) and error.errno in NO_SPACE:
        return (f"no space left on the device{_where(error)}: free some space (old runs' experiments/ "
                "folders can go), then run the same command again; what was recorded is kept")
    if isinstance(error, OSError) and error.errno in NOT_WRITABLE:
        return (f"{error.strerror}{_where(error)}: use a workspace you can write (--workspace DIR) "
                "or fix the permissions, then run the same command again")
    if isinstance(error, OSError):
        return f"{error.strerror or error}{_where(error)}; fix it and run the same command again"
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, UnicodeError) or "utf8" in text.lower().replace("-", ""):
        return (f"cannot read the data: {text}; the file must be UTF-8 text (convert it, "
                "e.g. with iconv -f latin1 -t utf-8)")
    return (f"unexpected {type(error).__name__}: {text} (a bug: run again with --verbose for "
            "the traceback and report it)")


def _where(error: OSError) -> str:
    return f" ({error.filename})" if error.filename else ""


def _click_abort() -> tuple[type[Exception], ...]:
    import click
    found: list[type[Exception]] = [click.exceptions.Abort]
    try:
        from typer._click.exceptions import Abort
        found.append(Abort)
    except ImportError:
        pass
    return tuple(found)


def _click_exceptions() -> tuple[type[Exception], ...]:
    """Click's exception class, and the copy newer typer versions vendor."""
    import click
    found: list[type[Exception]] = [click.ClickException]
    try:
        from typer._click.exceptions import ClickException as Vendored  # typer >= 0.20
        found.append(Vendored)
    except ImportError:
        pass
    return tuple(found)


if __name__ == "__main__":
    main()
