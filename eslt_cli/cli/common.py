"""What every command shares: stderr console, input paths, progress, JAX set-up.

stdout carries data only (paths, JSON lines); everything for people goes to
stderr through :data:`console`, so pipes and ``$(...)`` see clean output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, Literal, Optional, overload

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from eslt_cli import errors
from eslt_cli.errors import BadInput, Busy, RunFailed

# soft_wrap: plain log lines (cron, CI, 2>log) stay one line each.
console = Console(stderr=True, soft_wrap=True)
QUIET = False  # set by the --quiet root option

# Options of the commands that derive a ticket from another (prune, permute, transfer).
TICKET_OUT = Annotated[Optional[Path], typer.Option(help="Output ticket folder (default: beside the input).")]
FORCE = Annotated[bool, typer.Option("--force", help="Replace an existing output.")]
TICKETS = Annotated[Optional[list[str]], typer.Argument(help="Tickets; '-' or absent: read stdin, one per line.")]
# --json of the commands that derive a ticket (prune, permute, transfer)
TICKET_JSON = Annotated[
    bool,
    typer.Option("--json", help="Print a JSON line (path, level, arm, sparsity, how it was made) instead of the path."),
]
DATA: Any = None  # where data goes when fd 1 had to be given to libraries (multi-host runs)


def default_root() -> Path:
    """Where derived outputs go: ``$ESLT_HOME`` or ``./eslt-runs``."""
    return Path(os.environ.get("ESLT_HOME") or "eslt-runs")  # empty counts as unset: never the working folder


def check_root(root: Path | None) -> Path:
    """The root of derived outputs (``root``, else :func:`default_root`) if run folders can be made in
    it, else one line naming where it came from (``--root``, ``ESLT_HOME`` or the default), not a lock file."""
    path = root if root is not None else default_root()
    if root is not None:
        name = "--root"
    else:
        name = "ESLT_HOME" if os.environ.get("ESLT_HOME") else "the default root (set --root or ESLT_HOME)"
    if any(ord(c) < 32 for c in str(path)):
        raise BadInput(f"{name} {str(path)!r} holds a line break or another control character: choose another folder")
    here = path.absolute()
    while not here.exists() and not here.is_symlink() and here != here.parent:
        here = here.parent  # the deepest folder that exists: run folders are made below it
    if not here.is_dir():
        where = "" if here == path.absolute() else f" ({here} is not)"
        raise BadInput(f"{name} {path} is not a folder{where}: run folders cannot be made there; choose another")
    if not os.access(here, os.W_OK | os.X_OK):
        raise BadInput(f"{name} {path}: {here} is not writable (permission denied); choose another folder")
    return path


@overload
def read_input(
    arg: str | None, none_on_terminal: Literal[False] = False, none_on_empty: Literal[False] = False
) -> Path: ...
@overload
def read_input(arg: str | None, none_on_terminal: bool = False, none_on_empty: bool = False) -> Path | None: ...
def read_input(arg: str | None, none_on_terminal: bool = False, none_on_empty: bool = False) -> Path | None:
    """The input checkpoint path: the argument, else one line on stdin.

    stdin is read when the argument is ``-``, or absent with stdin not a
    terminal. With no argument, a terminal stdin gives None if
    ``none_on_terminal`` and empty piped stdin gives None if ``none_on_empty``;
    otherwise both are errors, so a failed upstream step in a pipe never
    silently turns into something else.
    """
    paths = read_inputs([] if arg is None else [arg], none_on_terminal, none_on_empty)
    if len(paths) > 1:
        raise BadInput(f"stdin has {len(paths)} paths, this command takes one: pipe a single checkpoint")
    return paths[0] if paths else None


def read_inputs(args: list[str], none_on_terminal: bool = False, none_on_empty: bool = False) -> list[Path]:
    """The input checkpoint paths, in order: the arguments, else one per line on stdin (``-`` too).

    As :func:`read_input`; an empty list where that gives None.
    """
    if args and args != ["-"]:
        if "-" in args:
            raise BadInput("give input paths as arguments or on stdin ('-'), not both")
        return [Path(a) for a in args]
    if not args and (sys.stdin is None or sys.stdin.isatty()):
        if none_on_terminal:
            return []
        raise BadInput("no input checkpoint: give a path, or pipe one on stdin")
    lines = stdin_lines()
    if not lines:
        if none_on_empty and not args:
            return []
        raise BadInput("empty stdin: expected a checkpoint path (did the previous command fail?)")
    return [Path(path_of(line)) for line in lines]


def for_each_input(
    args: list[str] | None, out: Path | None, plan: Callable[[Path], Any], run: Callable[[Any], None]
) -> None:
    """Commands that derive one output per input (arguments, or one path per line on stdin).

    Every input is planned, and so checked, before any output is written; then each runs in input
    order. With several inputs a run that fails is one line and the others go on (the exit is
    non-zero); a single input fails as itself.
    """
    sources = read_inputs(args or [])
    if out is not None and len(sources) > 1:
        raise BadInput(f"--out names one output, but {len(sources)} inputs were given: leave --out out")
    plans = [plan(source) for source in sources]
    seen: dict[Any, int] = {}
    for i, each in enumerate(plans):
        if each.out in seen:
            raise BadInput(f"inputs {seen[each.out] + 1} and {i + 1} would both write {each.out}")
        seen[each.out] = i
    failed = 0
    for each in plans:
        try:
            run(each)
        except (RunFailed, Busy) as exc:
            if len(plans) == 1:
                raise
            failed += 1
            failed_line(str(exc))
    if failed:
        raise RunFailed(f"{failed} of {len(plans)} inputs failed (above); the others' outputs are written")


MAX_STDIN = 1 << 20  # paths and JSON lines: far more than any pipe of eslt outputs holds
MAX_LINE = 1 << 16


def stdin_lines() -> list[str]:
    """The lines on stdin, each exactly as written less its line feed; empty lines are skipped.

    A line is a path as given, spaces included (``eslt train --out 'W/ck '`` pipes ``W/ck ``), or a
    JSON line. A carriage return or NUL in a line is refused: no path holding one survives a pipe of
    lines (CRLF line ends would otherwise name other paths). Bounded, so junk piped in is one error,
    not a hang.
    """
    text = sys.stdin.read(MAX_STDIN + 1) if sys.stdin is not None else ""
    if len(text) > MAX_STDIN:
        raise BadInput("stdin holds more than 1 MiB: pipe checkpoint paths or eslt's JSON lines, one per line")
    lines = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if len(line) > MAX_LINE:
            raise BadInput("a stdin line is longer than 64 KiB: pipe checkpoint paths or eslt's JSON lines")
        if "\r" in line or "\0" in line:
            raise BadInput(f"stdin line {n} holds a carriage return or NUL ({line[:60]!r}): pipe one path per line, "
                           "each ended by a plain \\n")  # fmt: skip
        lines.append(line)
    return lines


def path_of(line: str) -> str:
    """A path from a stdin line: the line itself, or the ``path`` of a ``--json`` line."""
    if not line.startswith("{"):
        return line
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise BadInput("stdin line starts with '{' but is not JSON: pipe a path or a --json line") from None
    if not isinstance(record, dict) or not isinstance(record.get("path"), str):
        raise BadInput('stdin JSON line has no "path": pipe the output of --json from train or prune')
    return record["path"]


def finish(path: Path, made: bool, done: str, as_json: bool, summary: dict[str, Any]) -> None:
    """Close a command that writes a checkpoint: ``done`` (or "up to date") for people, the data on stdout."""
    say(done if made else f"{path} is up to date")
    emit(path, as_json, {**summary, "made": made})


def finish_ticket(path: Path, made: bool, what: str, how: str, as_json: bool) -> None:
    """:func:`finish` for a ticket derived from another (permuted, transferred): ``what`` was done,
    with its level and arm; ``how``: the meta record saying how, shown with ``--json``."""
    from eslt_cli import checkpoint  # deferred: jax (see eslt_cli.cli)

    meta = checkpoint.read_record(path)
    summary = {k: meta.raw[k] for k in ("level", "arm", how, "sparsity")}
    finish(path, made, f"{what}: level {meta.level}, arm {meta.arm}", as_json, summary)


def emit(path: Path, as_json: bool, summary: dict[str, Any]) -> None:
    """The command's data on stdout: the path, or with ``--json`` one JSON line with the numbers."""
    data_line(json.dumps({"path": str(path), **summary}) if as_json else str(path), f"{path} was written, but ")


