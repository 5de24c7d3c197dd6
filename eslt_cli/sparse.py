"""The compressed view of a masked network that the ES searches (Section 2).

The search vector holds only the surviving weights (nnz entries), so ES state
memory and sampling cost fall with sparsity; ``decode`` scatters a vector back
into the flax parameter pytree with pruned weights at exactly zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from eslt_cli.tasks.base import Params


@dataclass(frozen=True, eq=False)
class SparseView:
    """Positions of a mask's survivors in the flattened parameter vector.

    Views compare equal when their dense size and nnz agree: for one model such
    views share compiled code, since ``decode`` can take ``idx`` as an argument.
    """

    idx: np.ndarray  # int32 (nnz,), increasing
    size: int  # dense parameter count
    unravel: Callable[[jax.Array], Params]  # flat vector -> params pytree

    @classmethod
    def of(cls, mask: Params) -> SparseView:
        flat, unravel = ravel_pytree(jax.tree.map(lambda m: np.asarray(m, np.float32), mask))
        return cls(np.flatnonzero(np.asarray(flat)).astype(np.int32), int(flat.size), unravel)

    def __hash__(self) -> int:
        return hash((self.size, self.nnz))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SparseView) and (self.size, self.nnz) == (other.size, other.nnz)

    @property
    def nnz(self) -> int:
        return int(self.idx.size)

    def encode(self, params: Params) -> jax.Array:
        """The surviving entries of ``params`` as a flat vector."""
        return ravel_pytree(params)[0][self.idx]

    def decode(self, x: jax.Array | np.ndarray, idx: jax.Array | np.ndarray | None = None) -> Params:
        """Scatter ``x`` (nnz,) into a dense params pytree, zeros elsewhere.

        Pass ``idx`` as a traced argument to reuse one compiled function across
        masks with the same nnz.
        """
        at = self.idx if idx is None else idx
        return self.unravel(jnp.zeros(self.size, x.dtype).at[at].set(x, unique_indices=True))
