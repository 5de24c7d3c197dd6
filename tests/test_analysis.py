"""The analysis core: LMC barrier, filter-normalised directions, curvature fits."""

from pathlib import Path

import jax
import numpy as np
import pytest

from eslt_cli.analysis import lmc, sharpness
from eslt_cli.checkpoint import Checkpoint
from eslt_cli.errors import BadInput
from eslt_cli.specs import ModelSpec, TaskSpec
from eslt_cli.tasks import build_task
from eslt_cli.tasks.base import evaluate


def tree(seed: int = 0, sparse: bool = True) -> tuple[dict, dict]:
    """A CNN-like tree (HWIO conv kernel, dense kernel, biases) and a mask with a fully pruned filter."""
    rng = np.random.default_rng(seed)
    params = {
        "conv0": {"kernel": rng.normal(size=(3, 3, 2, 4)), "bias": rng.normal(size=4)},
        "dense": {"kernel": rng.normal(size=(6, 3)), "bias": rng.normal(size=3)},
    }
    mask = jax.tree.map(lambda a: (rng.random(a.shape) < (0.6 if sparse else 2.0)).astype(np.uint8), params)
    mask["conv0"]["bias"][:] = 1
    mask["dense"]["bias"][:] = 1
    mask["conv0"]["kernel"][..., 1] = 0  # a filter pruned away entirely
    params = jax.tree.map(lambda p, m: (p * m).astype(np.float32), params, mask)
    return params, mask


def test_barrier_is_the_largest_rise_above_the_chord() -> None:
    assert lmc.barrier([0.0, 0.5, 1.0], [1.0, 3.0, 2.0]) == pytest.approx(3.0 - 1.5)
    assert lmc.barrier([0.0, 0.5, 1.0], [1.0, 1.0, 1.0]) == 0.0
    assert lmc.barrier([0.0, 0.5, 1.0], [2.0, 0.0, 2.0]) == 0.0  # a valley: the endpoints are the max
    np.testing.assert_allclose(lmc.to_error(np.array([0.9, 0.25]), "accuracy"), [0.1, 0.75])
    np.testing.assert_allclose(lmc.to_error(np.array([-300.0, 10.0]), "return"), [300.0, -10.0])


def test_interpolate_hits_both_ends() -> None:
    a, _ = tree(0)
    b, _ = tree(1)
    stacked = lmc.interpolate(a, b, np.array([0.0, 0.5, 1.0]))
    for x, y, s in zip(jax.tree.leaves(a), jax.tree.leaves(b), jax.tree.leaves(stacked)):
        np.testing.assert_allclose(s[0], x)
        np.testing.assert_allclose(s[1], 0.5 * (x + y), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(s[2], y)


@pytest.fixture(scope="module")
def pendulum():
    task = build_task(TaskSpec("pendulum", train_episodes=2, test_episodes=2), ModelSpec("mlp", hidden=(8,)))
    a = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(0)))
    b = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(1)))
    return task, a, b


def test_lmc_on_a_real_task(pendulum) -> None:
    task, a, b = pendulum
    key = jax.random.PRNGKey(3)
    same = lmc.lmc(task, a, a, key, points=3)
    assert same.barrier == 0.0 and same.error_of == "return"
    np.testing.assert_allclose(same.error, same.error[0], rtol=1e-6)  # flat
    line = lmc.lmc(task, a, b, key, points=3)
    # The endpoints are each network's own test error, as `evaluate` computes it.
    assert line.error[0] == pytest.approx(-evaluate(task, a, key)["metric"], rel=1e-5)
    assert line.error[-1] == pytest.approx(-evaluate(task, b, key)["metric"], rel=1e-5)
    assert line.barrier == pytest.approx(lmc.barrier(line.alpha, line.error))
    assert line.barrier >= 0.0


def fake_checkpoint(name: str, task: str, params: dict, kind: str = "trained") -> Checkpoint:
    state = {"init": params, "mask": jax.tree.map(lambda a: np.ones(a.shape, np.uint8), params)}
    if kind == "trained":
        state |= {"mean": params, "best": params}
    meta = {"kind": kind, "task": {"name": task}, "model": {"kind": "cnn"}, "metric": "accuracy"}
    return Checkpoint(Path(name), state, meta)


