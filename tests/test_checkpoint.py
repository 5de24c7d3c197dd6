"""The checkpoint contract: round trip, atomic writes, validation of what is read."""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CONV0, TICKET_META

from eslt_cli import checkpoint
from eslt_cli.errors import BadInput

README = Path(__file__).resolve().parents[1] / "README.md"


def state() -> dict:
    init = {
        "conv0": CONV0,
        "dense": {"kernel": np.arange(6, dtype=np.float32).reshape(3, 2), "bias": np.zeros(2, np.float32)},
    }
    mask = {
        "conv0": {k: np.ones(v.shape, np.uint8) for k, v in CONV0.items()},
        "dense": {"kernel": np.array([[1, 0], [1, 1], [0, 1]], np.uint8), "bias": np.ones(2, np.uint8)},
    }
    return {"init": init, "mask": mask}


META = TICKET_META


def test_round_trip(tmp_path: Path) -> None:
    path = checkpoint.save(tmp_path / "t", state(), META)
    loaded = checkpoint.load(path)
    np.testing.assert_array_equal(loaded.state["init"]["dense"]["kernel"], state()["init"]["dense"]["kernel"])
    assert loaded.state["mask"]["dense"]["kernel"].dtype == np.uint8
    assert loaded.meta["schema"] == checkpoint.SCHEMA and loaded.meta["level"] == 1
    assert "eslt_version" in loaded.meta
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary left


def test_never_overwrites_without_force(tmp_path: Path) -> None:
    path = checkpoint.save(tmp_path / "t", state(), META)
    with pytest.raises(BadInput, match="exists"):
        checkpoint.save(path, state(), {**META, "level": 2})
    assert checkpoint.read_meta(path)["level"] == 1
    checkpoint.save(path, state(), {**META, "level": 2}, force=True)
    assert checkpoint.read_meta(path)["level"] == 2


def test_a_crashed_write_is_never_read_as_valid(tmp_path: Path) -> None:
    path = checkpoint.save(tmp_path / "t", state(), META)
    partial = tmp_path / "partial"
    shutil.copytree(path, partial)
    shutil.rmtree(partial / "state")
    with pytest.raises(BadInput, match="not an eslt checkpoint"):
        checkpoint.load(partial)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "meta" / "metadata").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "meta" / "metadata").write_text(json.dumps({"schema": 99, "kind": "ticket"})), "upgrade eslt"),
        (lambda p: (p / "meta" / "metadata").write_text(json.dumps({"schema": 1, "kind": "weird"})), "valid kind"),
        (lambda p: shutil.rmtree(p / "state" / "d"), "unreadable state|damaged"),
    ],
)
def test_damaged_checkpoints_are_refused(tmp_path: Path, damage, message: str) -> None:
    path = checkpoint.save(tmp_path / "t", state(), META)
    damage(path)
    with pytest.raises(BadInput, match=message):
        checkpoint.load(path)


def test_missing_paths_and_folders_that_are_not_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such checkpoint"):
        checkpoint.load(tmp_path / "nope")
    (tmp_path / "folder").mkdir()
    with pytest.raises(BadInput, match="not an eslt checkpoint"):
        checkpoint.load(tmp_path / "folder")


def test_mask_must_be_binary(tmp_path: Path) -> None:
    bad = state()
    bad["mask"]["dense"]["kernel"] = bad["mask"]["dense"]["kernel"] * 3
    path = checkpoint.save(tmp_path / "t", bad, META)
    with pytest.raises(BadInput, match="other than 0 and 1"):
        checkpoint.load(path)


def test_readme_snippet_opens_a_checkpoint_with_plain_orbax(tmp_path: Path) -> None:
    """The README's plain-Orbax snippet runs as written on a checkpoint eslt wrote."""
    section = README.read_text().split("## Checkpoint format", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    path = checkpoint.save(tmp_path / "t", state(), META)
    scope = {"__name__": "snippet"}
    exec(snippet.replace('"eslt-runs/fashion_mnist-snes-seed0/L01-snr"', repr(str(path))), scope)
    np.testing.assert_array_equal(scope["mask"]["dense"]["kernel"], state()["mask"]["dense"]["kernel"])
    assert scope["meta"]["kind"] == "ticket"
