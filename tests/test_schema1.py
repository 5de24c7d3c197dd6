"""Checkpoints written by schema-1 eslt (tests/fixtures/schema1, made once by that code) still work.

They load, are shown, prune and train; the arrays a training or pruning makes from
them are the ones schema-1 eslt made (expected.json, recorded with that code).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import needs_fashion, run_cli

from eslt_cli import checkpoint
from eslt_cli.specs import AdamSpec, ControlSpec, ESSpec, MLPSpec, model_from_json, task_from_json, trainer_from_json

FIXTURES = Path(__file__).parent / "fixtures" / "schema1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def digest(tree) -> str:
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()[:32]


@pytest.fixture
def fixtures(tmp_path: Path) -> Path:
    """A writable copy, with the parent links of the tickets pointing into it."""
    root = tmp_path / "schema1"
    shutil.copytree(FIXTURES, root)
    for meta_file in root.glob("*/meta/metadata"):
        text = meta_file.read_text().replace("/work/main/tests/fixtures/schema1", str(root))
        meta_file.write_text(text)
    return root


def test_schema1_meta_converts_to_typed_settings() -> None:
    meta = checkpoint.read_meta(FIXTURES / "pendulum-L01-snr")
    assert meta["schema"] == 1
    assert task_from_json(meta["task"]) == ControlSpec("pendulum", train_episodes=2, test_episodes=2)
    assert model_from_json(meta["model"]) == MLPSpec(hidden=(32, 32))
    assert trainer_from_json(meta["trainer"]) == ESSpec("snes", 8, 4, 0.3, 1.0, "sgd", None, 0.0, 2)
    adam = checkpoint.read_meta(FIXTURES / "fashion-adam-L00-trained")
    assert isinstance(trainer_from_json(adam["trainer"]), AdamSpec)


def test_schema1_checkpoints_are_shown() -> None:
    code, out, err = run_cli("show", str(FIXTURES))
    assert code == 0, err
    assert len(out.split()) == 4 and "pendulum" in err and "sep" not in err


def test_a_schema1_ticket_trains_exactly_as_before(fixtures: Path) -> None:
    code, out, err = run_cli("-q", "train", str(fixtures / "pendulum-L01-snr"))
    assert code == 0, err
    trained = checkpoint.load(out.strip())
    want = EXPECTED["pendulum-L01-snr-trained"]
    assert {k: digest(trained.state[k]) for k in ("mean", "best", "std")} == {
        k: want[k] for k in ("mean", "best", "std")
    }
    assert trained.meta["metrics"]["final"] == want["final"] and trained.meta["schema"] == 2


@needs_fashion
def test_a_schema1_adam_checkpoint_prunes_exactly_as_before(fixtures: Path) -> None:
    code, out, err = run_cli("-q", "prune", "--magnitude", str(fixtures / "fashion-adam-L00-trained"))
    assert code == 0, err
    assert digest(checkpoint.load(out.strip()).state["mask"]) == EXPECTED["fashion-adam-L01-magnitude"]["mask"]


def test_rerun_over_a_schema1_output_says_why_it_refuses(fixtures: Path) -> None:
    code, out, err = run_cli("-q", "prune", "--snr", str(fixtures / "pendulum-L00-trained"),
                             "--out", str(fixtures / "pendulum-L01-snr"))  # fmt: skip
    assert (code, out) == (2, "") and "older eslt" in err, err
