"""``eslt transfer``: retarget a ticket to another task, evolution strategy or trainer."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from eslt_cli.cli import common

HELP = """Retarget a ticket and print the new ticket's path on stdout.

Choose exactly one: --task T moves the ticket to a task whose network has the
same parameter shapes (e.g. pendulum -> pendulum_heavy; other shapes are
refused, naming them); --strategy S trains it with another ES, with that
strategy's default optimiser, learning rate and elite ratio; --trainer adam|ppo
hands an ES ticket to a gradient trainer (adam: vision, ppo: control) with its
default settings (and --trainer es hands it back). Init, mask, seed and level
are kept; the arm becomes '<arm>+to-<target>' and the ticket is written beside
the input as '<name>-to-<target>' unless --out. `eslt train` then trains it
with the new settings.

Example:

\b
  eslt prune --snr L00-trained | eslt transfer --task pendulum_heavy | eslt train
  eslt prune --snr L00-trained | eslt transfer --trainer adam | eslt train
"""


def transfer(
    ticket: common.TICKETS = None,
    task: Annotated[Optional[str], typer.Option(help="Target task (same network shapes).")] = None,
    strategy: Annotated[Optional[str], typer.Option(help="Target evolution strategy.")] = None,
    trainer: Annotated[Optional[str], typer.Option(help="Target trainer: adam (vision), ppo (control) or es.")] = None,
    out: common.TICKET_OUT = None,
    as_json: common.TICKET_JSON = False,
    force: common.FORCE = False,
) -> None:
    if sum(x is not None for x in (task, strategy, trainer)) != 1:
        raise typer.BadParameter("choose exactly one of --task, --strategy, --trainer")
    common.setup_runtime()
    from eslt_cli import checkpoint as ckpt
    from eslt_cli import transfer as core

    def run(plan: core.TransferPlan) -> None:
        path, made = core.run_transfer(plan, force=force)
        common.finish_ticket(path, made, f"transferred to {task or strategy or trainer}", "transfer", as_json)

    common.for_each_input(
        ticket, out, lambda path: core.plan_transfer(ckpt.load(path), task, strategy, out, trainer), run
    )


transfer.__doc__ = HELP
