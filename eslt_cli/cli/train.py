"""``eslt train``: train a fresh dense network (level 0) or a ticket with an ES."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from eslt_cli.cli import common
from eslt_cli.presets import CONTROL_CPU, VISION_CPU


def _describe(preset: dict) -> str:
    return (f"{preset['strategy'].upper()}, population {preset['population']}, "
            f"{preset['generations']} generations, std {preset['std_init']}")  # fmt: skip


HELP = f"""Train with an evolution strategy and print the checkpoint path on stdout.

Without an input checkpoint (no argument, nothing piped) a fresh dense network
is drawn from --seed (level 0). With a ticket (argument or stdin) the ES mean
starts at the ticket's masked init and searches only its surviving weights,
with the settings recorded in the ticket unless an option overrides them.

CPU defaults (train within a minute or two on 2 cores): vision tasks
{_describe(VISION_CPU)}, batch 256; control tasks {_describe(CONTROL_CPU)},
8 train / 16 test episodes.

A run interrupted by SIGINT/SIGTERM saves its progress (exit 130/143); after
those, or a crash or SIGKILL, re-running the same command resumes from the last
snapshot (every --save-every generations) with bit-identical results.

--devices splits the population over local devices; --coordinator,
--num-processes and --process-id join several hosts (jax.distributed), with the
population split over all their devices and process 0 writing the checkpoint
(the output folder must be on a filesystem all processes see).
--preset paper: appendix C (vision: population 128, 4000 generations, batch
1024; control: population 256, 3000 generations, 164 test episodes; ES
optimiser Adam) for GPU hosts.

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


def train(
    checkpoint: Annotated[Optional[str], typer.Argument(help="Ticket to train; '-' or absent: read stdin.")] = None,
    task: Annotated[Optional[str], typer.Option(help="Task for a fresh run (default fashion_mnist).")] = None,
    strategy: Annotated[Optional[str], typer.Option(help="pgpe, snes, sep_cma_es, des, open_es, ars.")] = None,
    generations: Annotated[Int, typer.Option(help="ES generations.")] = None,
    population: Annotated[Int, typer.Option(help="ES population size.")] = None,
    seed: Annotated[Int, typer.Option(help="Seed of the init and the search (default 0 / the ticket's).")] = None,
    eval_every: Annotated[Int, typer.Option(help="Generations between test evaluations.")] = None,
    std_init: Annotated[Float, typer.Option(help="Initial search std.")] = None,
    lr: Annotated[Float, typer.Option(help="Learning rate of the ES optimiser (mean update).")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="ES optimiser: adam, sgd, clipup.")] = None,
    elite_ratio: Annotated[Float, typer.Option(help="Elite ratio (sep_cma_es, ars).")] = None,
    mean_decay: Annotated[Float, typer.Option(help="L2 decay of the search mean.")] = None,
    batch_size: Annotated[Int, typer.Option(help="Vision: training images per generation.")] = None,
    train_episodes: Annotated[Int, typer.Option(help="Control: episodes per fitness evaluation.")] = None,
    test_episodes: Annotated[Int, typer.Option(help="Control: episodes per test evaluation.")] = None,
    hidden: Annotated[Optional[str], typer.Option(help="Control: MLP hidden widths, e.g. 32,32.")] = None,
    data_dir: Annotated[
        Optional[Path], typer.Option(help="Vision: folder with the four IDX files, or a tfds data dir.")
    ] = None,
    preset: Annotated[Optional[str], typer.Option(help="cpu (default) or paper (appendix C).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output checkpoint folder (default: derived).")] = None,
    root: Annotated[Optional[Path], typer.Option(help="Root of derived outputs [$ESLT_HOME or ./eslt-runs].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON line (path, metrics) instead of the path.")] = False,
    devices: Annotated[Int, typer.Option(help="Devices to split the population over [all].")] = None,
    coordinator: Annotated[Optional[str], typer.Option(help="Multi-host: HOST:PORT of process 0.")] = None,
    num_processes: Annotated[Int, typer.Option(help="Multi-host: number of processes.")] = None,
    process_id: Annotated[Int, typer.Option(help="Multi-host: this process's index.")] = None,
    save_every: Annotated[int, typer.Option(help="Generations between resume snapshots.")] = 100,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output.")] = False,
) -> None:
    common.setup_runtime()
    common.init_distributed(coordinator, num_processes, process_id)
    from eslt_cli import checkpoint as ckpt
    from eslt_cli import pipeline

    # Nothing piped on a terminal, or an empty pipe with an explicit --task: a fresh run.
    source = common.read_input(checkpoint, none_on_terminal=True, none_on_empty=task is not None)
    parent = ckpt.load(source) if source is not None else None
    overrides = {
        "task": task, "strategy": strategy, "generations": generations, "population": population, "seed": seed,
        "eval_every": eval_every, "std_init": std_init, "lr": lr, "optimizer": optimizer,
        "elite_ratio": elite_ratio, "mean_decay": mean_decay, "batch_size": batch_size,
        "train_episodes": train_episodes, "test_episodes": test_episodes, "hidden": _hidden(hidden),
        "data_dir": str(data_dir) if data_dir is not None else None,
    }  # fmt: skip
    plan = pipeline.plan_train(parent, overrides, preset, out, root or common.default_root())
    label = f"{plan.task.name} {plan.trainer.strategy} L{plan.level:02d}"
    metric = "accuracy" if plan.model.kind == "cnn" else "return"
    with common.Reporter(label, plan.trainer.generations, metric) as reporter, common.StopOnSignal() as stop:
        path, made = pipeline.run_train(plan, force, reporter, save_every, stop, devices)
    if not ckpt.is_writer():
        return  # process 0 of a multi-host run reports and prints the path
    meta = ckpt.read_meta(path)
    final, best = meta["metrics"]["final"], meta["metrics"]["best"]
    done = (
        f"{label} ({1 - meta['sparsity']['global']:.1%} of weights): test {metric} {final['metric']:.4g} "
        f"(best {best['metric']:.4g} at gen {best['generation']}) in {meta['run']['seconds']:.0f} s"
    )
    summary = {k: meta[k] for k in ("task", "trainer", "seed", "level", "arm", "metric", "metrics")}
    common.finish(path, made, done, as_json, {**summary, "sparsity": meta["sparsity"]["global"]})


train.__doc__ = HELP
