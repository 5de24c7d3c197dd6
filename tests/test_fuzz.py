"""Fuzz the checkpoint reader: mutated files give BadInput or a valid load, never a crash.

Reading never executes code from the file: meta is JSON, arrays come through
Orbax/TensorStore (no pickle).
"""

import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import CONV0, TICKET_META
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eslt_cli import checkpoint
from eslt_cli.errors import BadInput

STATE = {
    "init": {
        "conv0": CONV0,
        "dense": {"kernel": np.arange(6, dtype=np.float32).reshape(3, 2), "bias": np.zeros(2, np.float32)},
    },
    "mask": {
        "conv0": {k: np.ones(v.shape, np.uint8) for k, v in CONV0.items()},
        "dense": {"kernel": np.ones((3, 2), np.uint8), "bias": np.ones(2, np.uint8)},
    },
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkpoint.save(tmp_path_factory.mktemp("fuzz") / "t", STATE, TICKET_META)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_checkpoints_never_crash_the_reader(pristine: Path, tmp_path: Path, data: st.DataObject) -> None:
    files = sorted(p for p in pristine.rglob("*") if p.is_file())
    target = tmp_path / uuid.uuid4().hex
    shutil.copytree(pristine, target)
    victim = target / data.draw(st.sampled_from(files)).relative_to(pristine)
    raw = bytearray(victim.read_bytes())
    how = data.draw(st.sampled_from(["flip", "truncate", "replace", "delete"]))
    if how == "flip" and raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
        victim.write_bytes(bytes(raw))
    elif how == "truncate":
        victim.write_bytes(bytes(raw[: data.draw(st.integers(0, max(len(raw) - 1, 0)))]))
    elif how == "replace":
        victim.write_bytes(data.draw(st.binary(max_size=64)))
    else:
        victim.unlink()
    try:
        loaded = checkpoint.load(target)
    except BadInput:
        return
    # A mutation the reader accepts must still give a structurally valid checkpoint.
    assert set(loaded.state) >= {"init", "mask"}
    for leaf in loaded.state["mask"]["dense"].values():
        assert np.isin(leaf, (0, 1)).all()
