"""The Adam trainer on a slice of real Fashion-MNIST: learning, masks, resume, determinism, the step layout."""

import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import FASHION, needs_fashion

from eslt_cli.checkpoint import ResumeStore
from eslt_cli.errors import BadInput, Interrupted
from eslt_cli.models import CNN
from eslt_cli.specs import AdamSpec, CNNSpec, ControlSpec, VisionSpec
from eslt_cli.tasks.data import ImageData, load_idx_folder
from eslt_cli.tasks.vision import VisionTask
from eslt_cli.trainers import adam
from eslt_cli.trainers.record import Progress, TrainResult

SPEC = AdamSpec(lr=1e-3, epochs=2, eval_every=1)


@pytest.fixture(scope="module")
def task() -> VisionTask:
    """2048 training and 1000 test images of Fashion-MNIST: an epoch is 16 steps of 128."""
    full = load_idx_folder(FASHION)
    data = ImageData(full.x_train[:2048], full.y_train[:2048], full.x_test[:1000], full.y_test[:1000],
                     full.num_classes, "fashion_mnist[:2048]")  # fmt: skip
    model = CNNSpec(features=(8, 16), kernel_size=5)
    return VisionTask(VisionSpec("fashion_mnist", batch_size=128), model, data)


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
    # The first epoch came from the snapshot: said once (resumed), then only the second is trained.
    assert [(p.generation, p.resumed) for p in resumed] == [(1, True), (2, False)]
    assert resumed[0].best == reference[1][0].best == reference[1][0].metric  # the best so far came back too
    assert_same(result, reference[0])


@needs_fashion
def test_same_seed_gives_identical_weights(task, ticket, reference) -> None:
    assert_same(adam.train(task, SPEC, *ticket, jax.random.PRNGKey(1)), reference[0])


THREE = AdamSpec(lr=1e-3, epochs=3, eval_every=2)


@pytest.fixture(scope="module")
def three_epochs(task: VisionTask, ticket: tuple[dict, dict]) -> TrainResult:
    return adam.train(task, THREE, *ticket, jax.random.PRNGKey(5))


@needs_fashion
@pytest.mark.parametrize("stop_after", [1, 2])
def test_result_does_not_depend_on_where_a_run_was_resumed(task, ticket, three_epochs, tmp_path, stop_after) -> None:
    """A 3-epoch run stopped after epoch 1 or 2 and resumed ends bit-identical to one never stopped."""
    store = ResumeStore(tmp_path / "out", {"test": "adam3"})
    calls = iter(range(1, 4))  # stop() is asked after every epoch
    with pytest.raises(Interrupted, match=f"epoch {stop_after}/3"):
        adam.train(
            task, THREE, *ticket, jax.random.PRNGKey(5), store=store, stop=lambda: 15 * (next(calls) == stop_after)
        )
    assert_same(adam.train(task, THREE, *ticket, jax.random.PRNGKey(5), store=store), three_epochs)


@needs_fashion
def test_blocks_take_the_same_steps_as_a_plain_adam_loop(task, ticket) -> None:
    """run_epoch over 6 steps (a full block and a padded one) against one jitted Adam step per batch,
    the flax-example way, on the task's own (forward-layout) model: same losses up to float rounding."""
    init, _ = ticket
    params = jax.tree.map(jnp.asarray, init)
    dense = jax.tree.map(jnp.ones_like, params)
    optimizer, block = adam._programs(task, 1e-3)
    batches = np.arange(6 * 128, dtype=np.int32).reshape(6, 128)
    (mean, opt_state), stats = adam.run_epoch(block, (params, optimizer.init(params)), dense, batches, task.arrays)
    assert int(opt_state[0].count) == 6  # padded steps are not counted

    @jax.jit
    def step(p, s, idx):
        def loss(p):
            logits = task.logits(p, task.arrays["x_train"][idx])
            return optax.softmax_cross_entropy_with_integer_labels(logits, task.arrays["y_train"][idx]).mean()

        value, grads = jax.value_and_grad(loss)(p)
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    p, s, losses = params, optimizer.init(params), []
    for idx in batches:
        p, s, value = step(p, s, idx)
        losses.append(float(value))
    np.testing.assert_allclose(stats, [np.mean(losses), np.min(losses)], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(mean), jax.tree.leaves(p)):
        np.testing.assert_allclose(a, b, atol=1e-4)  # Adam scales rounding of near-zero gradients up to ~lr

    # A block whose steps are all padding changes nothing, bit for bit.
    carry = (mean, opt_state)
    same, _ = block(carry, dense, batches[:4], np.zeros(4, bool), task.arrays["x_train"], task.arrays["y_train"])
    for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(carry)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("features", "k", "shape"), [((8, 16), 5, (28, 28, 1)), ((3, 4), 3, (9, 9, 2))])
