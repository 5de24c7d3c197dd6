"""Sharpness of a trained network along filter-normalised random directions (Section 5, appendix A.3).

A direction ``d`` (Li et al., 2018) is a Gaussian draw with the shape of the
network, rescaled so that every output filter of a conv kernel (the last axis
of a HWIO kernel) and every output neuron of a dense kernel (a column of the
``(in, out)`` kernel) has the norm of the corresponding filter or neuron of
the reference weights. Directions are multiplied by the mask first, so pruned
weights stay zero along them (and a fully pruned filter gets a zero
direction). Biases get a zero direction: they are left where training put
them, as Li et al. do for biases and batch-norm parameters.

1D: the test loss L(θ + t·d) for t on a grid over [−r, r] per direction; a
quadratic ``a t² + b t + c`` fitted per direction gives the curvature 2a (the
second derivative at the checkpoint). 2D: L(θ + α·d1 + β·d2) on a grid.

By default the directions are normalised at the checkpoint itself (its
weights and mask). With ``directions_from`` C0 they follow appendix A.3: drawn
and normalised once at C0 (the level-0 dense network, its own weights and
mask), then applied to the checkpoint multiplied by the checkpoint's mask and
not renormalised, so every IMP level is probed along the same vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eslt_cli import outputs, paths, pipeline
from eslt_cli.analysis.lmc import evaluate_points, trained_params
from eslt_cli.checkpoint import Checkpoint
from eslt_cli.errors import BadInput, RunFailed
from eslt_cli.specs import ESSpec
from eslt_cli.tasks.base import Params, same_structure

EPS = 1e-12


def _is_kernel(path: tuple[Any, ...]) -> bool:
    last = path[-1]
    return getattr(last, "key", getattr(last, "name", None)) == "kernel"


def normalize_direction(direction: Params, weights: Params, mask: Params) -> Params:
    """Filter-/neuron-wise normalisation of ``direction`` to ``weights * mask``.

    For every kernel, each slice along the last axis (a conv output filter or a
    dense output neuron) of ``direction * mask`` is scaled to the norm of the
    same slice of ``weights * mask``; biases (and other leaves) get zeros.
    """

    def norm_leaf(path: tuple[Any, ...], d: Any, w: Any, m: Any) -> np.ndarray:
        d, w = np.asarray(d, np.float64), np.asarray(w, np.float64)
        if not _is_kernel(path) or d.ndim < 2:
            return np.zeros(d.shape, np.float32)
        m = np.asarray(m, np.float64)
        d, w = d * m, w * m
        axes = tuple(range(d.ndim - 1))
        d_norm = np.sqrt((d**2).sum(axes, keepdims=True))
        w_norm = np.sqrt((w**2).sum(axes, keepdims=True))
        scale = np.where(d_norm > EPS, w_norm / np.maximum(d_norm, EPS), 0.0)
        return (d * scale).astype(np.float32)

    return jax.tree_util.tree_map_with_path(norm_leaf, direction, weights, mask)


def gaussian(key: jax.Array, like: Params) -> Params:
    """A standard normal draw (float64) shaped like ``like``; leaf j uses ``split(key, n_leaves)[j]``."""
    leaves, treedef = jax.tree.flatten(like)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(
        treedef, [np.asarray(jax.random.normal(k, np.shape(x)), np.float64) for k, x in zip(keys, leaves)]
    )


def random_direction(key: jax.Array, weights: Params, mask: Params) -> Params:
    """One Gaussian direction from ``key``, filter-normalised to ``weights * mask``."""
    return normalize_direction(gaussian(key, weights), weights, mask)


def directions(seed: int, n: int, weights: Params, mask: Params) -> list[Params]:
    """``n`` normalised directions; direction i uses key ``fold_in(PRNGKey(seed), i)``, so not ``n``."""
    if n < 1:
        raise BadInput(f"--directions must be at least 1, got {n}")
    base = jax.random.PRNGKey(seed)
    return [random_direction(jax.random.fold_in(base, i), weights, mask) for i in range(n)]


def masked(dirs: Sequence[Params], mask: Params) -> list[Params]:
    """``d * mask`` for each direction, with no renormalisation (appendix A.3: same vectors at every level)."""
    return [jax.tree.map(lambda d, m: np.asarray(d, np.float32) * np.asarray(m, np.float32), d, mask) for d in dirs]


def check_mask_within(mask: Params, reference_mask: Params, what: str) -> None:
    """Refuse a ``mask`` that keeps weights ``reference_mask`` pruned: directions there would be zero."""
    if any(np.any((np.asarray(m) != 0) & (np.asarray(r) == 0)) for m, r in
           zip(jax.tree.leaves(mask), jax.tree.leaves(reference_mask))):  # fmt: skip
        raise BadInput(f"{what}: prunes weights the measured checkpoint keeps (its directions are zero there); "
                       "take directions from the level-0 dense network")  # fmt: skip


def check_same_architecture(a: Params, b: Params, what: str) -> None:
    """Refuse ``b`` unless it has ``a``'s tree structure and shapes."""
    if not same_structure(a, b) or any(
        np.shape(x) != np.shape(y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    ):
        raise BadInput(f"{what}: has a different network architecture; take directions from the same architecture")


def shifted(params: Params, dirs: Sequence[Params], coords: np.ndarray) -> Params:
    """Stacked networks ``params + Σ_k coords[:, k]·dirs[k]`` (one per row of ``coords``)."""
    coords = np.asarray(coords, np.float32)

    def leaf(p: Any, *ds: Any) -> np.ndarray:
        p = np.asarray(p, np.float32)
        out = np.repeat(p[None], coords.shape[0], axis=0)
        for k, d in enumerate(ds):
            out = out + coords[:, k].reshape(-1, *([1] * p.ndim)) * np.asarray(d, np.float32)[None]
        return out

    return jax.tree.map(leaf, params, *dirs)


def curvature(t: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """Second derivative 2a of a quadratic ``a t² + b t + c`` fitted to each row of ``losses``."""
    t = np.asarray(t, np.float64)
    losses = np.atleast_2d(np.asarray(losses, np.float64))
    if not np.all(np.isfinite(losses)):
        raise RunFailed("non-finite test loss along a direction: try a smaller --radius")
    return np.array([2.0 * np.polyfit(t, row, 2)[0] for row in losses])


Evaluator = Callable[[Params], dict[str, np.ndarray]]  # stacked networks -> {"metric", "loss"} per network


@dataclass(frozen=True)
class Profile:
    """1D loss profiles along ``len(loss)`` directions and their fitted curvatures."""

    t: np.ndarray
    loss: np.ndarray  # (directions, points)
    metric: np.ndarray  # (directions, points)
    curvature: np.ndarray  # (directions,)

    @property
    def curvature_mean(self) -> float:
        return float(np.mean(self.curvature))

    @property
    def curvature_std(self) -> float:
        return float(np.std(self.curvature))


def line_coords(n: int, t: np.ndarray) -> np.ndarray:
    """Coordinates (rows: networks, columns: directions) of t along each of ``n`` directions in turn."""
    coords = np.zeros((n * len(t), n), np.float64)
    for k in range(n):
        coords[k * len(t) : (k + 1) * len(t), k] = t
    return coords


def grid_coords(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Coordinates of the lattice ``alpha × beta`` (row-major, alpha first) along two directions."""
    aa, bb = np.meshgrid(alpha, beta, indexing="ij")
    return np.stack([aa.ravel(), bb.ravel()], 1)


def _axis(radius: float, n: int, least: int, flag: str) -> np.ndarray:
    """``n`` evenly spaced offsets in [-radius, radius], checked."""
    if n < least:
        why = " to fit a quadratic" if flag == "--points" else ""
        raise BadInput(f"{flag} must be at least {least}{why}, got {n}")
    if not radius > 0:
        raise BadInput(f"--radius must be positive, got {radius}")
    return np.linspace(-radius, radius, n)


def profile_of(t: np.ndarray, loss: np.ndarray, metric: np.ndarray) -> Profile:
    """A :class:`Profile` from losses and metrics laid out as :func:`line_coords` orders them."""
    loss = np.asarray(loss, np.float64).reshape(-1, len(t))
    return Profile(np.asarray(t), loss, np.asarray(metric, np.float64).reshape(loss.shape), curvature(t, loss))


def profile_1d(
    evaluate: Evaluator, params: Params, dirs: Sequence[Params], radius: float = 1.0, points: int = 21
) -> Profile:
    """Loss at ``params + t·d`` for t in ``linspace(-radius, radius, points)`` and each direction."""
    t = _axis(radius, points, 3, "--points")
    out = evaluate(shifted(params, dirs, line_coords(len(dirs), t)))
    return profile_of(t, out["loss"], out["metric"])


@dataclass(frozen=True)
class Surface:
    """Loss and metric on a 2D grid: ``loss[i, j]`` at ``params + alpha[i]·d1 + beta[j]·d2``."""

    alpha: np.ndarray
    beta: np.ndarray
    loss: np.ndarray
    metric: np.ndarray


def surface_2d(
    evaluate: Evaluator, params: Params, d1: Params, d2: Params, radius: float = 1.0, grid: int = 11
) -> Surface:
    """The loss surface over ``[-radius, radius]²`` on a ``grid`` × ``grid`` lattice."""
    axis = _axis(radius, grid, 2, "--grid")
    out = evaluate(shifted(params, [d1, d2], grid_coords(axis, axis)))
    shape = (grid, grid)
    return Surface(axis, axis.copy(), np.asarray(out["loss"]).reshape(shape), np.asarray(out["metric"]).reshape(shape))


def check_writable(path: Path, force: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuse to write ``path`` (checked before any work): an existing file only with ``force``, and only a
    surface eslt wrote and nobody changed since (its ``.<name>.eslt`` record, see :mod:`eslt_cli.outputs`);
    never an input checkpoint or a path inside one."""
    if Path(path).is_dir():
        raise BadInput(f"{path} is a folder: give --surface-out a file name ending in .npz")
    outputs.check_replace(Path(path), "surface", force, "--surface-out", inputs)


def save_surface(path: Path, surface: Surface, **extra: Any) -> Path:
    """Write ``surface`` as an ``.npz`` (alpha, beta, loss, metric, extras) atomically, then its record."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a file, not a name: np.savez would add .npz to one without it
            np.savez(handle, alpha=surface.alpha, beta=surface.beta, loss=surface.loss, metric=surface.metric,
                     allow_pickle=True, **{k: np.asarray(v) for k, v in extra.items()})  # fmt: skip

    return outputs.write_atomic(Path(path).absolute(), "surface", write)


def run_sharpness(
    ckpt: Checkpoint,
    which: str = "final",
    radius: float = 1.0,
    points: int = 21,
    n_directions: int = 5,
    seed: int = 0,
    two_d: bool = False,
    grid: int = 11,
    surface_out: Path | None = None,
    directions_from: Checkpoint | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Sharpness of the trained checkpoint ``ckpt``.

    Directions are drawn from ``seed``. Without ``directions_from`` they are
    normalised at ``ckpt`` (its weights and mask). With it (another trained
    checkpoint of the same task and architecture, normally level 0) they are
    normalised once at ``directions_from``'s own weights and mask and then
    multiplied by ``ckpt``'s mask, unrenormalised (appendix A.3). Returns the
    JSON record (see README, "Analyses"); with ``two_d`` the surface is also
    written to ``surface_out`` (default :func:`paths.surface`), refusing an
    existing file unless ``force``.
    """
    params = trained_params(ckpt, which)
    if n_directions < 1:
        raise BadInput(f"--directions must be at least 1, got {n_directions}")
    _axis(radius, points, 3, "--points")  # check everything before any work
    out_path = None
    if two_d:
        _axis(radius, grid, 2, "--grid")
        out_path = Path(surface_out).absolute() if surface_out is not None else paths.surface(ckpt.path, seed)
        sources = [ckpt.path] if directions_from is None else [ckpt.path, directions_from.path]
        check_writable(out_path, force, sources)
    n_drawn = max(n_directions, 2 if two_d else 1)
    if directions_from is None:
        dirs = directions(seed, n_drawn, params, ckpt.state["mask"])
    else:
        reference = trained_params(directions_from, which)
        if directions_from.record.task.name != ckpt.record.task.name:
            raise BadInput(f"{directions_from.path}: is a {directions_from.record.task.name} checkpoint, "
                           f"not {ckpt.record.task.name}: take directions from the same task")  # fmt: skip
        check_same_architecture(params, reference, str(directions_from.path))
        check_mask_within(ckpt.state["mask"], directions_from.state["mask"], str(directions_from.path))
        dirs = masked(directions(seed, n_drawn, reference, directions_from.state["mask"]), ckpt.state["mask"])
    task, key = pipeline.check_fits(ckpt, pipeline.task_of(ckpt.record)), pipeline.eval_key(ckpt.record)
    arrays = pipeline.arrays_of(ckpt, task, which)

    def evaluate(stacked: Params) -> dict[str, np.ndarray]:
        return evaluate_points(task, stacked, key, arrays)

    prof = profile_1d(evaluate, params, dirs[:n_directions], radius, points)
    if out_path is not None:
        surf = surface_2d(evaluate, params, dirs[0], dirs[1], radius, grid)
        save_surface(
            out_path,
            surf,
            checkpoint=str(ckpt.path.resolve()),
            seed=seed,
            radius=radius,
            directions_from="" if directions_from is None else str(directions_from.path.resolve()),
        )
    meta = ckpt.record
    return {
        "kind": "sharpness",
        "checkpoint": str(ckpt.path.resolve()),
        "task": meta.task.name,
        "level": meta.level,
        "arm": meta.arm,
        "sparsity": meta.sparsity.pruned,
        "strategy": meta.trainer.strategy if isinstance(meta.trainer, ESSpec) else None,
        "trainer": meta.raw["trainer"],  # as stored
        "seed": meta.seed,
        "which": which,
        "radius": radius,
        "direction_seed": seed,
        "t": [float(x) for x in prof.t],
        "loss": prof.loss.tolist(),
        "metric": prof.metric.tolist(),
        "curvature": [float(x) for x in prof.curvature],
        "curvature_mean": prof.curvature_mean,
        "curvature_std": prof.curvature_std,
        "directions_from": None if directions_from is None else str(directions_from.path.resolve()),
        "directions_from_level": None if directions_from is None else directions_from.record.level,
        "surface": None if out_path is None else str(out_path),
    }
