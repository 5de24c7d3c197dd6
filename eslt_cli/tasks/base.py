"""What every task provides to trainers, pruning and analyses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import jax

from eslt_cli.specs import ModelSpec, TaskSpec

Params = Any  # a flax parameter pytree (dict of layers of kernel/bias arrays)


class Task(Protocol):
    """A task: a model, a training objective and a test metric.

    ``member_fitness(key)`` draws what one generation shares (a training batch,
    episode keys) and returns a per-member fitness function, lower is better, to
    be traced inside the trainer's jitted generation step. ``evaluate`` reports
    the test ``metric`` (higher is better) and a test ``loss``.
    """

    spec: TaskSpec
    model_spec: ModelSpec
    metric: str  # "accuracy" | "return"
    member_batch: int | None  # members evaluated at once by lax.map (None: all, i.e. vmap)

    def init_params(self, key: jax.Array) -> Params: ...

    def member_fitness(self, key: jax.Array) -> Callable[[Params], jax.Array]: ...

    def evaluate(self, params: Params, key: jax.Array) -> dict[str, jax.Array]: ...
