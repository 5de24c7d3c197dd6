"""The paper's networks: layer names, shapes, the fast first convolution and the member-group forward."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eslt_cli.errors import BadInput
from eslt_cli.models import CNN, MLP, ShiftedConv, cnn_group_logits
from eslt_cli.specs import CNNSpec, VisionSpec
from eslt_cli.tasks.data import ImageData
from eslt_cli.tasks.vision import VisionTask


def _members(init: dict, b: int, seed: int) -> dict:
    """B random members around ``init`` with about a third of every kernel pruned (zeroed)."""
    rng = np.random.default_rng(seed)

    def member_leaf(path: tuple, a: np.ndarray) -> np.ndarray:
        noisy = (a + 0.1 * rng.standard_normal((b, *a.shape))).astype(np.float32)
        return noisy * (rng.random(noisy.shape) > 0.3) if path[-1].key == "kernel" else noisy

    return jax.tree_util.tree_map_with_path(member_leaf, jax.tree.map(np.asarray, init))


@pytest.mark.parametrize("k", [5, 4])
def test_shifted_conv_equals_flax_conv(k: int) -> None:
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 12, 12, 1))
    ref, ours = nn.Conv(4, (k, k), name="c"), ShiftedConv(4, k, name="c")
    params = ref.init(jax.random.PRNGKey(1), x)
    same = ours.init(jax.random.PRNGKey(1), x)  # same initialisation, same layout
    np.testing.assert_array_equal(params["params"]["kernel"], same["params"]["kernel"])
    np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), atol=1e-5)


def test_cnn_layers_match_appendix_c2() -> None:
    params = jax.eval_shape(CNN(10).init, jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))["params"]
    assert params["conv0"]["kernel"].shape == (5, 5, 1, 8)
    assert params["conv1"]["kernel"].shape == (5, 5, 8, 16)
    assert params["dense"]["kernel"].shape == (7 * 7 * 16, 10)
    rgb = jax.eval_shape(CNN(100).init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))["params"]
    assert rgb["dense"]["kernel"].shape == (8 * 8 * 16, 100)


def test_mlp_output_squashing() -> None:
    model = MLP(2, (8,), tanh_output=True)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    out = model.apply(params, 100 * jnp.ones((1, 3)))
    assert set(params["params"]) == {"hidden0", "out"} and bool(jnp.all(jnp.abs(out) <= 1))


@pytest.mark.parametrize(
    ("classes", "features", "k", "shape"), [(10, (8, 16), 5, (28, 28, 1)), (7, (2, 3, 4), 4, (13, 13, 3))]
)
def test_group_logits_equal_vmapped_cnn(classes: int, features: tuple, k: int, shape: tuple) -> None:
    model = CNN(classes, features, k)
    images = np.random.default_rng(0).random((4, *shape), np.float32)
    members = _members(jax.jit(model.init)(jax.random.PRNGKey(1), images)["params"], 3, seed=2)
    ref = jax.jit(jax.vmap(lambda p: model.apply({"params": p}, images)))(members)
    np.testing.assert_allclose(jax.jit(cnn_group_logits)(members, images), ref, rtol=1e-4, atol=1e-5)


def test_group_fitness_equals_member_fitness() -> None:
    rng = np.random.default_rng(0)
    data = ImageData(
        rng.integers(0, 256, (32, 28, 28, 1), dtype=np.uint8),
        rng.integers(0, 10, 32, dtype=np.int32),
        rng.integers(0, 256, (4, 28, 28, 1), dtype=np.uint8),
        np.zeros(4, np.int32),
        10,
        "synthetic",
    )
    task = VisionTask(VisionSpec("synthetic", batch_size=8), CNNSpec(features=(8, 16), kernel_size=5), data)
    assert task.member_batch == 16
    members = _members(jax.jit(task.init_params)(jax.random.PRNGKey(0)), 4, seed=1)

    @jax.jit
    def both(members: dict, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        member = task.member_fitness(task.arrays, key)
        return task.group_fitness(task.arrays, key)(members), jax.lax.map(member, members)

    group, ref = both(members, jax.random.PRNGKey(3))
    assert group.shape == (4,)
    np.testing.assert_allclose(group, ref, rtol=1e-4)


def test_population_evaluation_grouped_and_vmap_train_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU (grouped) and accelerator (vmap over all members) evaluations give the same run."""
    from eslt_cli.specs import ESSpec
    from eslt_cli.trainers import es

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (72, 28, 28, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, 72, dtype=np.int32)
    data = ImageData(images[:64], labels[:64], images[64:], labels[64:], 10, "synthetic")
    task = VisionTask(VisionSpec("synthetic", batch_size=8), CNNSpec(features=(2, 2), kernel_size=3), data)
    spec = ESSpec("snes", 4, 3, 0.02, 1.0, "sgd", None, 0.0, 1)
    init = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(0)))
    mask = jax.tree.map(lambda a: np.ones(a.shape, np.uint8), init)
    runs = {}
    for mode in ("grouped", "vmap"):
        monkeypatch.setenv("ESLT_POPULATION_EVAL", mode)
        runs[mode] = es.train(task, spec, init, mask, jax.random.PRNGKey(1))
    for a, b in zip(jax.tree.leaves(runs["grouped"].mean), jax.tree.leaves(runs["vmap"].mean)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert es.population_eval("auto") == "grouped"  # this CPU
    monkeypatch.setenv("ESLT_POPULATION_EVAL", "fast")
    with pytest.raises(BadInput, match="ESLT_POPULATION_EVAL"):
        es.population_eval()
