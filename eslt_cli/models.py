"""The paper's networks (appendix C): a two-layer CNN for vision, an MLP for control.

Layers carry explicit names so that masks, ``--exclude`` and per-layer sparsity
refer to stable keys (``conv0``, ``conv1``, ``dense`` / ``hidden0``..., ``out``).
Only ``kernel`` leaves are prunable; biases never are.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
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
            jnp.einsum("bhwc,cf->bhwf", xp[:, i : i + h, j : j + w, :], kernel[i, j])
            for i in range(k)
            for j in range(k)
        )
        return out + bias


def _max_pool_2x2(x: jax.Array) -> jax.Array:
    """``nn.max_pool(x, (2, 2), strides=(2, 2))`` as a reshape and a max: the same values.

    Its gradient is elementwise (a tie splits the gradient evenly) where
    ``nn.max_pool``'s is XLA's select-and-scatter, which XLA:CPU runs slowly: a
    batch-128 training step of :class:`CNN` measured about 20 % faster with this pool.
    """
    b, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2]  # VALID: an odd last row/column is dropped
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max((2, 4))


class CNN(nn.Module):
    """Conv 8@5x5, relu, max-pool 2, Conv 16@5x5, relu, max-pool 2, Dense (appendix C.2).

    ``grad_layout`` picks how the same function is computed, with the same
    parameters. False (forward passes: ES, evaluation): a single-channel first
    layer is a :class:`ShiftedConv`, pools are ``nn.max_pool``. True (the Adam
    trainer's training steps): ``nn.Conv`` throughout and :func:`_max_pool_2x2`,
    whose backward passes run faster on XLA:CPU. Logits agree up to float rounding.
    """

    num_classes: int
    features: Sequence[int] = (8, 16)
    kernel_size: int = 5
    grad_layout: bool = False

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for i, feats in enumerate(self.features):
            if x.shape[-1] == 1 and not self.grad_layout:
                x = ShiftedConv(feats, self.kernel_size, name=f"conv{i}")(x)
            else:
                x = nn.Conv(feats, (self.kernel_size, self.kernel_size), name=f"conv{i}")(x)
            x = nn.relu(x)
            x = _max_pool_2x2(x) if self.grad_layout else nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.num_classes, name="dense")(x)


def _conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """What ``nn.Conv`` computes (SAME padding, stride 1, NHWC / HWIO), without the bias."""
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _pool(x: jax.Array) -> jax.Array:
    """``nn.max_pool(x, (2, 2), strides=(2, 2))`` over the two spatial axes of an NHWC array."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def cnn_group_logits(params: Any, images: jax.Array) -> jax.Array:
    """Logits (B, N, classes) of B members of :class:`CNN` on the same images (N, H, W, C).

    ``params`` is the CNN's parameter pytree with a leading member axis B. Equals
    ``vmap(CNN.apply)`` up to float rounding, but is laid out for XLA:CPU, where a
    convolution with few output channels runs at a few GFLOP/s while one plain
    convolution with many output channels runs at 50-75% of the matmul rate (benchmarks/README.md):

    - First layer: every member sees the same images, so the B members' filters
      are stacked into ONE convolution with B*F output channels (an implicit
      (N*H*W, k*k*C) x (k*k*C, B*F) GEMM) instead of B convolutions with F.
    - Later layers: each member has its own input and weights, so nothing is
      shared; ``lax.map`` runs one plain convolution per member. ``vmap`` would
      make it a grouped convolution (``feature_group_count=B``), and im2col +
      batched matmul materialises the patches: measured 4-6x and 10-12x slower.
    - Max-pool before bias and relu: max(a + b) = max(a) + b and relu is
      monotone, so this is exact and touches 4x fewer elements.

    ``flax`` modules describe one member, hence plain ``lax`` calls (the ones
    ``nn.Conv`` / ``nn.Dense`` make, same padding) instead of ``nn.Conv``.
    """
    convs = [f"conv{i}" for i in range(sum(name.startswith("conv") for name in params))]
    first = params[convs[0]]
    b, kh, kw, c, f = first["kernel"].shape
    kernel = jnp.moveaxis(first["kernel"], 0, 3).reshape(kh, kw, c, b * f)  # member-major output channels
    # Bias and relu before moving the member axis out front: XLA then fuses them into
    # the convolution (measured 20-30% faster than after the transpose).
    x = nn.relu(_pool(_conv(images, kernel)) + first["bias"].reshape(b * f))
    x = jnp.moveaxis(x.reshape(*x.shape[:3], b, f), 3, 0)  # (B, N, H/2, W/2, F)

    def member(args: tuple[jax.Array, Any]) -> jax.Array:
        x, p = args
        for name in convs[1:]:
            x = nn.relu(_pool(_conv(x, p[name]["kernel"])) + p[name]["bias"])
        return x.reshape(x.shape[0], -1) @ p["dense"]["kernel"] + p["dense"]["bias"]

    return jax.lax.map(member, (x, {name: params[name] for name in [*convs[1:], "dense"]}))


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
