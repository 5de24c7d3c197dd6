"""What every trainer (ES, Adam, PPO) reports and keeps between its jitted chunks: progress
reports, the run's bookkeeping and result, and the snapshot store it resumes from."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from eslt_cli.errors import Interrupted, RunFailed
from eslt_cli.tasks.base import Params


@dataclass(frozen=True)
class Progress:
    """What the trainer reports after each chunk, and once on resuming from a snapshot (``resumed``)."""

    generation: int
    generations: int
    fitness: float  # population mean fitness of the last generation (lower is better: -return, or a loss)
    metric: float  # test metric of the current mean
    gens_per_s: float
    best: float = -math.inf  # best test metric so far
    resumed: bool = False  # a snapshot brought the run to `generation`; nothing was trained yet
    runs: int = 1  # runs trained together (train_many): metric is their best current one, worst the lowest
    worst: float = math.nan


@dataclass(frozen=True)
class TrainResult:
    """Final and best means, per-weight search std (None if isotropic), history.

    ``best_std`` is the search std when the best mean was scored (None if
    isotropic, for gradient trainers, or when resumed from a snapshot that
    predates it).
    """

    mean: Params
    best: Params
    std: Params | None
    final: dict[str, float]
    norm: dict[str, np.ndarray] | None  # observation normaliser at the end (None: the task has none)
    best_norm: dict[str, np.ndarray] | None  # ... and when the best mean was scored
    best_metrics: dict[str, float]
    history: dict[str, list[float] | dict[str, list[float]]]  # fitness_mean, fitness_best; eval: test records
    best_std: Params | None = None


@dataclass
class Record:
    """The bookkeeping every trainer shares between its jitted chunks.

    Per-step (generation, epoch, update) population-mean and best fitness,
    the test evaluations, the best test score so far, snapshots and stops;
    ``unit`` names a step in messages.
    """

    total: int
    unit: str
    stats: list[np.ndarray] = field(default_factory=list)
    evals: dict[str, list[float]] = field(default_factory=lambda: {"generation": [], "metric": [], "loss": []})
    best: dict[str, float] = field(default_factory=lambda: {"metric": -np.inf, "loss": np.inf, "generation": 0})
    done: int = 0
    last_save: int = 0

    def resume(
        self, stats: np.ndarray, info: dict[str, Any], on_progress: Callable[[Progress], None] | None = None
    ) -> None:
        """Continue from a snapshot's stats and :meth:`info`, and tell ``on_progress`` (``resumed``)."""
        self.stats = [np.asarray(stats).reshape(-1, 2)]
        self.best, self.evals, self.done = info["best"], info["evals"], int(info["generation"])
        self.last_save = self.done
        if on_progress is not None:
            fitness = float(self.stats[0][-1, 0]) if len(self.stats[0]) else math.nan
            metric = self.evals["metric"][-1] if self.evals["metric"] else math.nan
            on_progress(Progress(self.done, self.total, fitness, metric, 0.0, self.best["metric"], resumed=True))

    def progress(self, fitness: float, metric: float, per_s: float) -> Progress:
        """The report after a chunk: ``fitness`` of its last step, the test ``metric``, steps per second."""
        return Progress(self.done, self.total, fitness, metric, per_s, self.best["metric"])

    def info(self) -> dict[str, Any]:
        """What a snapshot stores besides arrays."""
        return {"generation": self.done, "best": self.best, "evals": self.evals}

    def add(self, n: int, stats: np.ndarray, metrics: dict[str, float] | None, failure: str) -> bool:
        """Record ``n`` more steps (``stats``: rows of mean and best fitness) and, when tested, ``metrics``.

        Raises :class:`RunFailed` with ``failure`` (what to do about it) on
        non-finite values; returns whether ``metrics`` are a new best.
        """
        self.done += n
        if not np.isfinite(stats).all() or (metrics is not None and not np.isfinite(metrics["metric"])):
            raise RunFailed(f"non-finite fitness or test metric by {self.unit} {self.done}: {failure}")
        self.stats.append(np.asarray(stats).reshape(-1, 2))
        if metrics is None:
            return False
        for k in ("metric", "loss"):
            self.evals[k].append(metrics[k])
        self.evals["generation"].append(self.done)
        if metrics["metric"] <= self.best["metric"]:
            return False
        self.best = {**metrics, "generation": self.done}
        return True

    def due(self, stored: bool, signum: int, save_every: int) -> bool:
        """Whether a snapshot is due now: one ``save_every`` steps after the last, or on a signal."""
        return stored and self.done < self.total and bool(signum or self.done - self.last_save >= save_every)

    def after_chunk(
        self, stop: Callable[[], int] | None, store: SnapshotStore | None, save_every: int, save: Callable[[], None]
    ) -> None:
        """Snapshot when one is due or a signal came, then raise :class:`Interrupted` on a signal."""
        signum = stop() if stop is not None else 0
        if self.due(store is not None, signum, save_every):
            save()
            self.last_save = self.done
        if signum:
            raise Interrupted(
                f"stopped by signal {signum} at {self.unit} {self.done}/{self.total}"
                + ("; re-run the same command to resume" if store is not None else ""),
                signum,
            )

    def result(
        self,
        mean: Params,
        best: Params,
        std: Params | None,
        norm: Any = None,
        best_norm: Any = None,
        best_std: Params | None = None,
    ) -> TrainResult:
        """The :class:`TrainResult` of the finished run."""
        stats = np.concatenate(self.stats)
        return TrainResult(
            mean=mean,
            best=best,
            std=std,
            final={"metric": self.evals["metric"][-1], "loss": self.evals["loss"][-1], "generation": self.done},
            norm=norm,
            best_norm=best_norm,
            best_metrics=self.best,
            history={"fitness_mean": stats[:, 0].tolist(), "fitness_best": stats[:, 1].tolist(), "eval": self.evals},
            best_std=best_std,
        )


class SnapshotStore(Protocol):
    """Where :func:`train` keeps snapshots to resume from (see checkpoint.ResumeStore)."""

    def latest(self) -> tuple[dict[str, Any], dict[str, Any]] | None: ...

    def save(self, step: int, arrays: dict[str, Any], info: dict[str, Any]) -> None: ...