def data_line(text: str, done: str = "") -> None:
    """One line of data on stdout; a full or broken stdout is one error line (``done``: what was made anyway)."""
    errors.check_interrupted()
    try:
        print(text, file=DATA or sys.stdout, flush=True)
    except OSError as exc:
        # Keep the interpreter's exit-time flush from reporting the same failure again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise RunFailed(f"{done}writing to stdout failed: {exc.strerror or exc}") from None


def setup_runtime() -> None:
    """Quiet library chatter and turn on JAX's persistent compilation cache.

    The cache (``$ESLT_JAX_CACHE``, default ``~/.cache/eslt/jax``; empty to
    disable) makes the second run of a pipe skip most compile time. It keeps every compilation,
    also the many small ones (under JAX's default 1 s) that each eslt start repeats: measured on
    2 cores, they are about 5 of a warm tiny pendulum training's 14 CPU seconds.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=UserWarning, module="orbax")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # Orbax logs the failure of each of its writer threads and tasks (with tracebacks) before raising the same
    # error in eslt's thread, which reports it in one line; --debug shows them (cli.root).
    for name in ("absl", "asyncio", "jax._src.xla_bridge", "orbax"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.FATAL)
    except ImportError:
        pass
    import jax

    cache = os.environ.get("ESLT_JAX_CACHE", str(Path.home() / ".cache" / "eslt" / "jax"))
    if cache and _writable(Path(cache)):  # an unwritable cache only costs compile time: go on quietly
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def init_distributed(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Join a multi-host run through ``jax.distributed`` (all three flags, or none)."""
    if coordinator is None and num_processes is None and process_id is None:
        return
    if coordinator is None or num_processes is None or process_id is None:
        raise BadInput("a multi-host run needs all of --coordinator, --num-processes and --process-id")
    if not (num_processes > 0 and 0 <= process_id < num_processes):
        raise BadInput(f"--process-id must be in [0, --num-processes), got {process_id} of {num_processes}")
    import jax

    # Gloo's C++ code prints to file descriptor 1; keep stdout for data by moving
    # fd 1 to stderr and writing data to a copy of the original stdout.
    global DATA
    sys.stdout.flush()
    DATA = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    jax.distributed.initialize(coordinator, num_processes, process_id)


