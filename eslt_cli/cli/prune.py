"""``eslt prune``: a ticket one level up from a trained checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from eslt_cli import schema
from eslt_cli.cli import common

HELP = """Prune a trained checkpoint and print the new ticket's path on stdout.

The ticket keeps the level-0 init (rewinding) and a mask that removes --rate of
the surviving prunable weights, with one global threshold over all kernels;
biases are never pruned. Choose exactly one criterion: --magnitude (|mean|),
--snr (|mean| / per-weight search std; needs a diagonal ES such as snes, pgpe,
sep_cma_es or des; --snr-std code: the paper's code's |mean| / C for sep_cma_es,
the default where the parent was trained with it, as --preset paper does),
--random (sparsity-matched random mask), --movement (|mean - init|: how far
training moved each weight), or the pruning-at-init scores of the level's
masked initialisation on --batches training batches (vision tasks): --snip
(|grad * w|) or --grasp (GraSP: keeps the highest w * Hg, i.e. removes the
highest -w * Hg). --reinit keeps the new
mask but draws a fresh initialisation from --seed and the level instead of
rewinding (arm '<criterion>-reinit'; --random --reinit is the paper's
random-reinit baseline).

Example:

\b
  eslt train --task fashion_mnist | eslt prune --snr | eslt train
"""


def prune(
    checkpoint: Annotated[
        Optional[list[str]], typer.Argument(help="Trained checkpoints; '-' or absent: read stdin, one per line.")
    ] = None,
    magnitude: Annotated[bool, typer.Option("--magnitude", help="Prune by |mean|.")] = False,
    snr: Annotated[bool, typer.Option("--snr", help="Prune by |mean| / search std.")] = False,
    random: Annotated[bool, typer.Option("--random", help="Prune at random, sparsity-matched.")] = False,
    movement: Annotated[bool, typer.Option("--movement", help="Prune by |mean - init|.")] = False,
    snip: Annotated[bool, typer.Option("--snip", help="Prune by SNIP, |grad * w| at the masked init.")] = False,
    grasp: Annotated[bool, typer.Option("--grasp", help="Prune by GraSP, w * Hg at the masked init.")] = False,
    batches: Annotated[
        Optional[int], typer.Option(help="--snip/--grasp: training batches to score on (task batch size) [default: 1].")
    ] = None,
    reinit: Annotated[
        bool, typer.Option("--reinit", help="Fresh init from --seed instead of rewinding (any criterion).")
    ] = False,
    snr_std: Annotated[
        Optional[str],
        typer.Option(
            help="--snr: divide |mean| by the search std (text) or as the paper's code did (code: "
            "sep_cma_es's variance C) [default: the parent's trainer record, else text]."
        ),
    ] = None,
    rate: Annotated[float, typer.Option(help="Fraction of surviving prunable weights to remove.")] = 0.2,
    source: Annotated[str, typer.Option("--from", help="Which trained mean to score: final or best.")] = "final",
    exclude: Annotated[Optional[list[str]], typer.Option(help="Layer to leave dense (repeatable).")] = None,
    seed: Annotated[
        Optional[int],
        typer.Option(help="Seed of --random, --reinit and the --snip/--grasp batches (default: the run's seed)."),
    ] = None,
    out: common.TICKET_OUT = None,
    as_json: common.TICKET_JSON = False,
    force: common.FORCE = False,
) -> None:
    flags = (("magnitude", magnitude), ("snr", snr), ("random", random), ("movement", movement), ("snip", snip),
             ("grasp", grasp))  # fmt: skip
    chosen = [name for name, on in flags if on]
    if len(chosen) != 1:
        raise typer.BadParameter("choose exactly one of --magnitude, --snr, --random, --movement, --snip, --grasp")
    if seed is not None:
        schema.check_seed(seed)  # before any work: a seed PRNGKey cannot take would fail mid-way
    common.setup_runtime()
    from eslt_cli import checkpoint as ckpt
    from eslt_cli import tickets

    def plan(path: Path) -> tickets.PrunePlan:
        return tickets.plan_prune(ckpt.load(path), chosen[0], rate, source, exclude or (), seed, out, reinit,
                                   batches, snr_std)  # fmt: skip

    def run(plan: tickets.PrunePlan) -> None:
        path, made = tickets.run_prune(plan, force=force)
        meta = ckpt.read_record(path)
        sp = meta.sparsity
        how = f"{chosen[0]}{' (reinitialised)' if reinit else ''}"
        done = (f"pruned by {how}: level {meta.level}, {sp.remaining}/{sp.total} "
                f"prunable weights left (sparsity {sp.pruned:.1%})")  # fmt: skip
        summary = {k: meta.raw[k] for k in ("level", "arm", "pruning", "sparsity", "snr_stats")}
        common.finish(path, made, done, as_json, summary)

    common.for_each_input(checkpoint, out, plan, run)


prune.__doc__ = HELP