def test_gradient_layout_computes_the_same_cnn(features: tuple, k: int, shape: tuple) -> None:
    """CNN(grad_layout=True), which the Adam steps use, gives the forward layout's logits and gradients."""
    forward, backward = CNN(10, features, k), CNN(10, features, k, grad_layout=True)
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.random((8, *shape), np.float32))
    images = images.at[:, : shape[0] // 2].set(0.0)  # blank rows: tied maxima in the pools, as in real images
    params = jax.jit(forward.init)(jax.random.PRNGKey(0), images)["params"]
    # Biases away from zero, so blank regions give positive, tied activations.
    params = jax.tree_util.tree_map_with_path(lambda path, a: a + 0.05 if path[-1].key == "bias" else a, params)
    shapes = jax.eval_shape(backward.init, jax.random.PRNGKey(0), images)["params"]
    assert jax.tree.map(np.shape, shapes) == jax.tree.map(np.shape, params)
    labels = jnp.arange(8) % 10

    def logits_and_grads(model: CNN):
        def loss(p):
            logits = model.apply({"params": p}, images)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), logits

        return jax.jit(jax.grad(loss, has_aux=True))(params)

    (grads, logits), (grads_ref, logits_ref) = logits_and_grads(backward), logits_and_grads(forward)
    np.testing.assert_allclose(logits, logits_ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@needs_fashion
def test_eval_every_and_another_key(task, ticket, reference) -> None:
    result = adam.train(task, AdamSpec(lr=1e-3, epochs=1, eval_every=5), *ticket, jax.random.PRNGKey(2))
    assert result.history["eval"]["generation"] == [1]  # the last epoch is always evaluated
    assert not np.array_equal(result.mean["dense"]["kernel"], reference[0].mean["dense"]["kernel"])


def test_bad_requests() -> None:
    control = types.SimpleNamespace(spec=ControlSpec("pendulum"))
    with pytest.raises(BadInput, match="needs a vision task"):
        adam.train(control, SPEC, {}, {}, jax.random.PRNGKey(0))  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    tiny = ImageData(rng.integers(0, 256, (10, 8, 8, 1), dtype=np.uint8), np.zeros(10, np.int32),
                     rng.integers(0, 256, (4, 8, 8, 1), dtype=np.uint8), np.zeros(4, np.int32), 10, "tiny")  # fmt: skip
    task = VisionTask(VisionSpec("tiny", batch_size=16), CNNSpec(features=(2, 2), kernel_size=3), tiny)
    init = task.init_params(jax.random.PRNGKey(0))
    mask = jax.tree.map(lambda a: np.ones(a.shape, np.uint8), init)
    with pytest.raises(BadInput, match="--batch-size 16 exceeds the 10"):
        adam.train(task, SPEC, init, mask, jax.random.PRNGKey(0))
    with pytest.raises(BadInput, match="--epochs"):
        adam.train(task, AdamSpec(lr=1e-3, epochs=0), init, mask, jax.random.PRNGKey(0))
