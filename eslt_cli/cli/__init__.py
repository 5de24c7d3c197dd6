"""The ``eslt`` command: one thin module per subcommand over the core.

Errors from the core (:class:`~eslt_cli.errors.EsltError`) become one line on
stderr and exit code 2 (bad input) or 1 (failed run); ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from eslt_cli import __version__
from eslt_cli.cli import common, lmc, plot, prune, sharpness, show, train
from eslt_cli.cli import permute as permute_cmd
from eslt_cli.cli import transfer as transfer_cmd
from eslt_cli.errors import EsltError

app = typer.Typer(
    name="eslt",
    help="Find and study lottery tickets in evolution strategies (Lange & Sprekeler, ICML 2023).\n\n"
    "Every step reads and writes Orbax checkpoint folders; stdout carries their paths, so steps pipe:\n\n"
    "  eslt train --task fashion_mnist | eslt prune --snr | eslt train",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=True,
)
DEBUG = False


def _version(value: bool) -> None:
    if value:
        print(f"eslt {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summaries on stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Global options."""
    global DEBUG
    DEBUG = debug or bool(os.environ.get("ESLT_DEBUG"))
    common.QUIET = quiet


app.command("train", no_args_is_help=False)(train.train)
app.command("prune")(prune.prune)
app.command("plot")(plot.plot)
app.command("show")(show.show)
app.command("lmc")(lmc.lmc)
app.command("sharpness")(sharpness.sharpness)
app.command("permute")(permute_cmd.permute)
app.command("transfer")(transfer_cmd.transfer)


def main() -> None:
    """Console-script entry point."""
    try:
        code = app(prog_name="eslt", standalone_mode=False)
    except typer.TyperException as exc:  # usage errors, in one line like ours
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `eslt`: the help, for people
            common.console.print(exc.format_message(), highlight=False, markup=False)
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        common.console.print(f"eslt: error: {exc.format_message()}{hint}", highlight=False, markup=False)
        sys.exit(exc.exit_code)
    except typer.Abort:
        common.console.print("eslt: interrupted", highlight=False)
        sys.exit(130)
    except EsltError as exc:
        if DEBUG:
            raise
        common.console.print(f"eslt: error: {exc}", highlight=False, markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        common.console.print("eslt: interrupted", highlight=False)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
