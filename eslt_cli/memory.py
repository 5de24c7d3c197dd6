"""A lower bound of the memory a training run needs, checked before anything is written.

``eslt train`` (``--dry-run`` too) refuses settings whose estimate exceeds the memory there is, with one
line that names the estimate and the option to lower. The estimate is deliberately low, so that a normal
run never trips it: it counts, at 4 bytes a number (8 for a key), only what a run certainly holds at once.

- The network: four copies of its D weights (init, mask, mean, best: what the checkpoint holds).
- ES: one generation's search vectors, --population x the n surviving weights.
- The widest activation of one evaluation. Vision: the first convolution's input (the --batch-size
  images as floats) and its output (SAME padding keeps the image size) for the members evaluated at
  once (at most 16, fewer as --batch-size grows; see :mod:`eslt_cli.tasks.vision`), which XLA holds
  together; Adam: for one batch, with the output's gradient. (At --batch-size 1000000 on
  Fashion-MNIST: 28 GB; XLA asked for 34.5 GB, the pooled output too.)
  Control: the widest layer for every member x --train-episodes (all members are evaluated at once), and
  x --test-episodes; brax episodes also draw a key per step, --episode-length of them. PPO: one rollout,
  --num-envs x --rollout-steps observations (at least 4 numbers a step), and a minibatch's widest layer.
- The history: 2 numbers per generation (epoch, update), kept in memory and written into the meta.

What there is: the host's physical memory (``os.sysconf``) or, on accelerators, the sum of the local
devices' memory where larger, times the processes of a multi-host run. Everything else (XLA's buffers
and copies, the data, compiled code) comes on top, so a run refused here could not run, and a run let
through may still run out of memory. Before the data or environment is loaded (``--dry-run``) sizes
that depend on them count at their least: 28x28 images for the MNIST family, one pixel for other
datasets, observations and actions one number wide, gymnax episodes one step long.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from eslt_cli.errors import BadInput
from eslt_cli.specs import AdamSpec, BraxSpec, CNNSpec, ESSpec, MLPSpec, ModelSpec, PPOSpec, TaskSpec, TrainerSpec

FLOAT = 4  # bytes of a float32
KEY = 8  # bytes of a JAX PRNG key (two uint32)
MNIST_FAMILY = ("fashion_mnist", "mnist", "kmnist", "mnist_corrupted")  # 28x28 grey images


@dataclass(frozen=True)
class Sizes:
    """What the estimate needs to know of a task: exact once it is built, else lower bounds."""

    weights: int  # D, the network's parameters
    image: tuple[int, int, int] = (1, 1, 1)  # vision: H, W, C
    obs: int = 1  # control: observation size
    steps: int = 1  # control: steps of one episode


@dataclass(frozen=True)
class Need:
    """One part of the estimate: what it is, its size in bytes, and the option that sets it."""

    what: str
    bytes: int
    option: str


def _mlp_weights(hidden: tuple[int, ...], inputs: int, outputs: int) -> int:
    widths = [inputs, *hidden, outputs]
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


def _cnn_weights(model: CNNSpec, image: tuple[int, int, int], classes: int) -> int:
    h, w, channels = image
    total = 0
    for features in model.features:
        total += model.kernel_size**2 * channels * features + features
        h, w, channels = h // 2, w // 2, features  # each conv is followed by a 2x2 max-pool
    return total + h * w * channels * classes + classes


def sizes_of(task_spec: TaskSpec, model: ModelSpec, task: Any = None) -> Sizes:
    """The :class:`Sizes` of a run: from the built ``task`` when given, else lower bounds from the settings."""
    if task is not None:
        import jax
        import numpy as np

        shapes = jax.eval_shape(task.init_params, jax.random.PRNGKey(0))
        weights = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes))
        data = getattr(task, "data", None)
        if data is not None:
            return Sizes(weights, image=tuple(int(d) for d in data.image_shape))  # type: ignore[arg-type]
        return Sizes(weights, obs=int(getattr(task, "obs_size", 1)), steps=int(getattr(task, "max_steps", 1)))
    if isinstance(model, CNNSpec):
        image = (28, 28, 1) if task_spec.name in MNIST_FAMILY else (1, 1, 1)
        return Sizes(_cnn_weights(model, image, 10 if task_spec.name in MNIST_FAMILY else 1), image=image)
    steps = task_spec.episode_length if isinstance(task_spec, BraxSpec) else 1
    return Sizes(_mlp_weights(model.hidden, 1, 1), steps=steps)


def estimate(
    task_spec: TaskSpec, model: ModelSpec, trainer: TrainerSpec, sizes: Sizes, surviving: int | None = None
) -> list[Need]:
    """The parts of the least memory a run of these settings holds (see the module's docstring)."""
    d = sizes.weights
    n = d if surviving is None else surviving
    widest = max(model.hidden, default=1) if isinstance(model, MLPSpec) else 1
    net_option = "--hidden" if isinstance(model, MLPSpec) else "the network's size"
    needs = [Need(f"the network's {d} weights, 4 copies", 4 * d * FLOAT, net_option)]
    first_layer = pixels = 1
    if isinstance(model, CNNSpec):
        h, w, c = sizes.image
        first_layer, pixels = h * w * (model.features[0] if model.features else 1), h * w * c
    batch = getattr(task_spec, "batch_size", 1)
    if isinstance(trainer, ESSpec):
        p = trainer.population
        needs.append(Need(f"a population of {p} x {n} weights", p * n * FLOAT, "--population"))
        if isinstance(model, CNNSpec):
            from eslt_cli.tasks.vision import MAX_GROUP, MAX_GROUP_IMAGES  # deferred: flax, optax (start-up)

            group = max(1, min(MAX_GROUP, MAX_GROUP_IMAGES // batch, p))
            needs.append(Need(f"the first layer's input and output for {group} member(s) x {batch} images",
                              batch * (pixels + group * first_layer) * FLOAT, "--batch-size"))  # fmt: skip
        else:
            episodes = getattr(task_spec, "train_episodes", 1)
            needs.append(Need(f"{p} members x {episodes} episodes, {widest} units wide",
                              p * episodes * widest * FLOAT, "--train-episodes or --population"))  # fmt: skip
            tests = getattr(task_spec, "test_episodes", 1)
            needs.append(Need(f"{tests} test episodes, {widest} units wide", tests * widest * FLOAT, "--test-episodes"))
            if isinstance(task_spec, BraxSpec):
                needs.append(Need(f"{p} members x {episodes} episodes x {sizes.steps} step keys",
                                  p * episodes * sizes.steps * KEY, "--episode-length"))  # fmt: skip
        needs.append(Need(f"the history of {trainer.generations} generations", trainer.generations * 2 * 8,
                          "--generations"))  # fmt: skip
    elif isinstance(trainer, AdamSpec):
        needs.append(Need(f"the first layer's input, output and gradient for {batch} images",
                          batch * (pixels + 2 * first_layer) * FLOAT, "--batch-size"))  # fmt: skip
        needs.append(Need(f"the history of {trainer.epochs} epochs", trainer.epochs * 2 * 8, "--epochs"))
    elif isinstance(trainer, PPOSpec):
        rollout = trainer.num_envs * trainer.rollout_steps
        needs.append(Need(f"a rollout of {trainer.num_envs} x {trainer.rollout_steps} steps",
                          rollout * max(sizes.obs, 1 + 3) * FLOAT, "--num-envs or --rollout-steps"))  # fmt: skip
        critic = max(trainer.critic, default=widest)
        minibatch = max(rollout // max(trainer.minibatches, 1), 1)
        needs.append(Need(f"a minibatch of {minibatch} steps, {max(widest, critic)} units wide",
                          minibatch * max(widest, critic) * FLOAT, "--num-envs or --rollout-steps"))  # fmt: skip
        updates = trainer.timesteps // max(rollout, 1)
        needs.append(Need(f"the history of {updates} updates", updates * 2 * 8, "--timesteps"))
    return needs


def available() -> tuple[int, str] | None:
    """The memory a run may use, in bytes, and where it is; None where it cannot be told."""
    try:
        host = int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        host = 0
    import jax

    devices = 0
    for device in jax.local_devices():
        if device.platform == "cpu":
            continue
        try:
            devices += int((device.memory_stats() or {}).get("bytes_limit", 0))
        except Exception:  # backends without memory statistics
            continue
    best, where = (devices, "the local devices have") if devices > host else (host, "this host has")
    if best <= 0:
        return None
    processes = jax.process_count()
    return best * processes, where if processes == 1 else f"{processes} hosts have"


def human(n: float) -> str:
    """Bytes for people: 1.5 GB, 12 TB (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1000 or unit == "EB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    raise AssertionError  # not reached


def check(needs: list[Need], limit: tuple[int, str] | None = None) -> None:
    """Refuse (:class:`BadInput`, one line) a run whose least memory exceeds ``limit`` (default: :func:`available`)."""
    limit = available() if limit is None else limit
    total = sum(need.bytes for need in needs)
    if limit is None or total <= limit[0]:
        return
    # A part that alone is too much is named first (the network before the population it multiplies).
    largest = next((need for need in needs if need.bytes > limit[0]), max(needs, key=lambda need: need.bytes))
    raise BadInput(
        f"this run needs at least {human(total)} of memory ({largest.what}: {human(largest.bytes)}), "
        f"more than the {human(limit[0])} {limit[1]}: lower {largest.option}"
    )
