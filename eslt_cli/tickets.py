"""Making tickets (``eslt prune``'s core): a pruning criterion applied to a trained checkpoint,
the level-0 init rewound (or redrawn), written as a checkpoint one level up; :func:`write_ticket`
also writes the tickets of ``eslt permute`` and ``eslt transfer``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eslt_cli import checkpoint, outputs, paths, pruning, schema, settings, strategies
from eslt_cli.checkpoint import Checkpoint
from eslt_cli.errors import BadInput
from eslt_cli.meta import Meta
from eslt_cli.pipeline import check_fits, check_parent_path, check_record, existing_output, links, task_of
from eslt_cli.specs import ESSpec
from eslt_cli.task_registry import get_entry


def _arm(parent_arm: str, criterion: str) -> str:
    """The arm name of a pruned ticket: the criterion, prefixed by a different parent arm."""
    if parent_arm in ("dense", criterion):
        return criterion
    return f"{parent_arm}+{criterion}"


@dataclass(frozen=True)
class PrunePlan:
    """Everything that determines a pruning step and where its ticket goes."""

    parent: Checkpoint
    criterion: str
    rate: float
    source: str  # "final" | "best"
    exclude: tuple[str, ...]
    seed: int
    out: Path
    reinit: bool = False
    batches: int | None = None  # snip/grasp: training batches scored on
    snr_std: str = "text"  # what SNR divides by (strategies.snr_noise): the parent's choice or --snr-std

    @property
    def label(self) -> str:
        """The criterion as it appears in arm names (``random-reinit`` with ``--reinit``)."""
        return f"{self.criterion}-reinit" if self.reinit else self.criterion

    @property
    def fingerprint(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"reinit": True} if self.reinit else {}  # absent when off: older outputs still match
        if self.batches is not None:
            extra["batches"] = self.batches
        if self.criterion == "snr" and self.snr_std != "text":
            extra["snr_std"] = self.snr_std  # absent at the text's definition: older outputs still match
        return extra | {
            "op": "prune",
            **checkpoint.parent_record(self.parent),
            "criterion": self.criterion,
            "rate": self.rate,
            "from": self.source,
            "exclude": list(self.exclude),
            "seed": self.seed,
        }


def plan_prune(
    parent: Checkpoint,
    criterion: str,
    rate: float = 0.2,
    source: str = "final",
    exclude: Sequence[str] = (),
    seed: int | None = None,
    out: Path | None = None,
    reinit: bool = False,
    batches: int | None = None,
    snr_std: str | None = None,
) -> PrunePlan:
    """Check a pruning request against its parent and settle the output path.

    ``reinit``: keep the new mask but give the ticket a fresh initialisation
    drawn from ``seed`` and the level (the paper code's ``random-reinit`` arm
    with the random criterion) instead of rewinding to the level-0 init.
    ``batches``: training batches that ``snip`` and ``grasp`` score on (default 1).
    ``snr_std``: SNR's definition (``text`` or ``code``, see :func:`strategies.snr_noise`) instead
    of the one the parent was trained to be pruned by (its trainer record's ``snr_std``).
    """
    pruner = pruning.get_pruner(criterion)
    if parent.kind != "trained":
        raise BadInput(f"{parent.path}: is a ticket; prune a trained checkpoint (`eslt train {parent.path}`)")
    if not 0.0 < rate < 1.0:
        raise BadInput(f"--rate must be in (0, 1), got {rate}")
    if source not in ("final", "best"):
        raise BadInput(f"--from must be final or best, got {source!r}")
    record = parent.record
    if pruner.needs_std and "std" not in parent.state:
        trainer = record.trainer
        why = (f"{trainer.strategy} is isotropic, so SNR would equal magnitude" if isinstance(trainer, ESSpec)
               else f"it was trained by {trainer.name}, not by an ES with a per-weight search std")  # fmt: skip
        raise BadInput(f"{parent.path}: has no per-weight search std ({why}): use --magnitude")
    if pruner.needs_data:
        if get_entry(record.task.name).kind != "vision":
            raise BadInput(f"--{criterion} needs a vision task (a loss on training batches); "
                           f"{record.task.name} is not one")  # fmt: skip
        batches = 1 if batches is None else batches
        if batches < 1:
            raise BadInput(f"--batches must be positive, got {batches}")
    elif batches is not None:
        raise BadInput("--batches applies to --snip and --grasp only")
    if snr_std is not None and criterion != "snr":
        raise BadInput("--snr-std applies to --snr only")
    settings.check("snr_std", snr_std, "--snr-std")
    snr_std = snr_std or (record.trainer.snr_std if isinstance(record.trainer, ESSpec) else "text")
    pruning.prunable(parent.state["mask"], exclude)  # validates layer names
    level = record.level + 1
    arm = _arm(record.arm, f"{criterion}-reinit" if reinit else criterion)
    out = Path(out) if out is not None else paths.ticket(parent.path, level, arm)
    seed = record.seed if seed is None else schema.check_seed(seed)
    return PrunePlan(parent, criterion, rate, source, tuple(exclude), seed, out.absolute(), reinit, batches, snr_std)


def reinit_params(meta: Meta, seed: int, level: int) -> Any:
    """A fresh initialisation of the checkpoint's network from ``seed`` folded with ``level``.

    Differs from the run's level-0 init (drawn from the first half of
    ``split(PRNGKey(seed))``) and from level to level.
    """
    key = jax.random.fold_in(jax.random.PRNGKey(seed), level)
    return jax.tree.map(np.asarray, task_of(meta).init_params(key))


def run_prune(plan: PrunePlan, force: bool = False) -> tuple[Path, bool]:
    """Prune per ``plan``: a ticket one level up, rewound to the level-0 init.

    Returns the ticket's path and whether it was made now (False: it existed
    with the same settings).
    """
    parent = plan.parent
    level = parent.record.level + 1
    keep = parent.record.keep * (1.0 - plan.rate)
    key = jax.random.fold_in(jax.random.PRNGKey(plan.seed), level)
    mean = parent.state["mean" if plan.source == "final" else "best"]
    # --from best scores the best mean with the std it was scored with (stored since schema 2; older
    # checkpoints have only the final std).
    std = parent.state.get("std_best" if plan.source == "best" and "std_best" in parent.state else "std")
    if std is not None:  # SNR's denominator by the chosen definition (the text's: the std itself)
        std = strategies.snr_noise(parent.record.optimiser, plan.snr_std, std)
    data = None
    if plan.batches is not None:
        data = pruning.training_batches(check_fits(parent, task_of(parent.record)), key, plan.batches)
    mask = pruning.prune(
        key, plan.criterion, mean, std, parent.state["mask"], keep, plan.exclude, parent.state["init"], data
    )
    can_prune = pruning.prunable(mask)
    init = reinit_params(parent.record, plan.seed, level) if plan.reinit else parent.state["init"]
    meta = {
        "kind": "ticket",
        **{k: parent.record.raw[k] for k in ("task", "model", "trainer", "metric")},  # copied as stored
        "seed": plan.seed,
        "level": level,
        "arm": _arm(parent.record.arm, plan.label),
        "sparsity": pruning.sparsity(mask, can_prune),
        "pruning": {
            "criterion": plan.criterion,
            "rate": plan.rate,
            "from": plan.source,
            "exclude": list(plan.exclude),
            "keep": keep,
            "seed": plan.seed,
            "reinit": plan.reinit,
            **({} if plan.batches is None else {"batches": plan.batches}),
            **({"snr_std": plan.snr_std} if plan.criterion == "snr" else {}),
        },
        # |mean| vs SNR of the scored weights before pruning (Figure 7); None without a std.
        "snr_stats": None if std is None else snr_stats(mean, std, parent.state["mask"], plan.snr_std),
    }
    return write_ticket(parent, plan.out, plan.fingerprint, {"init": init, "mask": mask}, meta, force)


def snr_stats(mean: Any, noise: Any, mask: Any, definition: str) -> dict[str, Any]:
    """|mean| vs SNR (by ``definition``) of the weights scored, before pruning (Figure 7)."""
    return pruning.snr_correlation(mean, noise, mask) | {"snr_std": definition}


def write_ticket(
    parent: Checkpoint,
    out: Path,
    fingerprint: dict[str, Any],
    state: dict[str, Any],
    meta: dict[str, Any],
    force: bool = False,
) -> tuple[Path, bool]:
    """Write a ticket derived from ``parent`` under its lock; returns its path and whether it was made now.

    ``meta`` gains ``parent``, ``lineage`` and ``fingerprint``. An output already
    made with the same ``fingerprint`` is kept as is; one made otherwise is
    refused unless ``force`` (see :func:`existing_output`).
    """
    check_parent_path(parent.path)
    meta = {**meta, **links(parent, out), "fingerprint": fingerprint}
    check_record(out, meta)  # what would not read back is never written
    existing_output(out, fingerprint, force, [parent.path])  # refuse early, before making a lock file
    with outputs.lock(out):
        if existing_output(out, fingerprint, force, [parent.path]):
            return out, False
        return checkpoint.save(out, state, meta, force=force), True
