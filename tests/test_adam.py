"""The Adam trainer on a slice of real Fashion-MNIST: learning, masks, resume, determinism."""

import types
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import FASHION, needs_fashion
from eslt_cli.checkpoint import ResumeStore
from eslt_cli.errors import BadInput, Interrupted
from eslt_cli.specs import ModelSpec, TaskSpec, TrainerSpec
from eslt_cli.tasks.data import ImageData, load_idx_folder
from eslt_cli.tasks.vision import VisionTask
from eslt_cli.trainers import adam
from eslt_cli.trainers.es import Progress, TrainResult

SPEC = TrainerSpec("adam", lr=1e-3, epochs=2, eval_every=1)


@pytest.fixture(scope="module")
def task() -> VisionTask:
    """2048 training and 1000 test images of Fashion-MNIST: an epoch is 16 steps of 128."""
    full = load_idx_folder(FASHION)
    data = ImageData(full.x_train[:2048], full.y_train[:2048], full.x_test[:1000], full.y_test[:1000],
                     full.num_classes, "fashion_mnist[:2048]")  # fmt: skip
    model = ModelSpec("cnn", features=(8, 16), kernel_size=5)
    return VisionTask(TaskSpec("fashion_mnist", batch_size=128), model, data)


@pytest.fixture(scope="module")
def ticket(task: VisionTask) -> tuple[dict, dict]:
    """The init and a mask with half of every kernel pruned at random."""
    init = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(0)))
    rng = np.random.default_rng(0)
    mask = {layer: {"kernel": (rng.random(leaves["kernel"].shape) < 0.5).astype(np.uint8),
                    "bias": np.ones(leaves["bias"].shape, np.uint8)} for layer, leaves in init.items()}  # fmt: skip
    return init, mask


@pytest.fixture(scope="module")
def reference(task: VisionTask, ticket: tuple[dict, dict]) -> tuple[TrainResult, list[Progress]]:
    seen: list[Progress] = []
    return adam.train(task, SPEC, *ticket, jax.random.PRNGKey(1), on_progress=seen.append), seen


def assert_same(a: TrainResult, b: TrainResult) -> None:
    for x, y in zip(jax.tree.leaves((a.mean, a.best)), jax.tree.leaves((b.mean, b.best))):
        np.testing.assert_array_equal(x, y)
    assert a.history == b.history and a.final == b.final and a.best_metrics == b.best_metrics


@needs_fashion
def test_learns_with_pruned_weights_held_at_zero(reference, ticket) -> None:
    result, seen = reference
    _, mask = ticket
    assert result.final["metric"] > 0.45  # chance is 0.1; 32 steps reach about 0.6
    assert result.best_metrics["metric"] == max(result.history["eval"]["metric"])
    assert result.std is None and result.norm is None and result.best_norm is None
    for tree in (result.mean, result.best):
        for layer in mask:
            kernel = np.asarray(tree[layer]["kernel"])
            assert np.all(kernel[mask[layer]["kernel"] == 0] == 0)
            assert np.all(kernel[mask[layer]["kernel"] == 1] != 0)
    history = result.history
    assert history["eval"]["generation"] == [1, 2] and len(history["fitness_mean"]) == 2
    assert all(b <= m for b, m in zip(history["fitness_best"], history["fitness_mean"]))
    assert history["fitness_mean"][1] < history["fitness_mean"][0]
    assert [p.generation for p in seen] == [1, 2] and seen[-1].metric == result.final["metric"]


@needs_fashion
def test_interrupt_then_resume_is_bit_identical(task, ticket, reference, tmp_path: Path) -> None:
    store = ResumeStore(tmp_path / "out", {"test": "adam"})
    with pytest.raises(Interrupted, match="epoch 1/2") as info:
        adam.train(task, SPEC, *ticket, jax.random.PRNGKey(1), store=store, stop=lambda: 15)
    assert info.value.exit_code == 143
    resumed: list[Progress] = []
    result = adam.train(task, SPEC, *ticket, jax.random.PRNGKey(1), store=store, on_progress=resumed.append)
    assert [p.generation for p in resumed] == [2]  # the first epoch came from the snapshot
    assert_same(result, reference[0])


@needs_fashion
def test_eval_every_and_another_key(task, ticket, reference) -> None:
    result = adam.train(task, TrainerSpec("adam", lr=1e-3, epochs=1, eval_every=5), *ticket, jax.random.PRNGKey(2))
    assert result.history["eval"]["generation"] == [1]  # the last epoch is always evaluated
    assert not np.array_equal(result.mean["dense"]["kernel"], reference[0].mean["dense"]["kernel"])


def test_bad_requests() -> None:
    control = types.SimpleNamespace(spec=TaskSpec("pendulum"))
    with pytest.raises(BadInput, match="needs a vision task"):
        adam.train(control, SPEC, {}, {}, jax.random.PRNGKey(0))  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    tiny = ImageData(rng.integers(0, 256, (10, 8, 8, 1), dtype=np.uint8), np.zeros(10, np.int32),
                     rng.integers(0, 256, (4, 8, 8, 1), dtype=np.uint8), np.zeros(4, np.int32), 10, "tiny")  # fmt: skip
    task = VisionTask(TaskSpec("tiny", batch_size=16), ModelSpec("cnn", features=(2, 2), kernel_size=3), tiny)
    init = task.init_params(jax.random.PRNGKey(0))
    mask = jax.tree.map(lambda a: np.ones(a.shape, np.uint8), init)
    with pytest.raises(BadInput, match="--batch-size 16 exceeds the 10"):
        adam.train(task, SPEC, init, mask, jax.random.PRNGKey(0))
    with pytest.raises(BadInput, match="--epochs"):
        adam.train(task, TrainerSpec("adam", lr=1e-3, epochs=0), init, mask, jax.random.PRNGKey(0))
