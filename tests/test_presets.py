"""``--preset paper`` is the paper's code, row by row: `eslt train --dry-run` against the data of the README table."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from eslt_cli import presets
from eslt_cli.cli import common

CASES = [(task, strategy) for task in presets.TABLE_TASKS for strategy in presets.PAPER_STRATEGIES]


def dry_run(*args: str) -> dict:
    code, out, err = run_cli("train", "--dry-run", *args)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("task, strategy", CASES, ids=[f"{t}-{s}" for t, s in CASES])
def test_dry_run_prints_the_table_rows(task: str, strategy: str) -> None:
    family = presets.TABLE_TASKS[task]
    got = dry_run("--preset", "paper", "--task", task, "--strategy", strategy)
    want = presets.PAPER[family]
    for section, values in (("task", want["task"]), ("model", want["model"]), ("trainer", want["es"])):
        for k, v in values.items():
            assert got[section][k] == (list(v) if isinstance(v, tuple) else v), (section, k)
    for k, v in presets.strategy_settings(strategy, task, family).items():
        assert got["trainer"][k] == v, k
    assert got["trainer"]["strategy"] == strategy


def test_the_readme_table_is_generated_from_the_same_data() -> None:
    readme = (common.Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert presets.readme_table() in readme


# A few rows written out by hand from the paper's code (src/es/tuned_hparams, configs/train), so a
# wrong entry in the data cannot pass by comparing the data with itself.
@pytest.mark.parametrize(
    "task, strategy, expected",
    [
        ("hopper", "snes", {"temperature": 48.0, "std_init": 0.075, "population": 256, "mean_decay": 1e-5}),
        ("fashion_mnist", "snes", {"temperature": 12.0, "std_init": 0.025, "population": 128, "mean_decay": 1e-4}),
        ("ant", "sep_cma_es", {"elite_ratio": 0.4, "std_init": 0.05, "constants": "paper", "optimizer": None}),
        ("walker2d", "pgpe", {"lr": 0.03, "std_init": 0.1, "lr_decay": 0.999, "lr_floor": 0.001, "adam_b1": 0.99,
                              "std_decay": 0.999, "std_floor": 0.01, "optimizer": "adam"}),
        ("pendulum", "pgpe", {"lr": 0.15, "std_init": 0.1, "lr_decay": 1.0, "population": 100, "generations": 2000}),
        ("mnist", "des", {"std_init": 0.1, "temperature": 12.5, "generations": 4000}),
    ],
)  # fmt: skip
def test_rows_by_hand(task: str, strategy: str, expected: dict) -> None:
    got = dry_run("--preset", "paper", "--task", task, "--strategy", strategy)["trainer"]
    assert {k: got[k] for k in expected} == expected


def test_dry_run_writes_nothing_and_checks_like_a_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    got = dry_run("--task", "pendulum")
    assert got["trainer"]["population"] == presets.CPU["control"]["es"]["population"]
    assert list(tmp_path.iterdir()) == [] and got["exists"] is False
    code, out, err = run_cli("train", "--dry-run", "--task", "pendulum", "--population", "0")
    assert (code, out) == (2, "") and "--population must be" in err
    code, out, err = run_cli("train", "--dry-run", "--task", "pendulum", "--epochs", "3")
    assert (code, out) == (2, "") and "does not apply" in err


def test_paper_preset_picks_the_figures_strategy() -> None:
    assert dry_run("--preset", "paper", "--task", "ant")["trainer"]["strategy"] == "sep_cma_es"
    assert dry_run("--preset", "paper", "--task", "kmnist")["trainer"]["strategy"] == "pgpe"
    assert dry_run("--task", "ant")["trainer"]["strategy"] == "snes"  # the CPU default
