"""``eslt sharpness``: loss along filter-normalised random directions (Li et al., 2018)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from eslt_cli.cli import common
from eslt_cli.errors import BadInput

# Grid sizes per --preset: "cpu" is quick; "paper" is appendix A.3's 51-step range, for --2d too.
PRESETS = {"cpu": {"points": 21, "grid": 11}, "paper": {"points": 51, "grid": 51}}
# The largest --radius: a step of a million times a filter's norm is far past any useful landscape,
# and well inside float32 (about 3e38), whose overflow would only print numpy warnings before failing.
MAX_RADIUS = 1e6


def grid_sizes(preset: str, points: int | None, grid: int | None) -> tuple[int, int]:
    """(--points, --grid) of ``preset``, an explicit value of either winning."""
    if preset not in PRESETS:
        raise typer.BadParameter(f"--preset must be cpu or paper, got {preset!r}")
    return (PRESETS[preset]["points"] if points is None else points, PRESETS[preset]["grid"] if grid is None else grid)


HELP = """Measure the sharpness of trained checkpoints; one JSON line each on stdout.

The test loss is evaluated along --directions random Gaussian directions,
normalised filter-wise (conv) and neuron-wise (dense) to the weights, with
pruned weights kept at zero and biases not moved, for --points steps t in
[−radius, radius]; a quadratic fitted per direction gives the curvature
(second derivative). --2d also writes the loss on a --grid × --grid lattice
over two directions to an .npz (alpha, beta, loss, metric), by default beside
the checkpoint.

--directions-from C0 follows appendix A.3: the directions are drawn and
normalised once at C0 (the level-0 dense network), then applied to this
checkpoint multiplied by its mask, without renormalising, so every IMP level
is probed along the same vectors (C0 must not prune weights this one keeps).

Many checkpoints (arguments, or one path per line on stdin) are measured in one
process, which loads the data and compiles the evaluation once.

--preset cpu (default): --points 21, --grid 11. --preset paper: appendix A.3's
51-step grid, --points 51 and --grid 51. An explicit --points or --grid wins.

Example:

\b
  eslt sharpness --directions 5 runs/fashion_mnist-snes-seed0/L03-snr-trained
  cd runs/fashion_mnist-snes-seed0 && eslt sharpness --preset paper --2d --directions-from L00-trained L03-snr-trained
"""


def sharpness(
    checkpoint: Annotated[
        Optional[list[str]],
        typer.Argument(help="Trained checkpoints (one JSON line each); '-' or absent: read stdin, one per line."),
    ] = None,
    radius: Annotated[float, typer.Option(help="Largest step t along a direction.")] = 1.0,
    points: Annotated[
        Optional[int],
        typer.Option(help="Steps t in [-radius, radius] per direction [default: 21; --preset paper: 51]."),
    ] = None,
    directions: Annotated[int, typer.Option(help="Number of random directions (1D).")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the random directions.")] = 0,
    two_d: Annotated[bool, typer.Option("--2d", help="Also write a 2D loss surface (.npz).")] = False,
    grid: Annotated[
        Optional[int], typer.Option(help="2D lattice size per axis [default: 11; --preset paper: 51].")
    ] = None,
    preset: Annotated[str, typer.Option(help="Grid sizes: cpu (21 steps, 11² grid) or paper (A.3: 51, 51²).")] = (
        "cpu"
    ),
    surface_out: Annotated[Optional[Path], typer.Option(help="2D surface .npz (default: beside it).")] = None,
    directions_from: Annotated[
        Optional[str],
        typer.Option(help="Trained checkpoint (level 0, same architecture) to draw and normalise directions at."),
    ] = None,
    which: Annotated[str, typer.Option(help="Which trained mean: final or best.")] = "final",
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing surface file that eslt wrote and nobody changed since.")
    ] = False,
) -> None:
    common.setup_runtime()
    from eslt_cli import checkpoint as ckpt
    from eslt_cli import schema
    from eslt_cli.analysis import sharpness as core
    from eslt_cli.analysis.lmc import WHICH

    if which not in WHICH:
        raise typer.BadParameter(f"--which must be final or best, got {which!r}")
    points, grid = grid_sizes(preset, points, grid)
    for option, value, high in (("--points", points, 1001), ("--grid", grid, 201), ("--directions", directions, 100)):
        if not 1 <= value <= high:
            raise typer.BadParameter(f"{option} must be in [1, {high}], got {value}")
    # Before any work: a step t beyond MAX_RADIUS overflows float32 weights (numpy warnings, then a failure).
    schema.check_number(radius, "--radius", 0.0, MAX_RADIUS, low_open=True)
    schema.check_seed(seed)
    targets = common.read_inputs(checkpoint or [])
    if surface_out is not None and len(targets) > 1:
        raise BadInput("--surface-out names one file: leave it out for several checkpoints (each goes beside its own)")
    source = None if directions_from is None else ckpt.load(directions_from)
    # One process for many checkpoints: the task, its data and the compiled evaluation are built once.
    for target in targets:
        result = core.run_sharpness(
            ckpt.load(target), which, radius, points, directions, seed, two_d, grid, surface_out, source, force
        )
        curv = result["curvature"]
        common.say(
            f"{result['task']} level {result['level']} (sparsity {result['sparsity']:.1%}): curvature "
            f"{result['curvature_mean']:.4g} ± {result['curvature_std']:.4g} over {len(curv)} direction(s), "
            f"radius {radius:g}"
        )
        if result["surface"]:
            common.say(f"2D surface ({grid}x{grid}) written to {result['surface']}")
        common.data_line(json.dumps(result))


sharpness.__doc__ = HELP
