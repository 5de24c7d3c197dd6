"""SNIP and GraSP against independent float64 finite differences and an explicitly formed Hessian."""

import types
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import needs_fashion
from jax.flatten_util import ravel_pytree

from eslt_cli import pruning
from eslt_cli.errors import BadInput
from eslt_cli.specs import CNNSpec, ControlSpec, VisionSpec
from eslt_cli.tasks.data import ImageData
from eslt_cli.tasks.vision import VisionTask

LAYERS = (("dense0", (4, 3)), ("dense1", (3, 2)))


def tiny_init(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.normal(size=shape).astype(np.float32)
    return {name: {"kernel": normal(*shape), "bias": normal(shape[1])} for name, shape in LAYERS}


def tiny_mask() -> dict:
    mask = jax.tree.map(lambda a: np.ones(a.shape, np.uint8), tiny_init())
    mask["dense0"]["kernel"][[0, 2, 3], [1, 0, 2]] = 0  # already pruned
    mask["dense1"]["kernel"][1, 1] = 0
    return mask


def tiny_loss(params, x, y):
    """Mean cross-entropy of a tanh MLP, written with ``xp`` = jnp (criterion) or np (reference)."""
    xp = jnp if isinstance(params["dense0"]["kernel"], jax.Array) else np
    h = xp.tanh(x @ params["dense0"]["kernel"] + params["dense0"]["bias"])
    logits = h @ params["dense1"]["kernel"] + params["dense1"]["bias"]
    top = logits.max(-1, keepdims=True)
    lse = (top + xp.log(xp.exp(logits - top).sum(-1, keepdims=True)))[:, 0]
    return (lse - xp.take_along_axis(logits, y[:, None], -1)[:, 0]).mean()


def tiny_batches() -> pruning.Batches:
    rng = np.random.default_rng(7)
    return pruning.Batches(tiny_loss, jnp.asarray(rng.normal(size=(2, 5, 4)), jnp.float32),
                           jnp.asarray(rng.integers(0, 2, size=(2, 5)), jnp.int32))  # fmt: skip


def np_ravel(tree: dict) -> tuple[np.ndarray, Callable[[np.ndarray], dict]]:
    """A float64 flat vector and its inverse, in numpy (jax's ravel_pytree would round to float32)."""
    leaves, treedef = jax.tree.flatten(tree)
    sizes = np.cumsum([np.size(a) for a in leaves])[:-1]

    def unravel(v: np.ndarray) -> dict:
        return treedef.unflatten([p.reshape(np.shape(a)) for p, a in zip(np.split(v, sizes), leaves)])

    return np.concatenate([np.ravel(a) for a in leaves]).astype(np.float64), unravel


def reference(init: dict, mask: dict, data: pruning.Batches) -> tuple[dict, dict]:
    """(SNIP, GraSP keep-scores) by float64 central differences of a numpy loss.

    L(theta) = mean over batches of the loss at theta * mask; g = dL, H = d2L by
    the four-point formula; GraSP's S = -w * H g (g restricted to kernels), and
    the weights with the highest S are removed, so the kept score is -S.
    """
    flat_init, unravel = np_ravel(init)
    flat_mask = np_ravel(mask)[0]
    kernels = np_ravel({k: {"kernel": np.ones(s), "bias": np.zeros(s[1])} for k, s in LAYERS})[0]
    xs, ys = np.asarray(data.images, np.float64), np.asarray(data.labels)

    def loss(theta: np.ndarray) -> float:
        params = unravel(theta * flat_mask)
        return float(np.mean([tiny_loss(params, x, y) for x, y in zip(xs, ys)]))

    w, n, eye = flat_init * flat_mask, flat_init.size, np.eye(flat_init.size)
    h1, h2 = 1e-6, 1e-4
    g = np.array([(loss(w + h1 * eye[i]) - loss(w - h1 * eye[i])) / (2 * h1) for i in range(n)])
    hess = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            a, b = h2 * eye[i], h2 * eye[j]
            hess[i, j] = (loss(w + a + b) - loss(w + a - b) - loss(w - a + b) + loss(w - a - b)) / (4 * h2 * h2)
    grasp_s = -w * (hess @ (g * kernels))
    return unravel(np.abs(w * g)), unravel(-grasp_s)


def kernel_scores(tree: dict) -> np.ndarray:
    return np.concatenate([np.ravel(tree[name]["kernel"]) for name, _ in LAYERS])


def reference_keep(scores: dict, mask: dict, n_keep: int) -> np.ndarray:
    """Rank live kernel entries by (score, flat position), keep the top n_keep."""
    flat_s, alive = kernel_scores(scores), kernel_scores(mask).astype(bool)
    ranked = sorted(np.flatnonzero(alive), key=lambda i: (flat_s[i], i))
    keep = np.zeros(flat_s.size, bool)
    keep[ranked[len(ranked) - n_keep :]] = True
    return keep


@pytest.fixture(scope="module")
def ref() -> tuple[dict, dict]:
    return reference(tiny_init(), tiny_mask(), tiny_batches())


@pytest.mark.parametrize("name", ["snip", "grasp"])
def test_scores_match_finite_differences(name: str, ref: tuple[dict, dict]) -> None:
    init, mask, data = tiny_init(), tiny_mask(), tiny_batches()
    trained = pruning.Trained(tiny_init(1), None, init, mask, data)
    got = kernel_scores(pruning.get_pruner(name).score(jax.random.PRNGKey(0), trained))
    want = kernel_scores(ref[name == "grasp"])
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-5 * np.abs(want).max())
    assert np.all(got[~kernel_scores(mask).astype(bool)] == 0)  # pruned weights score 0 (moot: not candidates)


