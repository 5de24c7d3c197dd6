"""What every task provides to trainers, pruning and analyses."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

import jax

from eslt_cli.specs import ModelSpec, TaskSpec

Params = Any  # a flax parameter pytree (dict of layers of kernel/bias arrays)
# A task's data, passed to jitted code as arguments: named arrays, and pytrees of arrays
# (a control task's ``obs_norm`` is a dict of arrays, see :mod:`eslt_cli.obsnorm`).
Arrays = dict[str, Any]


class Task(Protocol):
    """A task: a model, a training objective and a test metric.

    ``member_fitness(arrays, key)`` draws what one generation shares (a
    training batch, episode keys) and returns a per-member fitness function,
    lower is better, to be traced inside the trainer's jitted generation step.
    ``evaluate`` reports the test ``metric`` (higher is better) and a test
    ``loss``. Data lives in ``arrays`` and is passed to jitted code as an
    argument: closed over, JAX would bake it into the program as constants.

    The attributes are read-only here, so a task may hold a narrower type
    (:class:`VisionTask` a :class:`VisionSpec` and a :class:`CNNSpec`).
    Tasks are hashable (by identity): compiled functions are cached per task.
    """

    @property
    def spec(self) -> TaskSpec: ...

    @property
    def model_spec(self) -> ModelSpec: ...

    @property
    def metric(self) -> str: ...  # "accuracy" | "return"

    @property
    def member_batch(self) -> int | None: ...  # members evaluated at once by lax.map (None: all, i.e. vmap)

    @property
    def arrays(self) -> Arrays: ...

    def __hash__(self) -> int: ...

    def init_params(self, key: jax.Array) -> Params: ...

    def member_fitness(self, arrays: Arrays, key: jax.Array) -> Callable[[Params], jax.Array]: ...

    def evaluate(self, arrays: Arrays, params: Params, key: jax.Array) -> dict[str, jax.Array]: ...


@functools.lru_cache(maxsize=16)
def _jitted_evaluate(task: Task) -> Callable[..., dict[str, jax.Array]]:
    return jax.jit(task.evaluate)


def evaluate(task: Task, params: Params, key: jax.Array) -> dict[str, float]:
    """Test metric and loss of ``params`` on ``task``, jitted once per task."""
    return {k: float(v) for k, v in _jitted_evaluate(task)(task.arrays, params, key).items()}


def same_structure(a: Params, b: Params) -> bool:
    """Whether pytrees ``a`` and ``b`` have one tree structure (their leaves' shapes aside)."""
    # jaxlib ships no stubs for its C++ PyTreeDef, so mypy cannot type its comparison.
    return bool(jax.tree.structure(a) == jax.tree.structure(b))  # type: ignore[operator]


def uniform_biases(params: Params, key: jax.Array, high: float, skip: tuple[str, ...] = ()) -> Params:
    """``params`` with every bias (layers in ``skip`` aside) drawn from U[0, ``high``), as the paper's
    networks initialise them (flax ``initializers.uniform(0.05)``); unchanged when ``high`` is 0."""
    if not high:
        return params
    out = {}
    for i, (layer, leaves) in enumerate(sorted(params.items())):
        if "bias" in leaves and layer not in skip:
            bias = jax.random.uniform(jax.random.fold_in(key, i), leaves["bias"].shape, leaves["bias"].dtype, 0, high)
            leaves = {**leaves, "bias": bias}
        out[layer] = leaves
    return out
