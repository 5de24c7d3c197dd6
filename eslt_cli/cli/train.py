"""``eslt train``: train a fresh dense network (level 0) or a ticket with an ES."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from eslt_cli import paths
from eslt_cli.cli import common
from eslt_cli.errors import BadInput, RunFailed
from eslt_cli.presets import CPU, PAPER


def _describe(family: str) -> str:
    es = CPU[family]["es"]
    return (f"{es['strategy'].upper()}, population {es['population']}, {es['generations']} generations, "
            f"std {es['std_init']}")  # fmt: skip


def _paper(family: str) -> str:
    es = PAPER[family]["es"]
    return f"population {es['population']}, {es['generations']} generations, mean decay {es['mean_decay']:g}"


HELP = f"""Train with an evolution strategy (or a gradient baseline) and print the checkpoint path on stdout.

Without an input checkpoint (no argument, nothing piped) a fresh dense network
is drawn from --seed (level 0). With a ticket (argument or stdin) the ES mean
starts at the ticket's masked init and searches only its surviving weights,
with the settings recorded in the ticket unless an option overrides them.

--trainer adam (vision: cross-entropy, Adam lr 3e-4, batch 128; --epochs) and
--trainer ppo (control: masked PPO; --timesteps) train the same masked
network by gradient descent: the paper's GD baselines. Pruned weights stay at
exactly zero; the checkpoint has no search std, so prune it with --magnitude.

CPU defaults (train within a minute or two on 2 cores): vision tasks
{_describe("vision")}, batch {CPU["vision"]["task"]["batch_size"]}; control tasks {_describe("control")},
{CPU["control"]["task"]["train_episodes"]} train / {CPU["control"]["task"]["test_episodes"]} test episodes.

A run interrupted by SIGINT/SIGTERM saves its progress (exit 130/143); after
those, or a crash or SIGKILL, re-running the same command resumes from the last
snapshot (every --save-every generations) with bit-identical results.

