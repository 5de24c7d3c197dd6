"""Many inputs per command and batched training (issue 26).

Tolerance: a run trained in a batch equals the same run trained alone within a relative 1e-5 (the
same numbers up to float rounding; on CPU, with ``lax.map`` over the runs, they measured bit-identical).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import FASHION, REAL_ESLT, TINY_CONTROL, TINY_VISION, fashion_subset

from eslt_cli import checkpoint

CONTROL = ["--task", "pendulum", *TINY_CONTROL]
TOL = 1e-5


def lines(stdout: str) -> list[Path]:
    return [Path(line) for line in stdout.splitlines()]


def assert_close(a: Path, b: Path, exact: bool = False) -> None:
    sa, sb = checkpoint.load(a).state, checkpoint.load(b).state
    assert sorted(k for k in sa if sa[k] is not None) == sorted(k for k in sb if sb[k] is not None)
    for key in sa:
        for x, y in zip(jax.tree.leaves(sa[key]), jax.tree.leaves(sb[key]), strict=True):
            if exact:
                np.testing.assert_array_equal(x, y, err_msg=key)
            else:
                np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=TOL,
                                           atol=TOL * float(np.abs(np.asarray(y, np.float64)).max(initial=0)),
                                           err_msg=key)  # fmt: skip
    ma, mb = checkpoint.read_meta(a), checkpoint.read_meta(b)
    ha, hb = (np.asarray(jax.tree.leaves(m["history"]), np.float64) for m in (ma, mb))
    assert jax.tree.structure(ma["history"]) == jax.tree.structure(mb["history"])
    if exact:
        np.testing.assert_array_equal(ha, hb)
    else:
        np.testing.assert_allclose(ha, hb, rtol=TOL)


def batched_equals_alone(cli, tmp_path: Path, args: list[str]) -> None:
    """Seeds 0 and 1 of ``eslt ARGS`` batched; seed 1 equals its run alone (within :data:`TOL`)."""
    code, out, err = cli(*args, "--seeds", "0-1")
    assert code == 0, err
    assert checkpoint.read_meta(lines(out)[1])["run"]["batch"] == 2
    code, alone, err = cli(*args, "--seed", "1", "--out", str(tmp_path / "alone"))
    assert code == 0, err
    assert_close(lines(out)[1], Path(alone.strip()))


def test_seeds_batched_equal_alone_in_input_order(cli, tmp_path: Path) -> None:
    code, out, err = cli("train", *CONTROL, "--seeds", "2,0,1", "--root", str(tmp_path / "b"))
    assert code == 0, err
    made = lines(out)
    assert [p.parent.name for p in made] == ["pendulum-snes-seed2", "pendulum-snes-seed0", "pendulum-snes-seed1"]
    assert {checkpoint.read_meta(p)["run"]["batch"] for p in made} == {3}
    for seed, path in zip((2, 0, 1), made):
        code, alone, err = cli("train", *CONTROL, "--seed", str(seed), "--out", str(tmp_path / f"alone{seed}"))
        assert code == 0, err
        assert "batch" not in checkpoint.read_meta(Path(alone.strip()))["run"]
        assert_close(path, Path(alone.strip()))
    # Reuse inside a batch: the finished outputs are kept, only seed 3 trains.
    code, out, err = cli("train", *CONTROL, "--seeds", "0-3", "--root", str(tmp_path / "b"))
    assert code == 0, err
    assert err.count("is up to date") == 3 and lines(out)[3].parent.name == "pendulum-snes-seed3"
    assert "batch" not in checkpoint.read_meta(lines(out)[3])["run"]  # alone in its group


def test_vmap_over_runs_equals_alone(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESLT_RUN_AXIS", "vmap")
    batched_equals_alone(cli, tmp_path, ["train", *CONTROL])


def test_pipe_of_a_level_groups_by_surviving_weights(cli, tmp_path: Path) -> None:
    code, out, err = cli("train", *CONTROL, "--seeds", "0-1")
    assert code == 0, err
    code, tickets, err = cli("prune", "--snr", stdin=out)
    assert code == 0, err
    code, deeper, err = cli("prune", "--magnitude", "--rate", "0.5", str(lines(out)[0]),
                            "--out", str(tmp_path / "half"))  # fmt: skip
    assert code == 0, err
    # Two tickets of one level batch together; the one pruned further (other nnz) trains in its own group.
    mixed = tickets + deeper
    code, trained, err = cli("train", stdin=mixed)
    assert code == 0, err
    paths = lines(trained)
    assert [p.name for p in paths] == ["L01-snr-trained", "L01-snr-trained", "half-trained"]
    assert [checkpoint.read_meta(p)["run"].get("batch") for p in paths] == [2, 2, None]
    code, alone, err = cli("train", str(lines(tickets)[1]), "--out", str(tmp_path / "alone"))
    assert code == 0, err
    assert_close(paths[1], Path(alone.strip()))


def test_failing_member_is_one_line_and_the_others_are_kept(cli, tmp_path: Path) -> None:
    code, out, err = cli("train", *CONTROL, "--seeds", "0-1")
    assert code == 0, err
    code, tickets, err = cli("prune", "--snr", stdin=out)
    assert code == 0, err
    good, source = lines(tickets)
    ticket = checkpoint.load(source)
    poisoned = jax.tree.map(lambda a: np.full_like(a, np.nan), ticket.state["init"])
    bad = source.with_name("L01-nan")
    checkpoint.save(bad, {**ticket.state, "init": poisoned}, dict(ticket.meta))
    code, out, err = cli("train", str(good), str(bad))
    assert code == 1, err
    assert lines(out) == [good.with_name("L01-snr-trained")]
    assert checkpoint.is_checkpoint(lines(out)[0]) and not bad.with_name("L01-nan-trained").exists()
    failures = [line for line in err.splitlines() if str(bad.with_name("L01-nan-trained")) in line]
    assert len(failures) == 1 and "non-finite" in failures[0] and "Traceback" not in err


def test_many_inputs_refusals(cli, tmp_path: Path) -> None:
    code, out, err = cli("train", *CONTROL, "--seeds", "0-1", "--out", str(tmp_path / "x"))
    assert code == 2 and "--out names one output" in err
    code, out, err = cli("train", *CONTROL, "--seeds", "0,0")
    assert code == 2 and "--seeds" in err
    code, out, err = cli("train", *CONTROL, "--seeds", "0-1", "--seed", "3")
    assert code == 2 and "not both" in err
    code, out, err = cli("train", *CONTROL, "--seeds", "0-1", "--max-batch", "0")
    assert code == 2 and "--max-batch" in err
    code, out, err = cli("train", *CONTROL, "--seeds", "0-1")
    assert code == 0, err
    code, out2, err = cli("prune", "--snr", *out.split(), "--out", str(tmp_path / "t"))
    assert code == 2 and "--out names one output" in err and not (tmp_path / "t").exists()
    code, dry, err = cli("train", *CONTROL, "--seeds", "0-2", "--dry-run")
    assert code == 0 and len(dry.splitlines()) == 3


def test_max_batch_splits_a_group(cli) -> None:
    code, out, err = cli("train", *CONTROL, "--seeds", "0-2", "--max-batch", "2")
    assert code == 0, err
    assert [checkpoint.read_meta(p)["run"].get("batch") for p in lines(out)] == [2, 2, None]


def test_vision_batched_equals_alone(cli, tmp_path: Path) -> None:
    if not FASHION.exists():
        pytest.skip("apt-get install dataset-fashion-mnist")
    data = str(fashion_subset(tmp_path / "data", 256, 128))
    args = ["train", "--task", "fashion_mnist", "--data-dir", data, *TINY_VISION]
    batched_equals_alone(cli, tmp_path, args)


def test_brax_batched_equals_alone(cli, tmp_path: Path) -> None:
    args = ["train", "--task", "inverted_pendulum", "--population", "2", "--generations", "2", "--eval-every", "1",
            "--train-episodes", "1", "--test-episodes", "1", "--episode-length", "5"]  # fmt: skip
    batched_equals_alone(cli, tmp_path, args)


def test_batch_killed_then_resumed_is_bit_identical(cli, tmp_path: Path) -> None:
    args = ["train", "--task", "pendulum", "--population", "8", "--generations", "40", "--eval-every", "2",
            "--save-every", "2", "--train-episodes", "2", "--test-episodes", "2", "--seeds", "0-2"]  # fmt: skip
    code, out, err = cli(*args, "--root", str(tmp_path / "reference"))
    assert code == 0, err
    reference = lines(out)
    root = tmp_path / "killed"
    resumes = [root / p.parent.name / ".L00-trained.resume" for p in reference]
    proc = subprocess.Popen([str(REAL_ESLT), *args, "--root", str(root)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not all(r.exists() for r in resumes) and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert all(r.exists() for r in resumes), "the batch finished before the kill: make it longer"
    code, out, err = cli(*args, "--root", str(root))  # the resume, in-process
    assert code == 0, err
    assert "resuming from generation" in err
    for a, b in zip(reference, lines(out), strict=True):
        assert_close(a, b, exact=True)
        assert not b.with_name(".L00-trained.resume").exists()


def test_lmc_pairs_and_sharpness_many_equal_one_at_a_time(cli, tmp_path: Path) -> None:
    import json

    code, out, err = cli("train", *CONTROL, "--seeds", "0-2")
    assert code == 0, err
    nets = [str(p) for p in lines(out)]
    pairs = [(nets[0], nets[1]), (nets[1], nets[2])]
    code, many, err = cli("lmc", "--points", "3", stdin="".join(f"{a}\t{b}\n" for a, b in pairs))
    assert code == 0, err
    listed = tmp_path / "pairs.txt"
    listed.write_text("".join(f"{a} {b}\n" for a, b in pairs))
    code, from_file, err = cli("lmc", "--points", "3", "--pairs", str(listed))
    assert code == 0, err
    for (a, b), line, again in zip(pairs, many.splitlines(), from_file.splitlines(), strict=True):
        code, one, err = cli("lmc", "--points", "3", a, b)
        assert code == 0, err
        assert json.loads(line) == json.loads(one) == json.loads(again)
    listed.write_text(f"{nets[0]}\n")
    code, _, err = cli("lmc", "--pairs", str(listed))
    assert code == 2 and "pairs line 1 is not two paths" in err and len(err.strip().splitlines()) == 1
    code, many, err = cli("sharpness", "--points", "5", "--directions", "2", *nets)
    assert code == 0, err
    for net, line in zip(nets, many.splitlines(), strict=True):
        code, one, err = cli("sharpness", "--points", "5", "--directions", "2", net)
        assert code == 0, err
        assert json.loads(line) == json.loads(one)
