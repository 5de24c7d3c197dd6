"""``eslt lmc``: linear mode connectivity between two trained checkpoints."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from eslt_cli.cli import common
from eslt_cli.errors import BadInput

HELP = """Evaluate the straight line between two trained checkpoints; one JSON line on stdout.

Many pairs: --pairs FILE, or no arguments and the pairs on stdin, one pair per
line ("A<TAB>B", or "A B" where neither path holds a space); one JSON line per
pair, in order, from one process that loads the data and compiles the
evaluation once.

θ(α) = θA + α·(θB − θA) is evaluated on the test split for --points values of
α in [0, 1] (masked weights interpolated as stored; α = 0 and 1 are A and B
exactly). The error is 1 − accuracy, or −return for control. "barrier" is the
error barrier of Frankle et al. (2020): the largest error along the path minus
the mean of the two endpoint errors. "barrier_linear" is the largest rise above
the straight line between the endpoint errors. Both are 0 for `eslt lmc A A`.
Both checkpoints must be of one task and architecture; A's test settings and
evaluation key are used.

Example:

\b
  eslt lmc runs/fashion_mnist-snes-seed0/L03-snr-trained runs/fashion_mnist-snes-seed1/L03-snr-trained
"""


def lmc(
    a: Annotated[
        Optional[str], typer.Argument(metavar="A", help="First trained checkpoint (α = 0); '-': read stdin.")
    ] = None,
    b: Annotated[
        Optional[str], typer.Argument(metavar="B", help="Second trained checkpoint (α = 1); '-': read stdin.")
    ] = None,
    pairs: Annotated[
        Optional[Path], typer.Option(help="File of pairs, one 'A<TAB>B' (or 'A B') per line; '-': stdin.")
    ] = None,
    points: Annotated[int, typer.Option(help="Number of α values in [0, 1], endpoints included.")] = 11,
    which: Annotated[str, typer.Option(help="Which trained mean: final or best.")] = "final",
) -> None:
    common.setup_runtime()
    from eslt_cli import checkpoint as ckpt
    from eslt_cli.analysis import lmc as core

    if which not in core.WHICH:
        raise typer.BadParameter(f"--which must be final or best, got {which!r}")
    if not 2 <= points <= 1001:
        raise typer.BadParameter(f"--points must be in [2, 1001], got {points}")
    if pairs is not None or (a is None and b is None):
        if a is not None or b is not None:
            raise typer.BadParameter("give A and B, or --pairs, not both")
        todo = read_pairs(pairs)
    else:
        if a is None or b is None:
            raise typer.BadParameter("give both A and B (or --pairs FILE, or the pairs on stdin)")
        if a == b == "-":
            raise typer.BadParameter("only one of A and B can be '-' (read from stdin)")
        first, second = (common.read_input(x) if x == "-" else Path(x) for x in (a, b))
        todo = [(first, second)]
    for first, second in todo:
        result = core.run_lmc(ckpt.load(first), ckpt.load(second), which, points)
        unit = "1 − accuracy" if result["error_of"] == "accuracy" else "−return"
        if not common.QUIET and len(todo) == 1:
            from rich.table import Table

            table = Table(title=f"LMC {result['task']} (levels {result['levels'][0]} → {result['levels'][1]})")
            for col in ("α", f"error ({unit})", "loss"):
                table.add_column(col, justify="right")
            for x, e, l in zip(result["alpha"], result["error"], result["loss"]):
                table.add_row(f"{x:.2f}", f"{e:.4g}", f"{l:.4g}")
            common.console.print(table)
        common.say(
            f"{'' if len(todo) == 1 else f'{first} vs {second}: '}barrier {result['barrier']:.4g} "
            f"(Frankle et al. 2020), barrier_linear {result['barrier_linear']:.4g} ({unit})"
        )
        common.data_line(json.dumps(result))


def read_pairs(source: Optional[Path]) -> list[tuple[Path, Path]]:
    """Pairs of paths, one per line: split at a tab, else at the one run of spaces (a file, or stdin)."""
    if source is None or str(source) == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise BadInput("no pairs: give A and B, --pairs FILE, or pipe 'A<TAB>B' lines on stdin")
        lines = common.stdin_lines()
    else:
        from eslt_cli import outputs

        text = outputs.read_regular(source, common.MAX_STDIN, f"--pairs {source}").decode("utf-8", errors="replace")
        lines = [line for line in text.split("\n") if line.strip()]
    found = []
    for n, line in enumerate(lines, 1):
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) != 2 or not all(fields):
            raise BadInput(f"pairs line {n} is not two paths ({line[:80]!r}): write 'A<TAB>B' per line")
        found.append((Path(fields[0]), Path(fields[1])))
    if not found:
        raise BadInput("no pairs given (empty input)")
    return found


lmc.__doc__ = HELP
