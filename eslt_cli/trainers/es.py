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
from dataclasses import dataclass
from typing import Any

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
from eslt_cli.trainers.record import Progress, Record, SnapshotStore, TrainResult


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
    return _by_backend(mode, "ESLT_POPULATION_EVAL", POPULATION_EVAL, "grouped")


def _by_backend(mode: str | None, variable: str, choices: tuple[str, ...], on_cpu: str) -> str:
    """``mode`` (default ``$variable``, else ``auto``), one of ``choices``; ``auto`` is ``on_cpu`` on
    CPU and ``vmap`` on accelerators."""
    mode = mode or os.environ.get(variable) or "auto"
    if mode not in choices:
        raise BadInput(f"{variable}={mode!r}: choose one of {', '.join(choices)}")
    if mode == "auto":
        return on_cpu if jax.default_backend() == "cpu" else "vmap"
    return mode


RUN_AXIS = ("auto", "map", "vmap")


def run_axis(mode: str | None = None) -> str:
    """How :func:`train_many` steps its runs: ``vmap`` (one program as wide as all runs) or ``map``
    (``lax.map``: one run after another inside one compiled program).

    ``mode`` (default ``$ESLT_RUN_AXIS``, else ``auto``): ``auto`` picks map on CPU, where wider
    batches measured no faster (benchmarks/bench_batch.py) and the gain is the shared start-up and
    compilation, and vmap on accelerators. Not a setting of the run (same results up to rounding).
    """
    return _by_backend(mode, "ESLT_RUN_AXIS", RUN_AXIS, "map")


def over_runs(fn: Callable, shared: int, axis: str) -> Callable:
    """``fn`` over a leading run axis of every argument but the one at position ``shared``
    (``axis``: see :func:`run_axis`)."""

    def mapped(*args: Any) -> Any:
        common = args[shared]
        rest = args[:shared] + args[shared + 1 :]

        def one(xs: tuple[Any, ...]) -> Any:
            return fn(*xs[:shared], common, *xs[shared:])

        if axis == "vmap":
            return jax.vmap(one)(rest)
        return jax.lax.map(one, rest)

    return mapped


def _programs(
    task: Task, spec: ESSpec, view: SparseView, devices: int = 1, batched: bool = False
) -> tuple[Any, Any, Callable, Callable, Mesh | None]:
    """:func:`_compiled` for the population evaluation :func:`population_eval` chooses (and, batched,
    the run axis :func:`run_axis` chooses)."""
    return _compiled(task, spec, view, devices, population_eval(), run_axis() if batched else "")


@functools.lru_cache(maxsize=16)
def _compiled(
    task: Task, spec: ESSpec, view: SparseView, devices: int, evaluation: str, axis: str = ""
) -> tuple[Any, Any, Callable, Callable, Mesh | None]:
    """evosax algorithm, its params, the jitted chunk and evaluation functions, the mesh.

    Cached on (task, settings, view, devices) so repeated runs in one process
    (tests, analyses) compile once; ``idx`` is an argument so equal-nnz masks
    share code. With several devices the population is split over them
    (``shard_map``); ask and tell run replicated, they are cheap. With a run
    ``axis`` (:func:`run_axis`) both functions take a leading run axis on every argument but the task's
    arrays (:func:`train_many`), and evaluation takes the runs' observation
    normalisers as a fifth argument.
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

    def evaluate(x: jax.Array, idx: jax.Array, key: jax.Array, arrays: Arrays) -> dict[str, jax.Array]:
        return task.evaluate(arrays, view.decode(x, idx), key)

    if axis:

        def evaluate_normed(x: jax.Array, idx: jax.Array, key: jax.Array, arrays: Arrays, norm: Any) -> Any:
            return evaluate(x, idx, key, arrays if norm is None else arrays | {"obs_norm": norm})

        return (
            es,
            es_params,
            jax.jit(over_runs(chunk, 3, axis)),
            jax.jit(over_runs(evaluate_normed, 3, axis)),
            mesh,
        )
    return es, es_params, jax.jit(chunk), jax.jit(evaluate), mesh


def host(x: Any) -> np.ndarray:
    """A (replicated) array as numpy on this host, also when other hosts hold parts of it."""
    return np.asarray(x if getattr(x, "is_fully_addressable", True) else x.addressable_data(0))


def split_key(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The ES-init, search and test-evaluation keys that :func:`train` derives from ``key``."""
    k_init, k_train, k_eval = jax.random.split(key, 3)
    return k_init, k_train, k_eval


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
    state, norm, run = _start(es, es_params, spec, task, k_init, view.encode(init), store, on_progress)
    record = run.record
    search_std = strategies.get_strategy(spec.strategy).search_std

    def save() -> None:
        assert store is not None  # Record.after_chunk saves only with a store
        store.save(record.done, run.snapshot(state, norm), record.info())

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
        if record.add(n, chunk_stats, metrics, FAILURE):
            run.improved(state, norm, search_std)
        if on_progress is not None:
            on_progress(record.progress(float(chunk_stats[-1, 0]), metrics["metric"], n / elapsed))
        record.after_chunk(stop, store, save_every, save)

    return run.result(view, state, norm, search_std)


