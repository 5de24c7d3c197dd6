"""The paper's networks (appendix C): a two-layer CNN for vision, an MLP for control.

Layers carry explicit names so that masks, ``--exclude`` and per-layer sparsity
refer to stable keys (``conv0``, ``conv1``, ``dense`` / ``hidden0``..., ``out``).
Only ``kernel`` leaves are prunable; biases never are.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp


class ShiftedConv(nn.Module):
    """A SAME-padded stride-1 convolution written as a sum of shifted images.

    Same parameters (``kernel`` HWIO, ``bias``), initialisation and outputs as
    ``nn.Conv``. XLA's CPU convolution with one input channel runs at a few
    GFLOP/s; 25 shifted multiply-adds that XLA fuses into one loop are about 4x
    faster on the paper's 5x5 first layer (measured at batch 1024). Used only
    for single-channel inputs, where that holds.
    """

    features: int
    kernel_size: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        k, cin = self.kernel_size, x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, cin, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        lo = (k - 1) // 2  # XLA's SAME padding: the extra row/column goes after
        xp = jnp.pad(x, ((0, 0), (lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)))
        h, w = x.shape[1:3]
        out = sum(
            jnp.einsum("bhwc,cf->bhwf", xp[:, i : i + h, j : j + w, :], kernel[i, j]) for i in range(k) for j in range(k)
        )
        return out + bias


class CNN(nn.Module):
    """Conv 8@5x5, relu, max-pool 2, Conv 16@5x5, relu, max-pool 2, Dense (appendix C.2)."""

    num_classes: int
    features: Sequence[int] = (8, 16)
    kernel_size: int = 5

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for i, feats in enumerate(self.features):
            if x.shape[-1] == 1:
                x = ShiftedConv(feats, self.kernel_size, name=f"conv{i}")(x)
            else:
                x = nn.Conv(feats, (self.kernel_size, self.kernel_size), name=f"conv{i}")(x)
            x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.num_classes, name="dense")(x)


class MLP(nn.Module):
    """Tanh MLP policy: 1-3 hidden layers of 32-80 units (appendix C.1).

    The output is tanh-squashed for continuous actions (the caller rescales it to
    the action bounds) and left as logits for discrete actions (argmax).
    """

    num_outputs: int
    hidden: Sequence[int] = (32, 32)
    tanh_output: bool = True

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for i, units in enumerate(self.hidden):
            x = nn.tanh(nn.Dense(units, name=f"hidden{i}")(x))
        x = nn.Dense(self.num_outputs, name="out")(x)
        return nn.tanh(x) if self.tanh_output else x