@pytest.mark.parametrize("name", ["snip", "grasp"])
def test_global_threshold_keeps_live_weights_only(name: str, ref: tuple[dict, dict]) -> None:
    init, mask, data = tiny_init(), tiny_mask(), tiny_batches()
    n_total = sum(int(np.prod(s)) for _, s in LAYERS)  # 18 kernel weights, 14 alive
    new = pruning.prune(jax.random.PRNGKey(0), name, tiny_init(1), None, mask, keep=0.6, init=init, data=data)
    keep = kernel_scores(new).astype(bool)
    assert keep.sum() == round(0.6 * n_total)
    assert not (keep & ~kernel_scores(mask).astype(bool)).any()  # never revived
    np.testing.assert_array_equal(keep, reference_keep(ref[name == "grasp"], mask, round(0.6 * n_total)))
    for layer, _ in LAYERS:
        np.testing.assert_array_equal(new[layer]["bias"], 1)


def test_snip_and_grasp_differ_from_magnitude() -> None:
    init, mask, data = tiny_init(), tiny_mask(), tiny_batches()
    masks = {
        name: kernel_scores(pruning.prune(jax.random.PRNGKey(0), name, init, None, mask, 0.5, init=init, data=data))
        for name in ("snip", "grasp", "magnitude")
    }
    assert not np.array_equal(masks["snip"], masks["magnitude"])
    assert not np.array_equal(masks["grasp"], masks["snip"])


def test_every_criterion_shares_one_signature_with_data() -> None:
    trained = pruning.Trained(tiny_init(1), jax.tree.map(lambda a: np.abs(a) + 0.1, tiny_init(2)), tiny_init(),
                              tiny_mask(), tiny_batches())  # fmt: skip
    for name, criterion in pruning.PRUNERS.items():
        scores = criterion.score(jax.random.PRNGKey(0), trained)
        assert jax.tree.structure(scores) == jax.tree.structure(trained.mean), name
    assert {n for n, c in pruning.PRUNERS.items() if c.needs_data} == {"snip", "grasp"}


def test_missing_inputs_are_clear_errors() -> None:
    with pytest.raises(BadInput, match="training batches"):
        pruning.prune(jax.random.PRNGKey(0), "grasp", tiny_init(), None, tiny_mask(), keep=0.5, init=tiny_init())
    control = types.SimpleNamespace(spec=ControlSpec("pendulum"))
    with pytest.raises(BadInput, match="vision task"):
        pruning.training_batches(control, jax.random.PRNGKey(0), 1)  # type: ignore[arg-type]