FAILURE = "lower --std-init or --lr, or check the task"  # what to do about a non-finite fitness


@dataclass
class _Run:
    """One run's bookkeeping on the host between chunks: its record, the best mean so far (with the
    search std and observation normaliser it was scored with) and, in a batch, how it failed."""

    record: Record
    best_x: Any
    best_std: Any
    best_norm: Any
    failed: RunFailed | None = None

    def improved(self, state: Any, norm: Any, search_std: Callable[[Any], jax.Array] | None) -> None:
        """The current mean (of ``state``, one run's) scored a new best."""
        self.best_x, self.best_norm = state.mean, norm
        self.best_std = None if search_std is None else search_std(state)

    def snapshot(self, state: Any, norm: Any) -> dict[str, Any]:
        """The arrays a snapshot stores, from this run's ES ``state`` and normaliser."""
        es_leaves = {f"{i:05d}": host(leaf) for i, leaf in enumerate(jax.tree.leaves(state))}
        snapshot = {"es": es_leaves, "best_x": host(self.best_x), "stats": np.concatenate(self.record.stats)}
        if self.best_std is not None:
            snapshot["best_std"] = host(self.best_std)
        if norm is not None:
            snapshot |= {"norm": jax.tree.map(host, norm), "best_norm": jax.tree.map(host, self.best_norm)}
        return snapshot

    def result(
        self, view: SparseView, state: Any, norm: Any, search_std: Callable[[Any], jax.Array] | None
    ) -> TrainResult:
        """The finished run's :class:`TrainResult` from its final ES ``state`` and normaliser."""
        return self.record.result(
            mean=view.decode(host(state.mean)),
            best=view.decode(host(self.best_x)),
            std=None if search_std is None else view.decode(host(search_std(state))),
            norm=None if norm is None else jax.tree.map(host, norm),
            best_norm=None if self.best_norm is None else jax.tree.map(host, self.best_norm),
            best_std=None if self.best_std is None else view.decode(host(self.best_std)),
        )


def _start(
    es: Any,
    es_params: Any,
    spec: ESSpec,
    task: Task,
    k_init: jax.Array,
    x0: jax.Array,
    store: SnapshotStore | None,
    on_progress: Callable[[Progress], None] | None,
) -> tuple[Any, Any, _Run]:
    """A run's ES state, observation normaliser and bookkeeping: fresh, or from its newest snapshot."""
    # evosax leaves some leaves weakly typed at init; strong types keep the chunk
    # from compiling a second time after its first call.
    state = jax.tree.map(lambda a: jnp.asarray(a, dtype=jnp.result_type(a)), es.init(k_init, x0, es_params))
    search_std = strategies.get_strategy(spec.strategy).search_std
    norm = task.arrays.get("obs_norm")
    # best_std: the std best_x was scored with
    run = _Run(Record(int(spec.generations), "generation"), x0, None if search_std is None else search_std(state), norm)
    snapshot = store.latest() if store is not None else None
    if snapshot is not None:
        saved, info = snapshot
        leaves, treedef = jax.tree.flatten(state)
        state = jax.tree.unflatten(treedef, [saved["es"][f"{i:05d}"] for i in range(len(leaves))])
        run.best_x, norm, run.best_norm = saved["best_x"], saved.get("norm"), saved.get("best_norm")
        run.best_std = saved.get("best_std")  # None from a snapshot that predates it: unknown, not guessed
        run.record.resume(saved["stats"], info, on_progress)
    return state, norm, run


@dataclass(frozen=True)
class Member:
    """One run of :func:`train_many`: its ticket (``init``, ``mask``), key and snapshot store."""

    init: Params
    mask: Params
    key: jax.Array
    store: SnapshotStore | None = None