class Reporter:
    """Training progress on stderr: a rich bar on a terminal, else plain timestamped lines.

    A line names the fitness as what it is, a cost to minimise: ``cost`` (the population's mean
    negative return) when the test ``metric`` is a return, ``loss`` (training cross-entropy) when it
    is an accuracy; then the test metric of the current mean, the best so far and an ETA::

        2026-12-04 19:10:00 pendulum snes L00 gen 50/200 cost 515.2 test return -480.1 best -470.3 12.50 gen/s eta 12s
    """

    PLAIN_EVERY_S = 10.0

    def __init__(self, label: str, total: int, metric: str, unit: str = "gen"):
        self.label, self.total, self.metric, self.unit = label, total, metric, unit
        self.cost = "loss" if metric == "accuracy" else "cost"
        self.bar: Progress | None = None
        self.last_line = 0.0
        self.since: tuple[float, int] | None = None  # (time, step) of the first report: the rate leaves compilation out

    def __enter__(self) -> Reporter:
        if not QUIET and console.is_terminal:
            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    f"{self.unit}  {self.cost} {{task.fields[fitness]}}  test {self.metric} {{task.fields[test]}}"
                    "  best {task.fields[best]}  {task.fields[speed]}"
                ),
                TimeElapsedColumn(),
                TextColumn("eta {task.fields[eta]}"),
                console=console,
            )
            self.bar.start()
            fields: dict[str, Any] = {"fitness": "-", "test": "-", "best": "-", "speed": "", "eta": "-"}
            self.task_id = self.bar.add_task(self.label, total=self.total, **fields)
        return self

    def __call__(self, p: Any) -> None:
        if QUIET:
            return
        if p.resumed:
            step = {"gen": "generation"}.get(self.unit, self.unit)
            say(f"{self.label}: resuming from {step} {p.generation} of {p.generations} (from its snapshot)")
            if self.bar is not None:
                self.bar.update(self.task_id, completed=p.generation)
            return
        now = time.monotonic()
        if self.since is None:  # the first chunk includes compilation: its own speed is the best guess yet
            self.since, rate = (now, p.generation), p.gens_per_s
        else:
            rate = (p.generation - self.since[1]) / max(now - self.since[0], 1e-9)
        fields: dict[str, Any] = {
            "fitness": f"{p.fitness:.4g}",
            # Runs trained together: the worst and best current test metric, and how many still run.
            "test": f"{p.metric:.4g}" if p.runs == 1 else f"{p.worst:.4g}..{p.metric:.4g} ({p.runs} runs)",
            "best": f"{p.best:.4g}" if math.isfinite(p.best) else "-",
            "speed": f"{p.gens_per_s:.2f} {self.unit}/s",
            "eta": duration((p.generations - p.generation) / rate) if rate > 0 else "-",
        }
        if self.bar is not None:
            self.bar.update(self.task_id, completed=p.generation, **fields)
            return
        if now - self.last_line >= self.PLAIN_EVERY_S or p.generation == p.generations:
            self.last_line = now
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            console.print(
                f"{stamp} {self.label} {self.unit} {p.generation}/{p.generations} {self.cost} {fields['fitness']} "
                f"test {self.metric} {fields['test']} best {fields['best']} {fields['speed']} eta {fields['eta']}",
                highlight=False,
            )

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()


def duration(seconds: float) -> str:
    """``seconds`` for people: 42s, 3m05s, 2h10m."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def say(message: str) -> None:
    """One line for people on stderr (silent under --quiet)."""
    if not QUIET:
        console.print(message, highlight=False)


def failed_line(message: str) -> None:
    """One failure among several inputs, on stderr even under --quiet (the others go on)."""
    console.print(f"eslt: error: {message}", highlight=False, markup=False)


class StopOnSignal:
    """Turn SIGINT/SIGTERM into a polite stop: calling the object returns the signal number (0 if none).

    The trainer polls it between chunks, saves a snapshot and exits 128+signal.
    A second signal interrupts at once.
    """

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum:  # a second signal: stop now, without unwinding through Orbax's threads
            os.write(2, b"eslt: interrupted\n")
            os._exit(128 + signum)
        self.signum = signum
        say(f"signal {signum}: stopping after the current chunk (again to stop now)")

    def __enter__(self) -> StopOnSignal:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __call__(self) -> int:
        return self.signum

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
