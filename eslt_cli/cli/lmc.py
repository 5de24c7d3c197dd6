"""``eslt lmc``: linear mode connectivity between two trained checkpoints."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from eslt_cli.cli import common

HELP = """Evaluate the straight line between two trained checkpoints; one JSON line on stdout.

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
    a: Annotated[str, typer.Argument(metavar="A", help="First trained checkpoint (α = 0); '-': read stdin.")],
    b: Annotated[str, typer.Argument(metavar="B", help="Second trained checkpoint (α = 1); '-': read stdin.")],
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
    if a == b == "-":
        raise typer.BadParameter("only one of A and B can be '-' (read from stdin)")
    first, second = (common.read_input(x) if x == "-" else x for x in (a, b))
    result = core.run_lmc(ckpt.load(first), ckpt.load(second), which, points)
    if not common.QUIET:
        from rich.table import Table

        unit = "1 − accuracy" if result["error_of"] == "accuracy" else "−return"
        table = Table(title=f"LMC {result['task']} (levels {result['levels'][0]} → {result['levels'][1]})")
        for col in ("α", f"error ({unit})", "loss"):
            table.add_column(col, justify="right")
        for x, e, l in zip(result["alpha"], result["error"], result["loss"]):
            table.add_row(f"{x:.2f}", f"{e:.4g}", f"{l:.4g}")
        common.console.print(table)
        common.say(
            f"barrier {result['barrier']:.4g} (Frankle et al. 2020), "
            f"barrier_linear {result['barrier_linear']:.4g} ({unit})"
        )
    common.data_line(json.dumps(result))


lmc.__doc__ = HELP