def snapshot_generation(store: SnapshotStore | None) -> int:
    """The generation a run resumes from (0: none); runs trained together must agree on it."""
    snapshot = store.latest() if store is not None else None
    return 0 if snapshot is None else int(snapshot[1]["generation"])


def train_many(
    task: Task,
    spec: ESSpec,
    members: list[Member],
    on_progress: Callable[[Progress], None] | None = None,
    save_every: int = 100,
    stop: Callable[[], int] | None = None,
) -> list[TrainResult | RunFailed]:
    """Train several tickets of one task and settings as one program with a leading run axis.

    Each run gets what :func:`train` would give it alone (its keys, ES state, normaliser, best
    mean, history and snapshots) up to float rounding: the runs only share the compiled code and
    the task's arrays. The tickets must have the same shapes and number of surviving weights and
    their snapshots the same generation (:func:`snapshot_generation`). A run whose fitness or test
    metric turns non-finite gets its :class:`RunFailed` in the result list; the others go on. One
    device only (``vmap`` over the runs; the population is not split).
    """
    check(task, spec)
    views = [SparseView.of(m.mask) for m in members]
    view = views[0]
    if any(v != view for v in views):
        raise BadInput("runs trained together need the same shapes and number of surviving weights")
    es, es_params, chunk, evaluate, _ = _programs(task, dataclasses.replace(spec, generations=0), view, 1, True)
    search_std = strategies.get_strategy(spec.strategy).search_std
    keys = [split_key(m.key) for m in members]
    started = [
        _start(es, es_params, spec, task, k_init, v.encode(m.init), m.store, on_progress if i == 0 else None)
        for i, (m, v, (k_init, _, _)) in enumerate(zip(members, views, keys))
    ]
    runs = [r for _, _, r in started]
    if len({r.record.done for r in runs}) > 1:
        raise BadInput("runs trained together must resume from the same generation")
    state = jax.tree.map(lambda *a: jnp.stack(a), *(s for s, _, _ in started))
    norm = None if started[0][1] is None else jax.tree.map(lambda *a: jnp.stack(a), *(n for _, n, _ in started))
    idx = jnp.stack([jnp.asarray(v.idx) for v in views])
    k_eval = jnp.stack([k for _, _, k in keys])

    def one(tree: Any, i: int) -> Any:
        return None if tree is None else jax.tree.map(lambda a: a[i], tree)

    done = runs[0].record.done
    while done < spec.generations:
        n = min(spec.eval_every, spec.generations - done)
        chunk_keys = jnp.stack([jax.random.split(jax.random.fold_in(k_train, done), n) for _, k_train, _ in keys])
        start = time.perf_counter()
        (state, norm), stats = chunk((state, norm), idx, chunk_keys, task.arrays)
        metrics = {k: np.asarray(v) for k, v in evaluate(state.mean, idx, k_eval, task.arrays, norm).items()}
        stats = np.asarray(stats)
        elapsed = time.perf_counter() - start
        done += n
        for i, run in enumerate(runs):
            if run.failed is not None:
                continue  # its row still runs (rows never mix); nothing of it is recorded
            try:
                if run.record.add(n, stats[i], {k: float(v[i]) for k, v in metrics.items()}, FAILURE):
                    run.improved(one(state, i), one(norm, i), search_std)
            except RunFailed as exc:
                run.failed = exc
        live = [i for i, r in enumerate(runs) if r.failed is None]
        if on_progress is not None and live:
            current = [float(metrics["metric"][i]) for i in live]
            best = max(runs[i].record.best["metric"] for i in live)
            fitness = float(np.mean([stats[i][-1, 0] for i in live]))
            on_progress(Progress(done, int(spec.generations), fitness, max(current), n / elapsed, best,
                                 runs=len(live), worst=min(current)))  # fmt: skip
        signum = stop() if stop is not None else 0
        for i in live:
            run, store = runs[i], members[i].store
            if run.record.due(store is not None, signum, save_every):
                assert store is not None
                store.save(run.record.done, run.snapshot(one(state, i), one(norm, i)), run.record.info())
                run.record.last_save = run.record.done
        if signum:
            raise Interrupted(f"stopped by signal {signum} at generation {done}/{spec.generations}"
                              + ("; re-run the same command to resume" if members[0].store is not None else ""),
                              signum)  # fmt: skip
        if not live:
            break
    return [
        r.failed if r.failed is not None else r.result(v, one(state, i), one(norm, i), search_std)
        for i, (r, v) in enumerate(zip(runs, views))
    ]