def test_lmc_refuses_other_tasks_architectures_and_tickets() -> None:
    a, _ = tree(0)
    wide = jax.tree.map(lambda x: np.zeros((*x.shape[:-1], x.shape[-1] + 1), x.dtype), a)
    lmc.check_compatible(fake_checkpoint("A", "mnist", a), fake_checkpoint("B", "mnist", tree(1)[0]))
    with pytest.raises(BadInput, match="one task"):
        lmc.check_compatible(fake_checkpoint("A", "mnist", a), fake_checkpoint("B", "kmnist", a))
    with pytest.raises(BadInput, match="architectures"):
        lmc.check_compatible(fake_checkpoint("A", "mnist", a), fake_checkpoint("B", "mnist", wide))
    with pytest.raises(BadInput, match="is a ticket"):
        lmc.trained_params(fake_checkpoint("T", "mnist", a, kind="ticket"))
    with pytest.raises(BadInput, match="final or best"):
        lmc.trained_params(fake_checkpoint("A", "mnist", a), "last")


def test_directions_are_filter_and_neuron_normalised_and_masked() -> None:
    weights, mask = tree(0)
    (d,) = sharpness.directions(7, 1, weights, mask)
    for layer in ("conv0", "dense"):
        k, w, m = d[layer]["kernel"], weights[layer]["kernel"], mask[layer]["kernel"]
        axes = tuple(range(k.ndim - 1))  # every axis but the output one
        norm = lambda a: np.sqrt((a.astype(np.float64) ** 2).sum(axes))  # noqa: E731
        np.testing.assert_allclose(norm(k), norm(w * m), rtol=1e-5)
        assert (k[m == 0] == 0).all()  # pruned weights stay pruned
        assert (d[layer]["bias"] == 0).all()  # biases do not move
    assert (d["conv0"]["kernel"][..., 1] == 0).all()  # a fully pruned filter has no direction


def test_directions_from_another_checkpoint_use_its_weights_and_this_mask() -> None:
    weights0, _ = tree(0, sparse=False)
    _, mask = tree(1)
    a = sharpness.directions(3, 2, weights0, mask)
    b = sharpness.directions(3, 1, weights0, mask)
    for x, y in zip(jax.tree.leaves(a[0]), jax.tree.leaves(b[0])):
        np.testing.assert_array_equal(x, y)  # direction i does not depend on how many are drawn
    k, w0, m = a[1]["dense"]["kernel"], weights0["dense"]["kernel"], mask["dense"]["kernel"]
    np.testing.assert_allclose(np.linalg.norm(k, axis=0), np.linalg.norm(w0 * m, axis=0), rtol=1e-5)
    assert (k[m == 0] == 0).all()


def test_curvature_of_a_quadratic_loss_is_recovered() -> None:
    params, mask = tree(0)
    dirs = sharpness.directions(0, 3, params, mask)
    centre = params["dense"]["kernel"].astype(np.float64)

    def toy(stacked: dict) -> dict[str, np.ndarray]:
        # L(θ) = 3·|Δ|² + 0.5·ΣΔ + 2 over the dense kernel: second derivative 6·|d|² along d.
        delta = np.asarray(stacked["dense"]["kernel"], np.float64) - centre[None]
        loss = 3.0 * (delta**2).sum((1, 2)) + 0.5 * delta.sum((1, 2)) + 2.0
        return {"loss": loss, "metric": -loss}

    prof = sharpness.profile_1d(toy, params, dirs, radius=0.5, points=5)
    assert prof.loss.shape == (3, 5) and prof.t[0] == -0.5 and prof.t[-1] == 0.5
    expected = [6.0 * float((d["dense"]["kernel"].astype(np.float64) ** 2).sum()) for d in dirs]
    np.testing.assert_allclose(prof.curvature, expected, rtol=1e-4)
    assert prof.curvature_mean == pytest.approx(np.mean(expected), rel=1e-4)
    np.testing.assert_allclose(sharpness.curvature(np.array([-1.0, 0.0, 1.0]), np.array([1.0, 0.0, 1.0])), [2.0])

    surf = sharpness.surface_2d(toy, params, dirs[0], dirs[1], radius=1.0, grid=3)
    assert surf.loss.shape == (3, 3) and surf.loss[1, 1] == pytest.approx(2.0, rel=1e-5)


def test_surface_file_is_refused_when_present(tmp_path: Path) -> None:
    ckpt = tmp_path / "run" / "L01-snr-trained"
    path = sharpness.surface_path(ckpt, 4)
    assert path == (tmp_path / "run" / "L01-snr-trained-surface-seed4.npz").resolve()
    surf = sharpness.Surface(np.zeros(2), np.zeros(2), np.ones((2, 2)), np.ones((2, 2)))
    sharpness.check_writable(path, force=False)
    sharpness.save_surface(path, surf)
    with np.load(path) as z:
        assert z["loss"].shape == (2, 2) and set(z.files) >= {"alpha", "beta", "loss", "metric"}
    with pytest.raises(BadInput, match="--force"):
        sharpness.check_writable(path, force=False)
    sharpness.check_writable(path, force=True)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left
