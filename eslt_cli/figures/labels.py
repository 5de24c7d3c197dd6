"""How figures name and group runs and records: task, optimiser, arm, remaining weights, metric."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eslt_cli.figures.inputs import number_text
from eslt_cli.meta import Meta

Record = dict[str, Any]  # an ``eslt lmc`` / ``eslt sharpness`` record


def remaining_of(pruned: Any) -> float:
    """Remaining weights in percent from a record's ``sparsity`` (the pruned fraction; absent: dense)."""
    return 100.0 * (1.0 - float(pruned)) if isinstance(pruned, int | float) else 100.0


def metric_label(metric: str) -> str:
    return {"accuracy": "test accuracy", "return": "test return (mean episode return)"}.get(metric, f"test {metric}")


def _value_text(v: Any) -> str:
    """A NaN, an infinity or a missing value, as a warning names it."""
    return "missing" if v is None else number_text(float(v))


def run_name(meta: Meta) -> str:
    """A run as warnings name it: task, optimiser, arm, level and seed."""
    return f"{meta.task.name} {meta.optimiser} {meta.arm} level {meta.level} seed {meta.seed}"


def left_out(path: Path, meta: Meta, what: str, value: Any) -> str:
    """The warning for a run whose ``what`` is NaN, infinite or missing: named, and shown as a mark."""
    return (f"{path}: {what} is {_value_text(value)} ({run_name(meta)}): left out of the mean, marked × at the "
            "bottom of the figure")  # fmt: skip


def grouping(metas: Iterable[Meta]) -> Callable[[Meta], str]:
    """A group label per checkpoint: its task and its optimiser, each only when the checkpoints hold several."""
    metas = list(metas)
    many_tasks = len({m.task.name for m in metas}) > 1
    many_methods = len({m.optimiser for m in metas}) > 1

    def label(meta: Meta) -> str:
        parts = [meta.task.name] if many_tasks else []
        if many_methods:
            parts.append(meta.optimiser)
        return " ".join(parts)

    return label


def trainer_label(r: Record) -> str:
    """The trainer of an ``eslt sharpness`` record: ``ES (strategy)``, or the gradient trainer's name."""
    trainer = r.get("trainer")
    name = trainer.get("name") if isinstance(trainer, dict) else trainer
    strategy = r.get("strategy") or (trainer.get("strategy") if isinstance(trainer, dict) else None)
    if name in (None, "es"):
        return f"ES ({strategy})" if strategy else "ES"
    return str(name).upper() if len(str(name)) <= 3 else str(name)


def arms_by(
    recs: Sequence[Record], base_of: Callable[[Record], str], arm_of: Callable[[Record], Any]
) -> dict[str, list[str]]:
    """The arms (not level-0 dense) of the records of each base label (an optimiser, a strategy pair)."""
    out: dict[str, set[str]] = defaultdict(set)
    for r in recs:
        if arm_of(r) not in (None, "dense"):
            out[base_of(r)].add(str(arm_of(r)))
    return {base: sorted(a) for base, a in out.items()}


def arm_groups(base: str, arm: Any, arms: Mapping[str, Sequence[str]]) -> list[str]:
    """Line labels a record belongs to: per arm when several arms are present; level-0 dense starts each
    arm of its own base (an Adam level 0 starts the Adam chains only)."""
    every = sorted({a for v in arms.values() for a in v})
    if len(every) <= 1:
        return [base]
    if arm in (None, "dense"):
        return [f"{base} {a}" for a in arms.get(base) or every]
    return [f"{base} {arm}"]
