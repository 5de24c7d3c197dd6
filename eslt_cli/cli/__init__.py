"""The ``eslt`` command: one thin module per subcommand over the core.

Errors from the core (:class:`~eslt_cli.errors.EsltError`) become one line on
stderr and exit code 2 (bad input) or 1 (failed run); ``--debug`` shows the
traceback instead.

The subcommand modules import the core (and with it jax) inside their command
functions, after :func:`~eslt_cli.cli.common.setup_runtime` has set the XLA
flags jax reads when it is imported, and so that ``--help`` and completion do
not pay for jax's import.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Annotated, Any

import typer

from eslt_cli import __version__, errors
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


# The global options, accepted before the command (``eslt -q train``) and after it (``eslt train -q``).
DEBUG_OPTION = Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")]
QUIET_OPTION = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summaries on stderr.")]


def _set_globals(debug: bool, quiet: bool) -> None:
    """Apply --debug and --quiet; either place turns them on, neither turns them off."""
    global DEBUG
    DEBUG = DEBUG or debug or bool(os.environ.get("ESLT_DEBUG"))
    common.QUIET = common.QUIET or quiet
    if DEBUG:  # library errors too (setup_runtime keeps only fatal ones)
        for name in ("absl", "asyncio", "orbax"):
            logging.getLogger(name).setLevel(logging.ERROR)


@app.callback()
def root(
    debug: DEBUG_OPTION = False,
    quiet: QUIET_OPTION = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Global options."""
    global DEBUG
    DEBUG, common.QUIET = False, False  # each invocation starts from its own options
    _set_globals(debug, quiet)


def with_globals(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with the global options added at the end of its own, for Typer to declare.

    Every subcommand is registered through this, so none declares them by hand and
    its help lists them.
    """
    signature = inspect.signature(command, eval_str=True)
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=False, annotation=annotation)
        for name, annotation in (("quiet", QUIET_OPTION), ("debug", DEBUG_OPTION))
    ]
    if any(p.name in ("quiet", "debug") for p in signature.parameters.values()):
        raise TypeError(f"{command.__name__} declares a global option itself")

    @functools.wraps(command)
    def wrapper(*args: Any, quiet: bool = False, debug: bool = False, **kwargs: Any) -> Any:
        _set_globals(debug, quiet)
        return command(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**command.__annotations__, "quiet": QUIET_OPTION, "debug": DEBUG_OPTION}
    return wrapper


app.command("train", no_args_is_help=False)(with_globals(train.train))
app.command("prune")(with_globals(prune.prune))
app.command("plot")(with_globals(plot.plot))
app.command("show")(with_globals(show.show))
app.command("lmc")(with_globals(lmc.lmc))
app.command("sharpness")(with_globals(sharpness.sharpness))
app.command("permute")(with_globals(permute_cmd.permute))
app.command("transfer")(with_globals(transfer_cmd.transfer))


def _fail(message: str, code: int) -> None:
    common.console.print(f"eslt: error: {message}", highlight=False, markup=False)
    sys.exit(code)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if errors.SIGNAL:  # a second signal: stop now, without unwinding through library threads
        os.write(2, b"eslt: interrupted\n")
        os._exit(128 + signum)
    errors.SIGNAL = signum
    # Python swallows (and prints) exceptions raised in garbage-collection callbacks and
    # finalisers, where JAX runs code often; there the flag alone stops the command
    # (errors.check_interrupted before any write, and at exit).
    if frame is None or frame.f_code.co_name not in ("_xla_gc_callback", "__del__"):
        raise KeyboardInterrupt


def _interrupted() -> None:
    common.console.print("eslt: interrupted", highlight=False)
    sys.exit(128 + (errors.SIGNAL or signal.SIGINT))


def main() -> None:
    """Console-script entry point."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:  # a background job's ignored SIGINT stays ignored
            signal.signal(signum, _on_signal)
    try:
        _main()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        errors.SIGNAL = 0


def _main() -> None:
    if sys.stdout is None:  # started with fd 1 closed (`>&-`): results would go nowhere
        _fail("stdout is closed: eslt prints its results there; redirect it (e.g. >/dev/null) instead", 2)
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
        _interrupted()
    except EsltError as exc:
        if DEBUG:
            raise
        common.console.print(f"eslt: error: {exc}", highlight=False, markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:  # a bug, not the user's input: still one line, with the way to see more
        if errors.SIGNAL:  # e.g. an extension module turned the KeyboardInterrupt into an ImportError
            _interrupted()
        if DEBUG:
            raise
        _fail(f"unexpected {type(exc).__name__}: {str(exc)[:200]} (a bug in eslt: rerun with --debug and report it)", 1)
    if errors.SIGNAL:  # the signal's exception was swallowed by a library callback
        _interrupted()
    sys.exit(code if isinstance(code, int) else 0)
