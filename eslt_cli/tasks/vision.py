"""Image classification with the paper's CNN (Sections 3-4, appendix C.2).

Fitness is the cross-entropy of a member on one training batch that the whole
population shares in a generation; evaluation is test accuracy (and loss).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eslt_cli.models import CNN
from eslt_cli.specs import ModelSpec, TaskSpec
from eslt_cli.tasks.base import Arrays, Params
from eslt_cli.tasks.data import ImageData

EVAL_BATCH = 1000


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


class VisionTask:
    """A CNN classifier over an :class:`ImageData`."""

    metric = "accuracy"

    def __init__(self, spec: TaskSpec, model_spec: ModelSpec, data: ImageData, member_batch: int = 1):
        self.spec, self.model_spec, self.member_batch = spec, model_spec, member_batch
        self.data = data
        self.model = CNN(data.num_classes, model_spec.features or (8, 16), model_spec.kernel_size or 5)
        # Images stay uint8 on the device and are scaled per batch: 4x less memory.
        n_test = len(data.y_test)
        n_pad = -n_test % EVAL_BATCH
        pad = lambda a: np.concatenate([a, np.zeros((n_pad, *a.shape[1:]), a.dtype)])  # noqa: E731
        self.arrays = {
            "x_train": jnp.asarray(data.x_train),
            "y_train": jnp.asarray(data.y_train),
            "x_test": jnp.asarray(pad(data.x_test)).reshape(-1, EVAL_BATCH, *data.image_shape),
            "y_test": jnp.asarray(pad(data.y_test)).reshape(-1, EVAL_BATCH),
            "w_test": jnp.asarray(pad(np.ones(n_test, np.float32))).reshape(-1, EVAL_BATCH) / n_test,
        }

    def init_params(self, key: jax.Array) -> Params:
        return self.model.init(key, jnp.zeros((1, *self.data.image_shape)))["params"]

    def logits(self, params: Params, images: jax.Array) -> jax.Array:
        return self.model.apply({"params": params}, images.astype(jnp.float32) / 255.0)

    def member_fitness(self, arrays: Arrays, key: jax.Array) -> Callable[[Params], jax.Array]:
        idx = jax.random.randint(key, (self.spec.batch_size or 128,), 0, arrays["x_train"].shape[0])
        images, labels = arrays["x_train"][idx], arrays["y_train"][idx]
        return lambda params: _cross_entropy(self.logits(params, images), labels).mean()

    def evaluate(self, arrays: Arrays, params: Params, key: jax.Array) -> dict[str, jax.Array]:
        del key  # the test set is evaluated whole

        def batch(args: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
            x, y, w = args
            logits = self.logits(params, x)
            correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
            return jnp.stack([(w * correct).sum(), (w * _cross_entropy(logits, y)).sum()])

        acc, loss = jax.lax.map(batch, (arrays["x_test"], arrays["y_test"], arrays["w_test"])).sum(0)
        return {"metric": acc, "loss": loss}
