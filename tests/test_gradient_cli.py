"""The gradient arms through the command line: adam-IMP, PPO-IMP and transfer to gradient trainers."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from conftest import TINY_CONTROL, fashion_subset, needs_fashion, run_cli

from eslt_cli import checkpoint

# One epoch of 64 steps over the first 8192 real Fashion-MNIST images (tested on 1024).
TINY_ADAM = ["--epochs", "1", "--batch-size", "128", "--eval-every", "1"]
TINY_PPO = ["--timesteps", "4096", "--num-envs", "4", "--rollout-steps", "64", "--eval-every", "8",
            "--test-episodes", "2"]  # fmt: skip


def _zero_where_pruned(path: str) -> None:
    ckpt = checkpoint.load(path)
    for which in ("mean", "best"):
        for w, m in zip(jax.tree.leaves(ckpt.state[which]), jax.tree.leaves(ckpt.state["mask"]), strict=True):
            assert np.all(np.asarray(w)[np.asarray(m) == 0] == 0)


@needs_fashion
def test_adam_imp_two_levels_on_fashion_mnist(cli, tmp_path) -> None:
    """GD-IMP is `train --trainer adam | prune --magnitude | train`."""
    data = ["--data-dir", str(fashion_subset(tmp_path / "data", 8192, 1024))]
    code, dense, err = cli(
        "train", "--task", "fashion_mnist", "--trainer", "adam", *TINY_ADAM, *data, "--out", str(tmp_path / "L00")
    )
    assert code == 0, err
    meta = checkpoint.read_meta(dense.strip())
    assert meta["trainer"]["name"] == "adam" and meta["trainer"]["lr"] == 3e-4
    assert meta["metrics"]["final"]["metric"] > 0.5  # chance is 0.1
    code, ticket, err = cli("prune", "--magnitude", stdin=dense)
    assert code == 0, err
    code, trained, err = cli("train", *data, stdin=ticket)
    assert code == 0, err
    meta = checkpoint.read_meta(trained.strip())
    assert meta["level"] == 1 and meta["trainer"]["name"] == "adam" and meta["task"]["batch_size"] == 128
    assert meta["metrics"]["final"]["metric"] > 0.5
    _zero_where_pruned(trained.strip())
    # No per-weight search std: --snr says what to do instead; nothing is written.
    code, out, err = cli("prune", "--snr", stdin=trained)
    assert code == 2 and "--magnitude" in err and out == ""


def test_ppo_imp_on_cartpole(cli, tmp_path) -> None:
    code, dense, err = cli("train", "--task", "cartpole", "--trainer", "ppo", *TINY_PPO, "--out", str(tmp_path / "a"))
    assert code == 0, err
    meta = checkpoint.read_meta(dense.strip())
    assert meta["trainer"]["name"] == "ppo" and meta["trainer"]["timesteps"] == 4096
    assert len(meta["history"]["eval"]["metric"]) == 2  # 16 updates, tested every 8
    code, ticket, err = cli("prune", "--magnitude", dense.strip())
    assert code == 0, err
    code, trained, err = cli("train", ticket.strip())
    assert code == 0, err
    _zero_where_pruned(trained.strip())


def test_transfer_es_ticket_to_ppo_then_train(cli, tmp_path) -> None:
    code, dense, err = cli("train", "--task", "cartpole", "--out", str(tmp_path / "es"), *TINY_CONTROL)
    assert code == 0, err
    code, ticket, err = cli("prune", "--snr", dense.strip())
    assert code == 0, err
    code, out, err = cli("transfer", "--trainer", "ppo", "--json", ticket.strip())
    assert code == 0, err
    record = json.loads(out)
    assert record["transfer"] == {"from_trainer": "es", "to_trainer": "ppo"} and record["arm"] == "snr+to-ppo"
    code, trained, err = cli("train", record["path"], *TINY_PPO)
    assert code == 0, err
    meta = checkpoint.read_meta(trained.strip())
    assert meta["trainer"]["name"] == "ppo" and meta["level"] == 1
    # Back to ES is a transfer too; to adam is refused for a control task.
    assert cli("transfer", "--trainer", "es", record["path"])[0] == 0
    code, _, err = cli("transfer", "--trainer", "adam", ticket.strip())
    assert code == 2 and "vision task" in err
    code, _, err = cli("transfer", "--trainer", "es", ticket.strip())
    assert code == 2 and "already" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "cartpole", "--trainer", "adam"], "needs a vision task"),
        (["--task", "fashion_mnist", "--trainer", "ppo"], "needs a control task"),
        (["--task", "cartpole", "--trainer", "ppo", "--strategy", "snes"], "--strategy does not apply"),
        (["--task", "cartpole", "--epochs", "2"], "--epochs does not apply to --trainer es"),
        (["--task", "cartpole", "--trainer", "ppo", "--gamma", "1.5"], "--gamma must be in [0, 1]"),
        (["--task", "cartpole", "--trainer", "ppo", "--timesteps", "0"], "--timesteps must be positive"),
        (["--task", "cartpole", "--trainer", "sgd"], "unknown trainer 'sgd'"),
    ],
)
def test_bad_trainer_options(tmp_path, args: list[str], message: str) -> None:
    code, out, err = run_cli("train", *args, "--out", str(tmp_path / "x"))
    assert code == 2 and message in err and out == "" and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