def small_vision_task(batch_size: int = 4) -> VisionTask:
    rng = np.random.default_rng(0)
    data = ImageData(
        rng.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8), rng.integers(0, 10, 40).astype(np.int32),
        rng.integers(0, 256, (10, 8, 8, 1), dtype=np.uint8), rng.integers(0, 10, 10).astype(np.int32), 10, "synthetic",
    )  # fmt: skip
    model = CNNSpec(features=(2, 3), kernel_size=3)
    return VisionTask(VisionSpec("synthetic", batch_size=batch_size), model, data)


def test_cnn_grasp_matches_an_explicit_hessian() -> None:
    """On the task's CNN: training_batches draws disjoint seeded batches; GraSP = w * (H g) with H from jax.hessian."""
    task = small_vision_task()
    data = pruning.training_batches(task, jax.random.PRNGKey(3), 2)
    assert data.images.shape == (2, 4, 8, 8, 1) and data.labels.shape == (2, 4)
    again = pruning.training_batches(task, jax.random.PRNGKey(3), 2)
    np.testing.assert_array_equal(data.images, again.images)
    rows = {np.asarray(x).tobytes() for x in np.asarray(data.images).reshape(8, -1)}
    assert len(rows) == 8  # disjoint (random uint8 images do not repeat)
    with pytest.raises(BadInput, match="--batches"):
        pruning.training_batches(task, jax.random.PRNGKey(3), 11)  # 40 images: at most 10 batches of 4

    init = jax.tree.map(np.asarray, task.init_params(jax.random.PRNGKey(0)))
    mask = jax.tree.map(lambda a: (np.random.default_rng(a.size).random(a.shape) > 0.3).astype(np.uint8), init)
    for layer in mask:
        mask[layer]["bias"][:] = 1
    got = pruning.grasp_scores(jax.random.PRNGKey(0), pruning.Trained(init, None, init, mask, data))

    flat_w, unravel = ravel_pytree(jax.tree.map(lambda i, m: jnp.asarray(i * m, jnp.float32), init, mask))
    flat_m = ravel_pytree(jax.tree.map(lambda m: jnp.asarray(m, jnp.float32), mask))[0]
    is_kernel = ravel_pytree(jax.tree.map(lambda a, k: jnp.full(a.shape, k), init, pruning.prunable(init)))[0]

    def loss(theta: jax.Array) -> jax.Array:
        params = unravel(theta * flat_m)
        return jnp.mean(jnp.stack([data.loss(params, x, y) for x, y in zip(data.images, data.labels)]))

    g = np.asarray(jax.jit(jax.grad(loss))(flat_w), np.float64)
    hess = np.asarray(jax.jit(jax.hessian(loss))(flat_w), np.float64)
    want = np.asarray(flat_w, np.float64) * (hess @ (g * np.asarray(is_kernel, np.float64)))
    flat_got = np.asarray(ravel_pytree(got)[0], np.float64)
    np.testing.assert_allclose(flat_got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


@needs_fashion
def test_prune_cli_snip_and_grasp(cli) -> None:
    from conftest import TINY_VISION

    from eslt_cli import checkpoint

    code, dense, err = cli("train", "--task", "fashion_mnist", "--seed", "0", *TINY_VISION)
    assert code == 0, err
    parent = checkpoint.load(dense.strip())
    for flag, extra in (("--snip", ["--batches", "2"]), ("--grasp", [])):
        code, out, err = cli("prune", flag, *extra, dense.strip())
        assert code == 0, err
        ticket = checkpoint.load(out.strip())
        assert ticket.path.name == f"L01-{flag[2:]}" and ticket.meta["pruning"]["batches"] == (2 if extra else 1)
        assert ticket.meta["sparsity"]["global"] == pytest.approx(0.2, abs=1e-3)
        for a, b in zip(jax.tree.leaves(ticket.state["init"]), jax.tree.leaves(parent.state["init"])):
            np.testing.assert_array_equal(a, b)  # rewound
    code, _, err = cli("prune", "--magnitude", "--batches", "2", dense.strip())
    assert code == 2 and "--batches applies to --snip and --grasp only" in err
