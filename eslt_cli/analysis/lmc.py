"""Linear mode connectivity (Section 5; Frankle et al., 2020) between two trained checkpoints.

The network θ(α) = θA + α·(θB − θA) is evaluated on the test split for α on a
grid over [0, 1]. The stored (masked) weights are interpolated as they are,
so with different masks the intermediate networks are denser than either end.
The error is 1 − accuracy for vision tasks and −return for control tasks.

Two barriers are reported:

- ``barrier``, the error barrier of Frankle et al. (2020, "instability"):
  ``max_α err(α) − (err(0) + err(1)) / 2``. It is 0 only when the path is
  flat; a pair with unequal endpoint errors and a straight error line scores
  half their difference.
- ``barrier_linear``: ``max_α err(α) − [err(0) + α·(err(1) − err(0))]``, the
  largest rise above the straight line between the endpoint errors (0 for
  any path that never rises above that line).

Records carry ``barrier_definition`` (:data:`BARRIER_DEFINITION`) because
records written before it existed stored the linear-baseline value as
``barrier``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from eslt_cli import pipeline
from eslt_cli.checkpoint import Checkpoint
from eslt_cli.errors import BadInput
from eslt_cli.tasks.base import Arrays, Params, Task, same_structure

WHICH = {"final": "mean", "best": "best"}
# Names the meaning of ``barrier`` in a record; plots refuse other values.
BARRIER_DEFINITION = "frankle2020"
Curve = Sequence[float] | np.ndarray  # α values or errors, ascending α from 0 to 1


def trained_params(ckpt: Checkpoint, which: str = "final") -> Params:
    """The trained weights of ``ckpt``: its final ES mean or its best test-scoring mean."""
    if which not in WHICH:
        raise BadInput(f"--which must be final or best, got {which!r}")
    if ckpt.kind != "trained":
        raise BadInput(f"{ckpt.path}: is a ticket; analyses need a trained checkpoint (`eslt train {ckpt.path}`)")
    return ckpt.state[WHICH[which]]


def check_compatible(a: Checkpoint, b: Checkpoint) -> None:
    """Refuse two checkpoints of different tasks or architectures (tree structure, shapes)."""
    ta, tb = a.record.task.name, b.record.task.name
    if ta != tb:
        raise BadInput(f"{a.path} is a {ta} checkpoint but {b.path} is {tb}: compare checkpoints of one task")
    sa, sb = a.state["init"], b.state["init"]
    same = same_structure(sa, sb) and all(
        np.shape(x) == np.shape(y) for x, y in zip(jax.tree.leaves(sa), jax.tree.leaves(sb))
    )
    if not same or a.record.model != b.record.model:
        raise BadInput(f"{a.path} and {b.path} have different network architectures: compare one architecture")


def error_of(metric: str) -> str:
    """What the error is computed from: ``accuracy`` (1 − acc) or ``return`` (−return)."""
    if metric not in ("accuracy", "return"):
        raise BadInput(f"unknown metric {metric!r}: expected accuracy or return")
    return metric


def to_error(metric_values: np.ndarray, metric: str) -> np.ndarray:
    """Lower-is-better error of test metric values: 1 − accuracy, or −return."""
    values = np.asarray(metric_values, np.float64)
    return 1.0 - values if error_of(metric) == "accuracy" else -values


def _curve(alpha: Curve, error: Curve) -> tuple[np.ndarray, np.ndarray]:
    a, e = np.asarray(alpha, np.float64), np.asarray(error, np.float64)
    if a.ndim != 1 or a.shape != e.shape or len(a) < 2 or a[0] != 0.0 or a[-1] != 1.0:
        raise BadInput("an error curve needs matching alpha and error lists with alpha running from 0 to 1")
    return a, e


def barrier(alpha: Curve, error: Curve) -> float:
    """Frankle et al. (2020) error barrier: max over α of err(α), minus the mean of err(0) and err(1)."""
    _, e = _curve(alpha, error)
    return float(np.max(e) - (e[0] + e[-1]) / 2.0)


def barrier_linear(alpha: Curve, error: Curve) -> float:
    """max over α of err(α) − [err(0) + α·(err(1) − err(0))], the rise above the endpoints' chord."""
    a, e = _curve(alpha, error)
    # err(0) + α·Δ rather than (1 − α)·err(0) + α·err(1): equal endpoints give exactly err(0).
    return float(np.max(e - (e[0] + a * (e[-1] - e[0]))))


