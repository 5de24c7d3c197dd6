"""Evolution-strategy training of a masked network (Algorithm 1, inner loop).

The ES mean starts at the ticket's masked initialisation (not at zero, Section
2) and searches only the surviving weights. Generations run inside a jitted
``lax.scan`` of ``eval_every`` generations; between chunks the host evaluates
the mean on the test split, keeps the best test-scoring mean (with the search
std it was scored with), and reports progress. Nothing crosses to the host
inside a chunk. The paper code's per-generation schedules (mean decay, PGPE's
std decay, the optimiser's learning-rate decay) are part of the algorithm that
:func:`eslt_cli.strategies.build` returns.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from eslt_cli import obsnorm, strategies
from eslt_cli.errors import BadInput, Interrupted, RunFailed
from eslt_cli.sparse import SparseView
from eslt_cli.specs import ESSpec
from eslt_cli.tasks.base import Arrays, Params, Task


@dataclass(frozen=True)
class Progress:
    """What the trainer reports after each chunk, and once on resuming from a snapshot (``resumed``)."""

    generation: int
    generations: int
    fitness: float  # population mean fitness of the last generation (lower is better: -return, or a loss)
    metric: float  # test metric of the current mean
    gens_per_s: float
    best: float = -math.inf  # best test metric so far
    resumed: bool = False  # a snapshot brought the run to `generation`; nothing was trained yet


@dataclass(frozen=True)
class TrainResult:
    """Final and best means, per-weight search std (None if isotropic), history.

    ``best_std`` is the search std when the best mean was scored (None if
    isotropic, for gradient trainers, or when resumed from a snapshot that
    predates it).
    """

    mean: Params
    best: Params
    std: Params | None
    final: dict[str, float]
    norm: dict[str, np.ndarray] | None  # observation normaliser at the end (None: the task has none)
    best_norm: dict[str, np.ndarray] | None  # ... and when the best mean was scored
    best_metrics: dict[str, float]
    history: dict[str, list[float] | dict[str, list[float]]]  # fitness_mean, fitness_best; eval: test records
    best_std: Params | None = None


def mesh_of(devices: int) -> Mesh | None:
    """A one-axis mesh (``pop``) over the first ``devices`` devices; None for one device."""
    available = jax.device_count()
    if not 1 <= devices <= available:
        raise BadInput(f"--devices must be between 1 and {available} (the devices JAX sees), got {devices}")
    return None if devices == 1 else Mesh(np.array(jax.devices()[:devices]), ("pop",))


POPULATION_EVAL = ("auto", "grouped", "vmap")


def population_eval(mode: str | None = None) -> str:
    """How a population is evaluated: ``grouped`` (members in groups through the task's
    ``group_fitness``, fastest on CPU) or ``vmap`` (all of a device's members at once, for GPUs).

    ``mode`` (default ``$ESLT_POPULATION_EVAL``, else ``auto``): ``auto`` picks grouped on CPU and
    vmap on accelerators. Both give the same fitness up to float rounding, so it is not a setting
    of the run.
    """
    mode = mode or os.environ.get("ESLT_POPULATION_EVAL") or "auto"
    if mode not in POPULATION_EVAL:
        raise BadInput(f"ESLT_POPULATION_EVAL={mode!r}: choose one of {', '.join(POPULATION_EVAL)}")
    if mode == "auto":
        return "grouped" if jax.default_backend() == "cpu" else "vmap"
    return mode


def _programs(
    task: Task, spec: ESSpec, view: SparseView, devices: int = 1
) -> tuple[Any, Any, Callable, Callable, Mesh | None]:
    """:func:`_compiled` for the population evaluation :func:`population_eval` chooses."""
    return _compiled(task, spec, view, devices, population_eval())


@functools.lru_cache(maxsize=16)
def _compiled(
    task: Task, spec: ESSpec, view: SparseView, devices: int, evaluation: str
) -> tuple[Any, Any, Callable, Callable, Mesh | None]:
    """evosax algorithm, its params, the jitted chunk and evaluation functions, the mesh.

    Cached on (task, settings, view, devices) so repeated runs in one process
    (tests, analyses) compile once; ``idx`` is an argument so equal-nnz masks
    share code. With several devices the population is split over them
    (``shard_map``); ask and tell run replicated, they are cheap.
    """
    if spec.population % devices:
        raise BadInput(f"--population {spec.population} must be a multiple of --devices {devices}")
    es, es_params = strategies.build(spec, jnp.zeros(view.nnz, jnp.float32))
    local = spec.population // devices
    vmap_all = evaluation == "vmap"
    batch = local if vmap_all else math.gcd(min(task.member_batch or local, local), local)
    mesh = mesh_of(devices)
    normalizes = "obs_norm" in task.arrays
    group_fitness = None if vmap_all else getattr(task, "group_fitness", None)

    def population_fitness(population: jax.Array, arrays: Arrays, idx: jax.Array, key: jax.Array) -> Any:
        if group_fitness is not None:  # the task evaluates ``batch`` members at once itself
            fit = group_fitness(arrays, key)
            groups = population.reshape(-1, batch, population.shape[-1])
            out = jax.lax.map(lambda xs: fit(jax.vmap(lambda x: view.decode(x, idx))(xs)), groups)
            return jax.tree.map(lambda o: o.reshape(-1, *o.shape[2:]), out)
        member = task.member_fitness(arrays, key)
        return jax.lax.map(lambda x: member(view.decode(x, idx)), population, batch_size=batch)

    if mesh is not None:
        # check_vma=False: task code (e.g. episode scans seeded by a replicated key)
        # mixes replicated and per-shard values in loop carries, which is fine here.
        population_fitness = jax.shard_map(
            population_fitness, mesh=mesh, in_specs=(P("pop"), P(), P(), P()), out_specs=P("pop"), check_vma=False
        )

    @jax.jit
    def chunk(
        carry: tuple[Any, Any], idx: jax.Array, keys: jax.Array, arrays: Arrays
    ) -> tuple[tuple[Any, Any], jax.Array]:
        """``len(keys)`` generations from ``carry`` = (ES state, observation normaliser or None)."""

        def generation(carry: tuple[Any, Any], key: jax.Array) -> tuple[tuple[Any, Any], jax.Array]:
            state, norm = carry
            k_ask, k_fit, k_tell = jax.random.split(key, 3)
            population, state = es.ask(k_ask, state, es_params)
            out = population_fitness(population, arrays | ({"obs_norm": norm} if normalizes else {}), idx, k_fit)
            fitness = out[0] if normalizes else out
            if normalizes:  # the next generation sees this one's observations
                norm = obsnorm.update(norm, jax.tree.map(lambda s: s.sum(0), out[1]))
            state, _ = es.tell(k_tell, population, fitness, state, es_params)
            return (state, norm), jnp.stack([fitness.mean(), fitness.min()])

        return jax.lax.scan(generation, carry, keys)

    @jax.jit
    def evaluate(x: jax.Array, idx: jax.Array, key: jax.Array, arrays: Arrays) -> dict[str, jax.Array]:
        return task.evaluate(arrays, view.decode(x, idx), key)

    return es, es_params, chunk, evaluate, mesh


def host(x: Any) -> np.ndarray:
    """A (replicated) array as numpy on this host, also when other hosts hold parts of it."""
    return np.asarray(x if getattr(x, "is_fully_addressable", True) else x.addressable_data(0))


def split_key(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The ES-init, search and test-evaluation keys that :func:`train` derives from ``key``."""
    k_init, k_train, k_eval = jax.random.split(key, 3)
    return k_init, k_train, k_eval


@dataclass
class Record:
    """The bookkeeping every trainer shares between its jitted chunks.

    Per-step (generation, epoch, update) population-mean and best fitness,
    the test evaluations, the best test score so far, snapshots and stops;
    ``unit`` names a step in messages.
    """

    total: int
    unit: str
    stats: list[np.ndarray] = field(default_factory=list)
    evals: dict[str, list[float]] = field(default_factory=lambda: {"generation": [], "metric": [], "loss": []})
    best: dict[str, float] = field(default_factory=lambda: {"metric": -np.inf, "loss": np.inf, "generation": 0})
    done: int = 0
    last_save: int = 0

    def resume(
        self, stats: np.ndarray, info: dict[str, Any], on_progress: Callable[[Progress], None] | None = None
    ) -> None:
        """Continue from a snapshot's stats and :meth:`info`, and tell ``on_progress`` (``resumed``)."""
        self.stats = [np.asarray(stats).reshape(-1, 2)]
        self.best, self.evals, self.done = info["best"], info["evals"], int(info["generation"])
        self.last_save = self.done
        if on_progress is not None:
            fitness = float(self.stats[0][-1, 0]) if len(self.stats[0]) else math.nan
            metric = self.evals["metric"][-1] if self.evals["metric"] else math.nan
            on_progress(Progress(self.done, self.total, fitness, metric, 0.0, self.best["metric"], resumed=True))

    def progress(self, fitness: float, metric: float, per_s: float) -> Progress:
        """The report after a chunk: ``fitness`` of its last step, the test ``metric``, steps per second."""
        return Progress(self.done, self.total, fitness, metric, per_s, self.best["metric"])

    def info(self) -> dict[str, Any]:
        """What a snapshot stores besides arrays."""
        return {"generation": self.done, "best": self.best, "evals": self.evals}

    def add(self, n: int, stats: np.ndarray, metrics: dict[str, float] | None, failure: str) -> bool:
        """Record ``n`` more steps (``stats``: rows of mean and best fitness) and, when tested, ``metrics``.

        Raises :class:`RunFailed` with ``failure`` (what to do about it) on
        non-finite values; returns whether ``metrics`` are a new best.
        """
        self.done += n
        if not np.isfinite(stats).all() or (metrics is not None and not np.isfinite(metrics["metric"])):
            raise RunFailed(f"non-finite fitness or test metric by {self.unit} {self.done}: {failure}")
        self.stats.append(np.asarray(stats).reshape(-1, 2))
        if metrics is None:
            return False
        for k in ("metric", "loss"):
            self.evals[k].append(metrics[k])
        self.evals["generation"].append(self.done)
        if metrics["metric"] <= self.best["metric"]:
            return False
        self.best = {**metrics, "generation": self.done}
        return True

    def after_chunk(
        self, stop: Callable[[], int] | None, store: SnapshotStore | None, save_every: int, save: Callable[[], None]
    ) -> None:
        """Snapshot when one is due or a signal came, then raise :class:`Interrupted` on a signal."""
        signum = stop() if stop is not None else 0
        if store is not None and self.done < self.total and (signum or self.done - self.last_save >= save_every):
            save()
            self.last_save = self.done
        if signum:
            raise Interrupted(
                f"stopped by signal {signum} at {self.unit} {self.done}/{self.total}"
                + ("; re-run the same command to resume" if store is not None else ""),
                signum,
            )

    def result(
        self,
        mean: Params,
        best: Params,
        std: Params | None,
        norm: Any = None,
        best_norm: Any = None,
        best_std: Params | None = None,
    ) -> TrainResult:
        """The :class:`TrainResult` of the finished run."""
        stats = np.concatenate(self.stats)
        return TrainResult(
            mean=mean,
            best=best,
            std=std,
            final={"metric": self.evals["metric"][-1], "loss": self.evals["loss"][-1], "generation": self.done},
            norm=norm,
            best_norm=best_norm,
            best_metrics=self.best,
            history={"fitness_mean": stats[:, 0].tolist(), "fitness_best": stats[:, 1].tolist(), "eval": self.evals},
            best_std=best_std,
        )


class SnapshotStore(Protocol):
    """Where :func:`train` keeps snapshots to resume from (see checkpoint.ResumeStore)."""

    def latest(self) -> tuple[dict[str, Any], dict[str, Any]] | None: ...

    def save(self, step: int, arrays: dict[str, Any], info: dict[str, Any]) -> None: ...


def check(task: Task | None, spec: ESSpec) -> None:
    """Refuse settings :func:`train` cannot run (one :class:`BadInput` line; the strategy's own rules).
    ``task`` (None before it is built) is not needed: every task takes every ES."""
    strategies.check_spec(spec)


def train(
    task: Task,
    spec: ESSpec,
    init: Params,
    mask: Params,
    key: jax.Array,
    on_progress: Callable[[Progress], None] | None = None,
    store: SnapshotStore | None = None,
    save_every: int = 100,
    stop: Callable[[], int] | None = None,
    devices: int = 1,
) -> TrainResult:
    """Train the masked ``init`` with the ES of ``spec``; ``key`` fixes everything random.

    With a ``store``, a snapshot of the whole run (ES state with its counters,
    best-so-far, history) is saved at the first chunk end after every
    ``save_every`` generations, and a run resumes from the newest one. Keys
    depend only on the generation, so a resumed run gives bit-identical
    results. ``stop()`` returning a signal number saves and raises
    :class:`Interrupted` at the next chunk end.
    """
    check(task, spec)
    view = SparseView.of(mask)
    # Cache key: the chunk code does not depend on the number of generations.
    es, es_params, chunk, evaluate, mesh = _programs(task, dataclasses.replace(spec, generations=0), view, devices)

    # On a mesh (several devices, maybe several hosts) every input is replicated.
    # (make_array_from_process_local_data, unlike device_put, does not compare the
    # values across hosts, which fails on evosax's NaN-initialised best solution.)
    def put(tree: Any) -> Any:
        if mesh is None:
            return tree
        replicated = NamedSharding(mesh, P())
        return jax.tree.map(lambda a: jax.make_array_from_process_local_data(replicated, host(a)), tree)

    idx, arrays = put(jnp.asarray(view.idx)), put(task.arrays)
    k_init, k_train, k_eval = split_key(key)
    x0 = view.encode(init)
    # evosax leaves some leaves weakly typed at init; strong types keep the chunk
    # from compiling a second time after its first call.
    state = jax.tree.map(lambda a: jnp.asarray(a, dtype=jnp.result_type(a)), es.init(k_init, x0, es_params))

    record = Record(int(spec.generations), "generation")
    search_std = strategies.get_strategy(spec.strategy).search_std
    best_x = x0
    best_std = None if search_std is None else search_std(state)  # the std best_x was scored with
    norm = task.arrays.get("obs_norm")
    best_norm = norm
    leaves, treedef = jax.tree.flatten(state)
    snapshot = store.latest() if store is not None else None
    if snapshot is not None:
        saved, info = snapshot
        state = jax.tree.unflatten(treedef, [saved["es"][f"{i:05d}"] for i in range(len(leaves))])
        best_x, norm, best_norm = saved["best_x"], saved.get("norm"), saved.get("best_norm")
        best_std = saved.get("best_std")  # None from a snapshot that predates it: unknown, not guessed
        record.resume(saved["stats"], info, on_progress)

    def save() -> None:
        es_leaves = {f"{i:05d}": host(leaf) for i, leaf in enumerate(jax.tree.leaves(state))}
        snapshot = {"es": es_leaves, "best_x": host(best_x), "stats": np.concatenate(record.stats)}
        if best_std is not None:
            snapshot["best_std"] = host(best_std)
        if norm is not None:
            snapshot |= {"norm": jax.tree.map(host, norm), "best_norm": jax.tree.map(host, best_norm)}
        assert store is not None  # Record.after_chunk saves only with a store
        store.save(record.done, snapshot, record.info())

    state, norm = put(state), put(norm)
    while record.done < spec.generations:
        n = min(spec.eval_every, spec.generations - record.done)
        keys = jax.random.split(jax.random.fold_in(k_train, record.done), n)
        start = time.perf_counter()
        (state, norm), chunk_stats = chunk((state, norm), idx, put(keys), arrays)
        test_arrays = arrays if norm is None else arrays | {"obs_norm": norm}
        metrics = {k: float(host(v)) for k, v in evaluate(state.mean, idx, put(k_eval), test_arrays).items()}
        chunk_stats = host(chunk_stats)
        elapsed = time.perf_counter() - start
        if record.add(n, chunk_stats, metrics, "lower --std-init or --lr, or check the task"):
            best_x, best_norm = state.mean, norm
            best_std = None if search_std is None else search_std(state)
        if on_progress is not None:
            on_progress(record.progress(float(chunk_stats[-1, 0]), metrics["metric"], n / elapsed))
        record.after_chunk(stop, store, save_every, save)

    return record.result(
        mean=view.decode(host(state.mean)),
        best=view.decode(host(best_x)),
        std=None if search_std is None else view.decode(host(search_std(state))),
        norm=None if norm is None else jax.tree.map(host, norm),
        best_norm=None if best_norm is None else jax.tree.map(host, best_norm),
        best_std=None if best_std is None else view.decode(host(best_std)),
    )
