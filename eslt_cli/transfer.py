"""Ticket transfer: retarget a ticket to another task, evolution strategy or trainer.

A ticket found on one task or with one ES is trained on another (Section 4,
"transfer"): ``task`` must have a network of the same parameter shapes (e.g.
``pendulum`` -> ``pendulum_heavy``); ``strategy`` swaps the ES and resets its
optimiser, learning rate and elite ratio to the new strategy's defaults;
``trainer`` hands the ticket to a gradient trainer (``adam``, ``ppo``) or back
to ``es``, with that trainer's default settings. The
transferred ticket keeps init, mask, seed and level; ``eslt train`` then
trains it with the new settings recorded in its meta.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eslt_cli import checkpoint, paths, strategies
from eslt_cli.checkpoint import Checkpoint
from eslt_cli.errors import BadInput
from eslt_cli.plans import check_trainer_fits, settle_task, settle_trainer, trainer_name
from eslt_cli.specs import ESSpec, to_json
from eslt_cli.task_registry import canonical_task, get_entry
from eslt_cli.tasks import build_task
from eslt_cli.tickets import write_ticket


@dataclass(frozen=True)
class TransferPlan:
    """A retargeting of one ticket and where its result goes."""

    parent: Checkpoint
    task: str | None
    strategy: str | None
    out: Path
    trainer: str | None = None

    @property
    def fingerprint(self) -> dict[str, Any]:
        extra = {"trainer": self.trainer} if self.trainer else {}  # absent when unused: older outputs still match
        return {
            "op": "transfer",
            **checkpoint.parent_record(self.parent),
            "task": self.task,
            "strategy": self.strategy,
        } | extra


def _shapes(tree: Any) -> list[tuple[str, tuple[int, ...]]]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [(jax.tree_util.keystr(path), tuple(np.shape(leaf))) for path, leaf in flat]


def plan_transfer(
    parent: Checkpoint,
    task: str | None = None,
    strategy: str | None = None,
    out: Path | None = None,
    trainer: str | None = None,
) -> TransferPlan:
    """Check a transfer request (exactly one of ``task``, ``strategy``, ``trainer``) and settle the output path."""
    if sum(x is not None for x in (task, strategy, trainer)) != 1:
        raise BadInput("choose exactly one of --task, --strategy, --trainer")
    if parent.kind != "ticket":
        raise BadInput(
            f"{parent.path}: is trained; transfer a ticket (`eslt prune --snr {parent.path} | eslt transfer`)"
        )
    meta = parent.record
    if task is not None:
        task = canonical_task(task)
        if task == meta.task.name:
            raise BadInput(f"{parent.path}: is already a {task} ticket")
        if get_entry(task).kind != get_entry(meta.task.name).kind:
            raise BadInput(
                f"cannot transfer a {meta.task.name} ticket ({get_entry(meta.task.name).kind}) "
                f"to {task} ({get_entry(task).kind}): the networks differ"
            )
        target = build_task(settle_task(task, "cpu", None, {}, "es", False), meta.model)
        want = _shapes(jax.eval_shape(target.init_params, jax.random.PRNGKey(0)))
        have = _shapes(parent.state["init"])
        if want != have:
            diff = [f"{p}: {a} vs {b}" for (p, a), (_, b) in zip(have, want) if a != b] or ["different layers"]
            raise BadInput(
                f"cannot transfer to {task}: its network has other parameter shapes "
                f"(ticket vs {task}: {'; '.join(diff)})"
            )
        label = task
    elif trainer is not None:
        check_trainer_fits(trainer_name(None, {"trainer": trainer}), meta.task.name)
        if trainer == meta.trainer.name:
            raise BadInput(f"{parent.path}: is already trained with --trainer {trainer}")
        label = trainer
    else:
        assert strategy is not None  # exactly one of task, strategy, trainer (checked above)
        strategy = strategies.canonical_strategy(strategy)
        strategies.get_strategy(strategy)
        if isinstance(meta.trainer, ESSpec) and strategy == meta.trainer.strategy:
            raise BadInput(f"{parent.path}: is already trained with {strategy}")
        label = strategy
    out = Path(out) if out is not None else paths.transferred(parent.path, label)
    return TransferPlan(parent, task, strategy, out.absolute(), trainer)


def run_transfer(plan: TransferPlan, force: bool = False) -> tuple[Path, bool]:
    """Write the retargeted ticket; returns its path and whether it was made now."""
    parent = plan.parent
    meta = {k: v for k, v in parent.record.raw.items() if k not in ("schema", "eslt_version", "digest")}
    old_task, old_trainer = parent.record.task, parent.record.trainer
    record: dict[str, Any]
    if plan.task is not None:
        entry = get_entry(plan.task)
        spec = settle_task(plan.task, "cpu", None, {}, old_trainer.name, False)
        if type(spec) is type(old_task):
            # Same kind of environment: keep the ticket's episode settings (e.g. a paper preset's test episodes).
            spec = dataclasses.replace(old_task, name=plan.task)
        target = build_task(spec, parent.record.model)
        meta["task"] = to_json(spec)
        meta["metric"] = target.metric
        record = {"from_task": old_task.name, "to_task": plan.task}
        if entry.env_params:
            record["env_params"] = dict(entry.env_params)
    elif plan.trainer is not None:
        meta["trainer"] = to_json(settle_trainer(old_task.name, "cpu", old_trainer, {"trainer": plan.trainer}))
        # The new trainer's task settings (e.g. Adam's batch 128) replace the old trainer's.
        meta["task"] = to_json(settle_task(old_task.name, "cpu", old_task, {}, plan.trainer, True))
        record = {"from_trainer": old_trainer.name, "to_trainer": plan.trainer}
    else:
        trainer = settle_trainer(old_task.name, "cpu", old_trainer, {"strategy": plan.strategy})
        meta["trainer"] = to_json(trainer)
        record = {"from_strategy": getattr(old_trainer, "strategy", None), "to_strategy": plan.strategy}
    meta |= {
        "kind": "ticket",
        "arm": f"{parent.record.arm}+to-{plan.task or plan.strategy or plan.trainer}",
        "sparsity": parent.record.raw["sparsity"],
        "transfer": record,
    }
    state = {"init": parent.state["init"], "mask": parent.state["mask"]}
    return write_ticket(parent, plan.out, plan.fingerprint, state, meta, force)