def interpolate(a: Params, b: Params, alpha: np.ndarray) -> Params:
    """The stacked networks a + α·(b − a), one per α along a new leading axis (float32).

    Computed in float64; rows at α = 0 and α = 1 are ``a`` and ``b`` bit for
    bit (rounding of a + (b − a) could otherwise move the α = 1 end by an ulp),
    and ``a == b`` gives ``a`` at every α.
    """
    alpha = np.asarray(alpha, np.float64)

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x32, y32 = np.asarray(x, np.float32), np.asarray(y, np.float32)
        w = alpha.reshape(-1, *([1] * x32.ndim))
        x64 = x32.astype(np.float64)[None]
        out = (x64 + w * (y32.astype(np.float64)[None] - x64)).astype(np.float32)
        out[alpha == 0.0] = x32
        out[alpha == 1.0] = y32
        return out

    return jax.tree.map(mix, a, b)


@functools.lru_cache(maxsize=16)
def _jitted_points(task: Task) -> Callable[..., dict[str, jax.Array]]:
    def run(arrays: Arrays, stacked: Params, key: jax.Array) -> dict[str, jax.Array]:
        return jax.lax.map(lambda p: task.evaluate(arrays, p, key), stacked)

    return jax.jit(run)


def evaluate_points(task: Task, stacked: Params, key: jax.Array, arrays: Arrays | None = None) -> dict[str, np.ndarray]:
    """Test metric and loss of every network in ``stacked`` (leading axis), in one jitted call.

    All networks share ``key`` (the same episodes for control tasks), and the
    data (``arrays``, default the task's) is passed as an argument, not baked
    into the program.
    """
    out = _jitted_points(task)(task.arrays if arrays is None else arrays, stacked, key)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


@dataclass(frozen=True)
class LmcResult:
    alpha: np.ndarray
    metric: np.ndarray
    loss: np.ndarray
    error: np.ndarray
    error_of: str
    barrier: float  # Frankle et al. (2020)
    barrier_linear: float

    def to_json(self) -> dict[str, Any]:
        return {
            "alpha": [float(x) for x in self.alpha],
            "error": [float(x) for x in self.error],
            "loss": [float(x) for x in self.loss],
            "metric": [float(x) for x in self.metric],
            "error_of": self.error_of,
            "barrier_definition": BARRIER_DEFINITION,
            "barrier": self.barrier,
            "barrier_linear": self.barrier_linear,
        }


def lmc(task: Task, a: Params, b: Params, key: jax.Array, points: int = 11, arrays: Arrays | None = None) -> LmcResult:
    """Evaluate the straight line from ``a`` to ``b`` at ``points`` α values and its barriers."""
    if points < 2:
        raise BadInput(f"--points must be at least 2 (the two endpoints), got {points}")
    alpha = np.linspace(0.0, 1.0, points)
    out = evaluate_points(task, interpolate(a, b, alpha), key, arrays)
    error = to_error(out["metric"], task.metric)
    return LmcResult(alpha, out["metric"], out["loss"], error, error_of(task.metric), barrier(alpha, error),
                     barrier_linear(alpha, error))  # fmt: skip


def run_lmc(a: Checkpoint, b: Checkpoint, which: str = "final", points: int = 11) -> dict[str, Any]:
    """LMC of two trained checkpoints of one task and architecture, as the JSON record.

    Evaluated with A's task settings, A's evaluation key and A's observation
    normaliser (control tasks that have one), so the α = 0 end reproduces A's
    recorded test metric.
    """
    pa, pb = trained_params(a, which), trained_params(b, which)
    check_compatible(a, b)
    if points < 2:
        raise BadInput(f"--points must be at least 2 (the two endpoints), got {points}")
    task = pipeline.check_fits(a, pipeline.task_of(a.record))
    result = lmc(task, pa, pb, pipeline.eval_key(a.record), points, pipeline.arrays_of(a, task, which))
    metas = (a.record, b.record)
    return {
        "kind": "lmc",
        "a": str(a.path.resolve()),
        "b": str(b.path.resolve()),
        "which": which,
        "task": a.record.task.name,
        "levels": [m.level for m in metas],
        "sparsity": [m.sparsity.pruned for m in metas],
        "arms": [m.arm for m in metas],
        "strategies": [m.optimiser for m in metas],  # the ES, or the gradient trainer's name
        "seeds": [m.seed for m in metas],
        **result.to_json(),
    }