--devices splits the population over local devices; --coordinator,
--num-processes and --process-id join several hosts (jax.distributed), with the
population split over all their devices and process 0 writing the checkpoint
(the output folder must be on a filesystem all processes see).
--preset paper: the paper's code's settings (README, "Settings"), for GPU
hosts: vision {_paper("vision")}, batch 1024; Pendulum {_paper("control")};
brax {_paper("brax")}, 500-step episodes; per strategy and task the tuned
std, temperature, elite ratio and PGPE schedules; the strategy of the task's
curves in the paper's figures unless --strategy. --dry-run prints every
settled setting as one JSON line and exits without training, after the checks
a run makes before it writes anything: options, --devices, --data-dir, --root
and a lower bound of the memory the run needs (settings whose bound exceeds the
host's memory are refused); only the run itself loads the data or environment.

Example:

\b
  eslt train --task fashion_mnist --strategy snes --seed 0 | eslt prune --snr | eslt train
"""

Int = Optional[int]
Float = Optional[float]


def _hidden(value: Optional[str]) -> Optional[tuple[int, ...]]:
    if value is None:
        return None
    try:
        units = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter("give comma-separated layer widths, e.g. 32,32") from None
    if not units or min(units) < 1:
        raise typer.BadParameter("layer widths must be positive, e.g. 32,32")
    return units


ES, GRAD, TASK, RUN = "Evolution strategy (--trainer es)", "Gradient trainers (adam, ppo)", "Task", "Run"


def train(
    checkpoint: Annotated[
        Optional[list[str]],
        typer.Argument(help="Tickets to train (batched where they can share a program); '-' or absent: read stdin."),
    ] = None,
    task: Annotated[
        Optional[str], typer.Option(help="Task for a fresh run (default fashion_mnist).", rich_help_panel=TASK)
    ] = None,
    trainer: Annotated[Optional[str], typer.Option(help="es (default), adam (vision) or ppo (control).")] = None,
    strategy: Annotated[
        Optional[str], typer.Option(help="pgpe, snes, sep_cma_es, des, open_es, ars.", rich_help_panel=ES)
    ] = None,
    generations: Annotated[Int, typer.Option(help="ES generations.", rich_help_panel=ES)] = None,
    population: Annotated[Int, typer.Option(help="ES population size.", rich_help_panel=ES)] = None,
    seed: Annotated[Int, typer.Option(help="Seed of the init and the search (default 0 / the ticket's).")] = None,
    seeds: Annotated[
        Optional[str], typer.Option(help="Fresh runs of several seeds, batched: a range 0-4 or a list 0,3,7.")
    ] = None,
    eval_every: Annotated[
        Int, typer.Option(help="Generations (es), epochs (adam) or updates (ppo) between test evaluations.")
    ] = None,
    std_init: Annotated[Float, typer.Option(help="Initial search std.", rich_help_panel=ES)] = None,
    lr: Annotated[
        Float, typer.Option(help="Learning rate: of the ES optimiser (mean update), or Adam's (adam, ppo).")
    ] = None,
    optimizer: Annotated[
        Optional[str], typer.Option(help="ES optimiser: adam, sgd, clipup.", rich_help_panel=ES)
    ] = None,
    elite_ratio: Annotated[Float, typer.Option(help="Elite ratio (sep_cma_es, ars).", rich_help_panel=ES)] = None,
    mean_decay: Annotated[
        Float, typer.Option(help="The mean shrinks by the factor 1 - c after every update.", rich_help_panel=ES)
    ] = None,
    temperature: Annotated[
        Float, typer.Option(help="snes, des: temperature of the softmax fitness weights.", rich_help_panel=ES)
    ] = None,
    lr_decay: Annotated[
        Float, typer.Option(help="ES optimiser lr times this per generation.", rich_help_panel=ES)
    ] = None,
    lr_floor: Annotated[Float, typer.Option(help="Lower bound of the decayed ES lr.", rich_help_panel=ES)] = None,
    std_decay: Annotated[
        Float, typer.Option(help="pgpe: search std times this per generation.", rich_help_panel=ES)
    ] = None,
    std_floor: Annotated[Float, typer.Option(help="pgpe: lower bound of the decayed std.", rich_help_panel=ES)] = None,
    std_lr: Annotated[
        Float, typer.Option(help="pgpe: learning rate of the std adaptation.", rich_help_panel=ES)
    ] = None,
    adam_b1: Annotated[
        Float, typer.Option(help="First-moment decay of the ES Adam optimiser.", rich_help_panel=ES)
    ] = None,
    constants: Annotated[
        Optional[str],
        typer.Option(
            help="sep_cma_es: evosax (0.3) or paper (evosax 0.1.4 weights and rates); pgpe: evosax or paper "
            "(0.1.4's std step, a random walk from an index bug).",
            rich_help_panel=ES,
        ),
    ] = None,
    snr_std: Annotated[
        Optional[str],
        typer.Option(
            help="What --snr will divide |mean| by: text (the search std) or code (the paper's code: "
            "sep_cma_es's variance C) [text; paper preset, sep_cma_es: code].",
            rich_help_panel=ES,
        ),
    ] = None,
    epochs: Annotated[Int, typer.Option(help="adam: passes over the training set.", rich_help_panel=GRAD)] = None,
    timesteps: Annotated[Int, typer.Option(help="ppo: environment steps in all.", rich_help_panel=GRAD)] = None,
    num_envs: Annotated[Int, typer.Option(help="ppo: parallel environments.", rich_help_panel=GRAD)] = None,
    rollout_steps: Annotated[
        Int, typer.Option(help="ppo: steps per environment per update.", rich_help_panel=GRAD)
    ] = None,
    update_epochs: Annotated[Int, typer.Option(help="ppo: epochs over each rollout.", rich_help_panel=GRAD)] = None,
    minibatches: Annotated[Int, typer.Option(help="ppo: minibatches per epoch.", rich_help_panel=GRAD)] = None,
    gamma: Annotated[Float, typer.Option(help="ppo: discount.", rich_help_panel=GRAD)] = None,
    gae_lambda: Annotated[Float, typer.Option(help="ppo: GAE lambda.", rich_help_panel=GRAD)] = None,
    clip_eps: Annotated[Float, typer.Option(help="ppo: probability-ratio clip.", rich_help_panel=GRAD)] = None,
    ent_coef: Annotated[Float, typer.Option(help="ppo: entropy bonus.", rich_help_panel=GRAD)] = None,
    vf_coef: Annotated[Float, typer.Option(help="ppo: value-loss weight.", rich_help_panel=GRAD)] = None,
    max_grad_norm: Annotated[Float, typer.Option(help="ppo: gradient clipping norm.", rich_help_panel=GRAD)] = None,
    lr_end: Annotated[
        Float, typer.Option(help="ppo: the lr goes linearly from --lr to this [constant].", rich_help_panel=GRAD)
    ] = None,
    lr_steps: Annotated[
        Int, typer.Option(help="ppo: ... over this many optimiser steps [all of the run's].", rich_help_panel=GRAD)
    ] = None,
    batch_size: Annotated[
        Int, typer.Option(help="Vision: training images per generation (es) or step (adam).", rich_help_panel=TASK)
    ] = None,
    train_episodes: Annotated[
        Int, typer.Option(help="Control: episodes per fitness evaluation.", rich_help_panel=TASK)
    ] = None,
    test_episodes: Annotated[
        Int, typer.Option(help="Control: episodes per test evaluation.", rich_help_panel=TASK)
    ] = None,
    hidden: Annotated[
        Optional[str], typer.Option(help="Control: MLP hidden widths, e.g. 32,32.", rich_help_panel=TASK)
    ] = None,
    obs_norm: Annotated[
        Optional[bool],
        typer.Option(
            "--obs-norm/--no-obs-norm",
            help="Control: running observation normalisation [on for brax].",
            rich_help_panel=TASK,
        ),
    ] = None,
    backend: Annotated[
        Optional[str],
        typer.Option(help="Brax: physics pipeline (generalized, positional, spring, mjx).", rich_help_panel=TASK),
    ] = None,
    episode_length: Annotated[Int, typer.Option(help="Brax: steps per episode.", rich_help_panel=TASK)] = None,
    data_dir: Annotated[
        Optional[Path],
        typer.Option(help="Vision: folder with the four IDX files, or a tfds data dir.", rich_help_panel=TASK),
    ] = None,
    preset: Annotated[Optional[str], typer.Option(help="cpu (default) or paper (appendix C).")] = None,
    out: Annotated[
        Optional[Path], typer.Option(help="Output checkpoint folder (default: derived).", rich_help_panel=RUN)
    ] = None,
    root: Annotated[
        Optional[Path], typer.Option(help="Root of derived outputs [$ESLT_HOME or ./eslt-runs].", rich_help_panel=RUN)
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON line (path, metrics) instead of the path.", rich_help_panel=RUN)
    ] = False,
    devices: Annotated[
        Int, typer.Option(help="Devices to split the population over [all].", rich_help_panel=RUN)
    ] = None,
    coordinator: Annotated[
        Optional[str], typer.Option(help="Multi-host: HOST:PORT of process 0.", rich_help_panel=RUN)
    ] = None,
    num_processes: Annotated[Int, typer.Option(help="Multi-host: number of processes.", rich_help_panel=RUN)] = None,
    process_id: Annotated[Int, typer.Option(help="Multi-host: this process's index.", rich_help_panel=RUN)] = None,
    save_every: Annotated[
        int, typer.Option(help="Generations/epochs/updates between resume snapshots.", rich_help_panel=RUN)
    ] = 100,
    max_batch: Annotated[
        Int, typer.Option(help="Most runs trained as one program [as many as memory allows].", rich_help_panel=RUN)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output.", rich_help_panel=RUN)] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the settled settings as one JSON line; train nothing.", rich_help_panel=RUN
        ),
    ] = False,
) -> None:
    common.setup_runtime()
    common.init_distributed(coordinator, num_processes, process_id)
    from eslt_cli import batch, pipeline, plans
    from eslt_cli import checkpoint as ckpt

    # Nothing piped on a terminal, or an empty pipe with an explicit --task or --seeds: fresh runs.
    fresh = task is not None or seeds is not None
    sources = common.read_inputs(checkpoint or [], none_on_terminal=True, none_on_empty=fresh)
    seed_list = _seeds(seeds, seed)
    if seed_list is not None and sources:
        raise BadInput("--seeds draws fresh networks; a ticket trains with its own seed (--seed overrides it)")
    if out is not None and max(len(sources), len(seed_list or [])) > 1:
        raise BadInput("--out names one output: leave it out to train several runs (each goes beside its input)")
    overrides = {
        "task": task, "strategy": strategy, "generations": generations, "population": population, "seed": seed,
        "eval_every": eval_every, "std_init": std_init, "lr": lr, "optimizer": optimizer,
        "elite_ratio": elite_ratio, "mean_decay": mean_decay, "batch_size": batch_size,
        "train_episodes": train_episodes, "test_episodes": test_episodes, "hidden": _hidden(hidden),
        "trainer": trainer, "epochs": epochs, "timesteps": timesteps, "num_envs": num_envs,
        "rollout_steps": rollout_steps, "update_epochs": update_epochs, "minibatches": minibatches, "gamma": gamma,
        "gae_lambda": gae_lambda, "clip_eps": clip_eps, "ent_coef": ent_coef, "vf_coef": vf_coef,
        "max_grad_norm": max_grad_norm, "obs_norm": obs_norm, "backend": backend, "episode_length": episode_length,
        "data_dir": str(data_dir) if data_dir is not None else None, "temperature": temperature,
        "lr_decay": lr_decay, "lr_floor": lr_floor, "std_decay": std_decay, "std_floor": std_floor, "std_lr": std_lr,
        "adam_b1": adam_b1, "constants": constants, "snr_std": snr_std, "lr_end": lr_end, "lr_steps": lr_steps,
    }  # fmt: skip
    if out is None:  # derived under the root: a root that cannot hold run folders is refused by its name
        common.check_root(root)
    where = root or common.default_root()
    if sources:
        todo = [plans.plan_train(ckpt.load(source), overrides, preset, out, where) for source in sources]
    else:
        runs: list[Optional[int]] = list(seed_list) if seed_list else [seed]
        todo = [plans.plan_train(None, overrides | {"seed": s}, preset, out, where) for s in runs]
    if dry_run:  # nothing written, no lock taken: the settings a run would use, checked as the run checks them
        for plan in todo:
            paths.check_out(plan.out, [] if plan.parent is None else [plan.parent.path])
            pipeline.check_train(plan, save_every, devices)
        for plan in todo:
            common.data_line(json.dumps(plans.settings_record(plan, preset)))
        return
    with common.StopOnSignal() as stop:
        outcomes = batch.run_train_many(todo, force, _reporter, save_every, stop, devices, max_batch)
    if not ckpt.is_writer():
        return  # process 0 of a multi-host run reports and prints the paths
    failed = 0
    for plan, outcome in zip(todo, outcomes):
        if outcome.error is not None:
            if len(todo) == 1:
                raise outcome.error
            failed += 1
            common.failed_line(f"{plan.out}: {outcome.error}")
            continue
        meta = ckpt.read_meta(outcome.path)
        final, best = meta["metrics"]["final"], meta["metrics"]["best"]
        unit = plans.schedule(plan.trainer)[1]
        done = (
            f"{_label(plan)} ({1 - meta['sparsity']['global']:.1%} of weights): test {meta['metric']} "
            f"{final['metric']:.4g} (best {best['metric']:.4g} at {unit} {best['generation']}) "
            f"in {meta['run']['seconds']:.0f} s"
        )
        summary = {k: meta[k] for k in ("task", "trainer", "seed", "level", "arm", "metric", "metrics")}
        common.finish(outcome.path, outcome.made, done, as_json, {**summary, "sparsity": meta["sparsity"]["global"]})
    if failed:
        raise RunFailed(f"{failed} of {len(todo)} runs failed (above); the others' checkpoints are written")


def _seeds(text: Optional[str], seed: Optional[int]) -> Optional[list[int]]:
    """``--seeds``: a range ``0-4`` or a list ``0,3,7`` (None when not given)."""
    if text is None:
        return None
    if seed is not None:
        raise BadInput("give --seed or --seeds, not both")
    try:
        if "-" in text.strip("-"):
            low, high = (int(v) for v in text.split("-"))
            values = list(range(low, high + 1))
        else:
            values = [int(v) for v in text.split(",")]
    except ValueError:
        raise BadInput(f"--seeds {text!r}: give a range such as 0-4 or a list such as 0,3,7") from None
    if not values or len(set(values)) < len(values):
        raise BadInput(f"--seeds {text!r}: give a non-empty range or a list without repeats")
    return values


def _label(plan: Any) -> str:
    return f"{plan.task.name} {getattr(plan.trainer, 'strategy', plan.trainer.name)} L{plan.level:02d}"


@contextlib.contextmanager
def _reporter(group: Any) -> Iterator[common.Reporter]:
    """The progress bar of a group of runs trained together (one run: its own)."""
    from eslt_cli import plans

    first = group[0]
    label = _label(first) + (f" x{len(group)}" if len(group) > 1 else "")
    total, unit = plans.schedule(first.trainer)
    with common.Reporter(label, total, "accuracy" if first.model.kind == "cnn" else "return", unit) as reporter:
        yield reporter


train.__doc__ = HELP
