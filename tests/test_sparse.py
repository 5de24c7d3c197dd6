"""The compressed search vector holds exactly the surviving weights."""

import jax
import numpy as np

from eslt_cli.sparse import SparseView


def test_encode_decode_round_trip_with_zeros_at_pruned() -> None:
    params = {"a": {"kernel": np.arange(6.0).reshape(2, 3) + 1, "bias": np.array([7.0, 8.0, 9.0])}}
    mask = {"a": {"kernel": np.array([[1, 0, 1], [0, 1, 0]], np.uint8), "bias": np.ones(3, np.uint8)}}
    view = SparseView.of(mask)
    assert view.nnz == 6 and view.size == 9
    x = view.encode(params)
    np.testing.assert_array_equal(np.sort(np.asarray(x)), [1, 3, 5, 7, 8, 9])
    back = view.decode(x)
    np.testing.assert_array_equal(back["a"]["kernel"], [[1, 0, 3], [0, 5, 0]])
    np.testing.assert_array_equal(back["a"]["bias"], [7, 8, 9])
    assert SparseView.of(jax.tree.map(np.ones_like, mask)) != view
