"""Image classification with the paper's CNN (Sections 3-4, appendix C.2).

Fitness is the cross-entropy of a member on one training batch that the whole
population shares in a generation; evaluation is test accuracy (and loss). The
ES trainer evaluates ``member_batch`` members at a time through
``group_fitness`` (:func:`eslt_cli.models.cnn_group_logits`), which shares the
first convolution's work across them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eslt_cli.models import CNN, cnn_group_logits
from eslt_cli.specs import CNNSpec, VisionSpec
from eslt_cli.tasks.base import Arrays, Params, uniform_biases
from eslt_cli.tasks.data import ImageData

EVAL_BATCH = 1000
# The paper's code standardises every image dataset with MNIST's mean and std (src/tasks/mnist_task.py).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
# Default members per group_fitness call: 16, fewer when members x batch images
# exceeds this (the first layer's stacked output, e.g. 16 x 1024 x 28x28x8 f32 =
# 411 MB). B = 4..16 measured alike at batch 128 and 1024; 32-64 were slower at
# batch 128, 1-2 were 2-4x slower at batch 1024.
MAX_GROUP = 16
MAX_GROUP_IMAGES = 16 * 1024


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


class VisionTask:
    """A CNN classifier over an :class:`ImageData`."""

    metric = "accuracy"

    def __init__(self, spec: VisionSpec, model_spec: CNNSpec, data: ImageData, member_batch: int | None = None):
        """``member_batch``: members per ``group_fitness`` call (None: from the batch size, at most 16)."""
        self.spec, self.model_spec, self.data = spec, model_spec, data
        self.batch_size = spec.batch_size
        self.member_batch = member_batch or max(1, min(MAX_GROUP, MAX_GROUP_IMAGES // self.batch_size))
        self.model = CNN(data.num_classes, model_spec.features, model_spec.kernel_size)
        # Images stay uint8 on the device and are scaled per batch: 4x less memory.
        n_test = len(data.y_test)
        n_pad = -n_test % EVAL_BATCH
        pad = lambda a: np.concatenate([a, np.zeros((n_pad, *a.shape[1:]), a.dtype)])
        self.arrays = {
            "x_train": jnp.asarray(data.x_train),
            "y_train": jnp.asarray(data.y_train),
            "x_test": jnp.asarray(pad(data.x_test)).reshape(-1, EVAL_BATCH, *data.image_shape),
            "y_test": jnp.asarray(pad(data.y_test)).reshape(-1, EVAL_BATCH),
            "w_test": jnp.asarray(pad(np.ones(n_test, np.float32))).reshape(-1, EVAL_BATCH) / n_test,
        }

    def init_params(self, key: jax.Array) -> Params:
        params = self.model.init(key, jnp.zeros((1, *self.data.image_shape)))["params"]
        return uniform_biases(params, jax.random.fold_in(key, 1), self.model_spec.bias_init, skip=("dense",))

    def scale(self, images: jax.Array) -> jax.Array:
        """uint8 images as the network's float inputs: in [0, 1], or standardised (``spec.standardize``)."""
        x = images.astype(jnp.float32) / 255.0
        return (x - MNIST_MEAN) / MNIST_STD if self.spec.standardize else x

    def _apply(self, params: Params, inputs: jax.Array) -> jax.Array:
        """The CNN's logits for network inputs (flax types ``apply`` as logits or (logits, state))."""
        return cast(jax.Array, self.model.apply({"params": params}, inputs))

    def logits(self, params: Params, images: jax.Array) -> jax.Array:
        return self._apply(params, self.scale(images))

    def _train_batch(self, arrays: Arrays, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The generation's shared batch: network inputs (:meth:`scale`) and labels."""
        idx = jax.random.randint(key, (self.batch_size,), 0, arrays["x_train"].shape[0])
        return self.scale(arrays["x_train"][idx]), arrays["y_train"][idx]

    def member_fitness(self, arrays: Arrays, key: jax.Array) -> Callable[[Params], jax.Array]:
        images, labels = self._train_batch(arrays, key)
        return lambda params: _cross_entropy(self._apply(params, images), labels).mean()

    def group_fitness(self, arrays: Arrays, key: jax.Array) -> Callable[[Params], jax.Array]:
        """Like ``member_fitness`` for params with a leading member axis B: fitness (B,)."""
        images, labels = self._train_batch(arrays, key)

        def fitness(params: Params) -> jax.Array:
            logits = cnn_group_logits(params, images)
            return _cross_entropy(logits, jnp.broadcast_to(labels, logits.shape[:-1])).mean(-1)

        return fitness

    def evaluate(self, arrays: Arrays, params: Params, key: jax.Array) -> dict[str, jax.Array]:
        del key  # the test set is evaluated whole

        def batch(args: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
            x, y, w = args
            logits = self.logits(params, x)
            correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
            return jnp.stack([(w * correct).sum(), (w * _cross_entropy(logits, y)).sum()])

        acc, loss = jax.lax.map(batch, (arrays["x_test"], arrays["y_test"], arrays["w_test"])).sum(0)
        return {"metric": acc, "loss": loss}
