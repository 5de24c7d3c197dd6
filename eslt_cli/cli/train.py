"""``eslt train``: train a fresh dense network (level 0) or a ticket with an ES."""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from eslt_cli import paths, settings
from eslt_cli.cli import common
from eslt_cli.errors import BadInput, RunFailed
from eslt_cli.presets import CPU, PAPER
from eslt_cli.settings import RUN, TASK


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


def train(
    checkpoint: Annotated[
        Optional[list[str]],
        typer.Argument(help="Tickets to train (batched where they can share a program); '-' or absent: read stdin."),
    ] = None,
    task: Annotated[
        Optional[str], typer.Option(help="Task for a fresh run (default fashion_mnist).", rich_help_panel=TASK)
    ] = None,
    trainer: Annotated[Optional[str], typer.Option(help="es (default), adam (vision) or ppo (control).")] = None,
    seed: Annotated[Int, typer.Option(help="Seed of the init and the search (default 0 / the ticket's).")] = None,
    seeds: Annotated[
        Optional[str], typer.Option(help="Fresh runs of several seeds, batched: a range 0-4 or a list 0,3,7.")
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
    **values: Any,  # the settings' options, declared in eslt_cli/settings.py (see _with_setting_options)
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
    overrides = {name: values[name] for name in OPTIONS} | {"task": task, "seed": seed, "trainer": trainer}
    data_dir = values["data_dir"]
    overrides |= {"hidden": _hidden(values["hidden"]), "data_dir": None if data_dir is None else str(Path(data_dir))}
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
        meta = ckpt.read_record(outcome.path)
        best = meta.metrics["best"]
        done = (
            f"{_label(plan)} ({1 - meta.sparsity.pruned:.1%} of weights): test {meta.metric} "
            f"{meta.test_metric('final'):.4g} (best {meta.test_metric('best'):.4g} at {plan.trainer.unit} "
            f"{best['generation']}) in {(meta.run or {}).get('seconds', 0):.0f} s"
        )
        summary = {k: meta.raw[k] for k in ("task", "trainer", "seed", "level", "arm", "metric", "metrics")}
        common.finish(outcome.path, outcome.made, done, as_json, {**summary, "sparsity": meta.sparsity.pruned})
    if failed:
        raise RunFailed(f"{failed} of {len(todo)} runs failed (above); the others' checkpoints are written")


# The settings' options: one per setting declared as an option in eslt_cli/settings.py, with its
# help and panel from there (a tuple setting is given as comma-separated widths, --hidden 32,32).
OPTIONS = settings.options()


def _setting_option(s: settings.Setting) -> inspect.Parameter:
    kind = {int: Int, float: Float, bool: Optional[bool]}.get(s.type, Optional[str])
    names = (f"{s.option_name}/--no-{s.option_name[2:]}",) if s.type is bool else ()
    option = typer.Option(*names, help=s.help, rich_help_panel=s.panel, metavar=s.metavar)
    return inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind, option])


# Typer reads a command's options from its signature (and passes them by name): train's own
# parameters, the settings' after --preset (before the run options).
_own = [
    p.replace(kind=p.KEYWORD_ONLY)
    for p in inspect.signature(train, eval_str=True).parameters.values()
    if p.kind is not p.VAR_KEYWORD
]
_at = [p.name for p in _own].index("out")
train.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [*_own[:_at], *(_setting_option(settings.SETTINGS[name]) for name in OPTIONS), *_own[_at:]]
)


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

    first = group[0]
    label = _label(first) + (f" x{len(group)}" if len(group) > 1 else "")
    total, unit = first.trainer.steps(), first.trainer.unit
    with common.Reporter(label, total, "accuracy" if first.model.kind == "cnn" else "return", unit) as reporter:
        yield reporter


train.__doc__ = HELP
