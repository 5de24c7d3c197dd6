"""Ticket transfer to another task or strategy, then training it, in-process."""

from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import TINY_CONTROL, run_cli

from eslt_cli import checkpoint, paths
from eslt_cli.task_registry import ALIASES, canonical_task, get_entry


@pytest.fixture(scope="module")
def snr_ticket(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("transfer")
    code, dense, err = run_cli("train", "--task", "pendulum", "--strategy", "snes", "--seed", "0",
                               "--out", str(root / "L00-trained"), *TINY_CONTROL)  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli("prune", "--snr", dense.strip())
    assert code == 0, err
    return out.strip()


def test_pendulum_heavy_is_registered_and_aliases_stay() -> None:
    assert get_entry("pendulum_heavy").env_params == {"m": 1.5}
    assert canonical_task("Pendulum-v1") == "pendulum" and ALIASES["pendulum-v1"] == "pendulum"


def test_task_transfer_then_train(cli, snr_ticket: str) -> None:
    code, out, err = cli("transfer", "--task", "pendulum_heavy", snr_ticket)
    assert code == 0, err
    path = Path(out.strip())
    assert path.name == "L01-snr-to-pendulum_heavy"
    new, old = checkpoint.load(path), checkpoint.load(snr_ticket)
    assert new.kind == "ticket" and new.meta["task"]["name"] == "pendulum_heavy"
    assert new.meta["arm"] == "snr+to-pendulum_heavy" and new.meta["level"] == 1
    assert new.meta["transfer"] == {"from_task": "pendulum", "to_task": "pendulum_heavy", "env_params": {"m": 1.5}}
    assert new.meta["trainer"] == old.meta["trainer"]
    assert paths.follow(new.path, new.meta["parent"]) == Path(snr_ticket).absolute()
    for a, b in zip(jax.tree.leaves(new.state), jax.tree.leaves(old.state)):
        np.testing.assert_array_equal(a, b)
    code, again, err = cli("transfer", "--task", "pendulum_heavy", snr_ticket)
    assert code == 0 and again == out and "up to date" in err
    code, trained, err = cli("train", str(path), "--generations", "2", "--eval-every", "2")
    assert code == 0, err
    t = checkpoint.load(trained.strip())
    assert t.meta["task"]["name"] == "pendulum_heavy" and t.meta["arm"] == "snr+to-pendulum_heavy"
    assert paths.follow(t.path, t.meta["lineage"][-1]) == Path(path).absolute()


def test_strategy_transfer(cli, snr_ticket: str) -> None:
    code, out, err = cli("transfer", "--strategy", "pgpe", "--json", stdin=snr_ticket + "\n")
    assert code == 0, err
    import json

    record = json.loads(out)
    new = checkpoint.load(record["path"])
    assert record["arm"] == "snr+to-pgpe" and new.meta["trainer"]["strategy"] == "pgpe"
    assert new.meta["transfer"] == {"from_strategy": "snes", "to_strategy": "pgpe"}
    assert new.meta["task"] == checkpoint.read_meta(snr_ticket)["task"]
    code, trained, err = cli("train", record["path"], "--generations", "2", "--eval-every", "2")
    assert code == 0, err
    assert checkpoint.read_meta(trained.strip())["trainer"]["strategy"] == "pgpe"


def test_bad_transfers(cli, snr_ticket: str) -> None:
    code, _, err = cli("transfer", "--task", "cartpole", snr_ticket)
    assert code == 2 and "parameter shapes" in err and "(3, 32)" in err
    assert cli("transfer", snr_ticket)[0] == 2
    assert cli("transfer", "--task", "pendulum_heavy", "--strategy", "pgpe", snr_ticket)[0] == 2
    code, _, err = cli("transfer", "--task", "fashion_mnist", snr_ticket)
    assert code == 2 and "networks differ" in err
    code, _, err = cli("transfer", "--strategy", "snes", snr_ticket)
    assert code == 2 and "already" in err
