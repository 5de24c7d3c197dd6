"""A checkpoint's ``meta``, parsed once on read into a typed :class:`Meta`.

:func:`eslt_cli.checkpoint.read_meta` validates the stored JSON (:mod:`eslt_cli.schema`) and
:func:`parse` turns it into a :class:`Meta`: typed specs (:mod:`eslt_cli.specs`), the schema-1
forms converted here and nowhere else (a trainer record without a name is ES; settings of other
kinds stored as null are dropped). The rest of eslt reads fields from the record, not by string
key; ``raw`` keeps the JSON as stored, for what is copied into a derived checkpoint unchanged
and for ``--json`` output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eslt_cli.specs import (
    ESSpec,
    ModelSpec,
    TaskSpec,
    TrainerSpec,
    model_from_json,
    task_from_json,
    trainer_from_json,
)

JsonObject = Mapping[str, Any]  # a free-form JSON object of meta (history, run, snr_stats, ...)


@dataclass(frozen=True)
class Sparsity:
    """How much of the prunable weights is pruned: in all (``pruned``, meta's ``global``) and per layer."""

    pruned: float
    remaining: int | None
    total: int | None
    layers: Mapping[str, JsonObject]

    def remaining_pct(self) -> float:
        """Remaining prunable weights in percent (from the counts when stored, else the fraction)."""
        if self.total:
            return 100.0 * float(self.remaining or 0) / float(self.total)
        return 100.0 * (1.0 - self.pruned)


@dataclass(frozen=True)
class Meta:
    """A checkpoint's meta: how it was made, where it stands in its lineage, what it measured."""

    kind: str  # "ticket" | "trained"
    schema: int
    task: TaskSpec
    model: ModelSpec
    trainer: TrainerSpec
    metric: str  # "accuracy" | "return"
    seed: int
    level: int
    arm: str
    sparsity: Sparsity
    parent: str | None
    lineage: tuple[str, ...]
    pruning: JsonObject | None  # how the mask was made (absent at level 0)
    metrics: Mapping[str, JsonObject]  # "final" and "best" test records (trained only)
    history: JsonObject | None
    run: JsonObject | None
    snr_stats: JsonObject | None
    permutation: JsonObject | None
    transfer: JsonObject | None
    fingerprint: Any
    digest: str | None
    raw: Mapping[str, Any]  # the JSON as stored

    @property
    def optimiser(self) -> str:
        """What trained (or will train) it: its ES strategy, or the gradient trainer's name."""
        return self.trainer.strategy if isinstance(self.trainer, ESSpec) else self.trainer.name

    @property
    def keep(self) -> float:
        """The fraction of prunable weights its mask keeps, as pruning planned it (1 at level 0)."""
        return float((self.pruning or {}).get("keep", 1.0))

    def test_metric(self, which: str) -> float | None:
        """The ``final`` or ``best`` test metric (None for a ticket or where not measured)."""
        value = (self.metrics.get(which) or {}).get("metric")
        return None if value is None else float(value)


def _object(value: Any) -> JsonObject | None:
    return value if isinstance(value, dict) else None


def parse(raw: dict[str, Any]) -> Meta:
    """The typed record of a meta that :func:`eslt_cli.schema.validate` accepted."""
    sp = raw["sparsity"]
    return Meta(
        kind=str(raw["kind"]),
        schema=int(raw["schema"]),
        task=task_from_json(raw["task"]),
        model=model_from_json(raw["model"]),
        trainer=trainer_from_json(raw["trainer"]),
        metric=str(raw["metric"]),
        seed=int(raw["seed"]),
        level=int(raw["level"]),
        arm=str(raw["arm"]),
        sparsity=Sparsity(float(sp["global"]), sp.get("remaining"), sp.get("total"), sp.get("layers") or {}),
        parent=raw.get("parent"),
        lineage=tuple(raw.get("lineage") or ()),
        pruning=_object(raw.get("pruning")),
        metrics=raw.get("metrics") or {},
        history=_object(raw.get("history")),
        run=_object(raw.get("run")),
        snr_stats=_object(raw.get("snr_stats")),
        permutation=_object(raw.get("permutation")),
        transfer=_object(raw.get("transfer")),
        fingerprint=raw.get("fingerprint"),
        digest=raw.get("digest"),
        raw=raw,
    )
