"""Permuted tickets: is it the values or the positions of a ticket that matter?

Two controls on a ticket (Section 4): ``weights`` shuffles, within each layer's
kernel, the surviving init values over the surviving positions (the mask is
unchanged); ``mask`` draws, within each layer's kernel, a new mask with the
same number of survivors at uniformly random positions and places the layer's
surviving init values on it in shuffled order (the layerwise ratio is kept).
Biases and excluded or dense leaves other than kernels are untouched. Pruned
entries of a permuted kernel are zero. Pure numpy on the host, keyed by JAX.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from eslt_cli import checkpoint, paths, pruning, schema
from eslt_cli.checkpoint import Checkpoint
from eslt_cli.errors import BadInput
from eslt_cli.tasks.base import Params
from eslt_cli.tickets import write_ticket

VARIANTS = ("weights", "mask")


def _kernels(tree: Params) -> list[tuple[str, str]]:
    return [(layer, name) for layer in tree for name in tree[layer] if name == "kernel"]


def _copy(tree: Params) -> Params:
    return {layer: {name: np.array(leaf) for name, leaf in leaves.items()} for layer, leaves in tree.items()}


def permute_weights(key: jax.Array, init: Params, mask: Params) -> Params:
    """``init`` with each kernel's surviving values shuffled over its surviving positions."""
    out = _copy(init)
    for i, (layer, name) in enumerate(_kernels(init)):
        k = np.asarray(init[layer][name])
        alive = np.ravel(mask[layer][name]).astype(bool)
        flat = np.zeros(k.size, k.dtype)
        values = np.ravel(k)[alive]
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, i), values.size))
        flat[alive] = values[perm]
        out[layer][name] = flat.reshape(k.shape)
    return out


def permute_mask(key: jax.Array, init: Params, mask: Params) -> tuple[Params, Params]:
    """A new mask per kernel with as many survivors at random positions, carrying the shuffled survivors."""
    new_init, new_mask = _copy(init), _copy(mask)
    for i, (layer, name) in enumerate(_kernels(init)):
        k = np.asarray(init[layer][name])
        alive = np.ravel(mask[layer][name]).astype(bool)
        values = np.ravel(k)[alive]
        k_pos, k_val = jax.random.split(jax.random.fold_in(key, i))
        positions = np.sort(np.asarray(jax.random.permutation(k_pos, k.size))[: values.size])
        flat, flat_mask = np.zeros(k.size, k.dtype), np.zeros(k.size, np.uint8)
        flat[positions] = values[np.asarray(jax.random.permutation(k_val, values.size))]
        flat_mask[positions] = 1
        new_init[layer][name] = flat.reshape(k.shape)
        new_mask[layer][name] = flat_mask.reshape(k.shape).astype(np.asarray(mask[layer][name]).dtype)
    return new_init, new_mask


@dataclass(frozen=True)
class PermutePlan:
    """A permutation of one ticket and where its result goes."""

    parent: Checkpoint
    variant: str
    seed: int
    out: Path

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {"op": "permute", **checkpoint.parent_record(self.parent), "variant": self.variant, "seed": self.seed}


def plan_permute(parent: Checkpoint, variant: str, seed: int = 0, out: Path | None = None) -> PermutePlan:
    """Check a permutation request and settle the output path (beside the input by default)."""
    if variant not in VARIANTS:
        raise BadInput(f"unknown permutation {variant!r}: choose one of {', '.join(VARIANTS)}")
    if parent.kind != "ticket":
        raise BadInput(f"{parent.path}: is trained; permute a ticket (`eslt prune --snr {parent.path} | eslt permute`)")
    seed = schema.check_seed(seed)
    out = Path(out) if out is not None else paths.permuted(parent.path, variant, seed)
    return PermutePlan(parent, variant, int(seed), out.absolute())


def run_permute(plan: PermutePlan, force: bool = False) -> tuple[Path, bool]:
    """Write the permuted ticket; returns its path and whether it was made now."""
    parent = plan.parent
    key = jax.random.fold_in(jax.random.PRNGKey(plan.seed), parent.record.level)
    init, mask = parent.state["init"], parent.state["mask"]
    exclude = [x for x in (parent.record.pruning or {}).get("exclude", []) if x in mask]
    if plan.variant == "weights":
        init = permute_weights(key, init, mask)
    else:
        init, mask = permute_mask(key, init, mask)
    meta = {
        **parent.record.raw,
        "kind": "ticket",
        "arm": f"{parent.record.arm}+perm-{plan.variant}",
        "sparsity": pruning.sparsity(mask, pruning.prunable(mask, exclude)),
        "permutation": {"variant": plan.variant, "seed": plan.seed},
    }
    meta.pop("schema", None)
    meta.pop("eslt_version", None)
    return write_ticket(parent, plan.out, plan.fingerprint, {"init": init, "mask": mask}, meta, force)
