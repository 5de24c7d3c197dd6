"""``eslt permute``: a ticket with its surviving weights or its mask permuted."""

from __future__ import annotations

from typing import Annotated

import typer

from eslt_cli import schema
from eslt_cli.cli import common

HELP = """Permute a ticket and print the new ticket's path on stdout.

Controls for what makes a ticket (Section 4). Choose exactly one: --weights
shuffles, within each layer's kernel, the surviving init values over the
surviving positions (the mask is unchanged); --mask draws, within each layer's
kernel, a new mask with the same number of survivors at random positions and
puts the layer's surviving init values on it in shuffled order (layerwise
sparsity kept). Biases are untouched. The result is a ticket of the same level,
arm '<arm>+perm-weights' or '<arm>+perm-mask', written beside the input as
'<name>-perm-weights-s<seed>' unless --out.

Example:

\b
  eslt prune --snr L00-trained | eslt permute --mask --seed 1 | eslt train
"""


def permute(
    ticket: common.TICKETS = None,
    weights: Annotated[bool, typer.Option("--weights", help="Shuffle surviving init values, same mask.")] = False,
    mask: Annotated[bool, typer.Option("--mask", help="New random mask per layer, same counts.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the permutation.")] = 0,
    out: common.TICKET_OUT = None,
    as_json: common.TICKET_JSON = False,
    force: common.FORCE = False,
) -> None:
    chosen = [name for name, on in (("weights", weights), ("mask", mask)) if on]
    if len(chosen) != 1:
        raise typer.BadParameter("choose exactly one of --weights, --mask")
    schema.check_seed(seed)
    common.setup_runtime()
    from eslt_cli import checkpoint as ckpt
    from eslt_cli import permute as core

    def run(plan: core.PermutePlan) -> None:
        path, made = core.run_permute(plan, force=force)
        common.finish_ticket(path, made, f"permuted {chosen[0]} (seed {seed})", "permutation", as_json)

    common.for_each_input(ticket, out, lambda path: core.plan_permute(ckpt.load(path), chosen[0], seed, out), run)


permute.__doc__ = HELP
