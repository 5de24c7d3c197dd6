"""The paper's networks: layer names, shapes, and the fast first convolution."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eslt_cli.models import CNN, MLP, ShiftedConv


@pytest.mark.parametrize("k", [5, 4])
def test_shifted_conv_equals_flax_conv(k: int) -> None:
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 12, 12, 1))
    ref, ours = nn.Conv(4, (k, k), name="c"), ShiftedConv(4, k, name="c")
    params = ref.init(jax.random.PRNGKey(1), x)
    same = ours.init(jax.random.PRNGKey(1), x)  # same initialisation, same layout
    np.testing.assert_array_equal(params["params"]["kernel"], same["params"]["kernel"])
    np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), atol=1e-5)


def test_cnn_layers_match_appendix_c2() -> None:
    params = CNN(10).init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))["params"]
    assert params["conv0"]["kernel"].shape == (5, 5, 1, 8)
    assert params["conv1"]["kernel"].shape == (5, 5, 8, 16)
    assert params["dense"]["kernel"].shape == (7 * 7 * 16, 10)
    rgb = CNN(100).init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))["params"]
    assert rgb["dense"]["kernel"].shape == (8 * 8 * 16, 100)


def test_mlp_output_squashing() -> None:
    model = MLP(2, (8,), tanh_output=True)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    out = model.apply(params, 100 * jnp.ones((1, 3)))
    assert set(params["params"]) == {"hidden0", "out"} and bool(jnp.all(jnp.abs(out) <= 1))
