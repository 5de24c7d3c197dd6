"""``eslt show``, ``eslt lmc`` and ``eslt sharpness`` on tiny real checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FASHION, TINY_CONTROL, TINY_VISION, needs_fashion, run_cli
from test_analysis import hand_directions

from eslt_cli import checkpoint

run = run_cli


def ok(*args: str, stdin: str | None = None) -> str:
    code, out, err = run(*args, stdin=stdin)
    assert code == 0, err
    return out


def one_line_error(code: int, out: str, err: str, message: str) -> None:
    assert code == 2, err
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def files_in(path: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in path.rglob("*")}


@pytest.fixture(scope="module")
def pendulum(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """L00-trained, L01-snr (ticket), L01-snr-trained: one tiny Pendulum IMP step."""
    run_dir = tmp_path_factory.mktemp("analysis") / "pendulum-snes-seed0"
    dense = ok("train", "--task", "pendulum", "--seed", "0", *TINY_CONTROL, "--out", str(run_dir / "L00-trained"))
    ticket = ok("prune", "--snr", stdin=dense)
    trained = ok("train", stdin=ticket)
    return {"dense": Path(dense.strip()), "ticket": Path(ticket.strip()), "trained": Path(trained.strip())}


def test_show_lists_finds_and_follows_lineage(pendulum) -> None:
    root = pendulum["dense"].parent
    (root / ".L09-snr.partial-1234").mkdir()  # a hidden temp folder is skipped
    out = ok("show", str(root))
    assert [Path(p) for p in out.splitlines()] == [pendulum[k] for k in ("dense", "ticket", "trained")]
    records = [json.loads(line) for line in ok("show", "--json", str(pendulum["trained"])).splitlines()]
    assert len(records) == 1 and records[0]["path"] == str(pendulum["trained"])
    assert records[0]["level"] == 1 and "history" not in records[0] and records[0]["kind"] == "trained"
    assert "history" in json.loads(ok("show", "--json", "--history", str(pendulum["dense"])))
    lines = ok("show", "--lineage", "--json", stdin=f"{pendulum['trained']}\n").splitlines()
    chain = [json.loads(line) for line in lines]
    assert [r["path"] for r in chain] == [str(pendulum[k]) for k in ("dense", "ticket", "trained")]
    code, out, err = run("show", str(pendulum["ticket"]))
    assert code == 0 and "L00-trained" in err and "ticket" in err  # the table (with parent) is on stderr


def evaluate_as(ckpt_path: Path, stacked: dict) -> dict[str, np.ndarray]:
    """Test metric and loss of ``stacked`` networks with ``ckpt_path``'s task settings, key and data."""
    from eslt_cli import pipeline
    from eslt_cli.analysis.lmc import evaluate_points

    ckpt = checkpoint.load(ckpt_path)
    task = pipeline.task_of(ckpt.record)
    return evaluate_points(task, stacked, pipeline.eval_key(ckpt.record), pipeline.arrays_of(ckpt, task, "final"))


def stack(*trees: dict) -> dict:
    import jax

    return jax.tree.map(lambda *xs: np.stack([np.asarray(x, np.float32) for x in xs]), *trees)


def test_lmc_of_a_checkpoint_with_itself_and_across_levels(pendulum) -> None:
    dense = checkpoint.read_meta(pendulum["dense"])
    same = json.loads(ok("lmc", "--points", "3", str(pendulum["dense"]), str(pendulum["dense"])))
    assert same["kind"] == "lmc" and same["error_of"] == "return" and same["barrier_definition"] == "frankle2020"
    assert same["barrier"] == 0.0 and same["barrier_linear"] == 0.0  # exactly: every point is A itself
    assert same["alpha"] == [0.0, 0.5, 1.0] and len(set(same["error"])) == 1
    # Evaluated with A's key: the α = 0 end reproduces A's recorded test return.
    assert same["metric"][0] == pytest.approx(dense["metrics"]["final"]["metric"], rel=1e-5)
    code, out, err = run("lmc", "--points", "3", str(pendulum["dense"]), str(pendulum["trained"]))
    assert code == 0 and "barrier" in err and "Frankle" in err
    rec = json.loads(out)
    assert rec["levels"] == [0, 1] and rec["sparsity"][0] == 0.0 and rec["sparsity"][1] > 0.19
    assert rec["strategies"] == ["snes", "snes"] and rec["seeds"] == [0, 0] and rec["task"] == "pendulum"
    assert len(rec["error"]) == len(rec["loss"]) == 3
    # α = 0 and α = 1 are A's and B's own errors (A's settings and key), exactly.
    ends = evaluate_as(
        pendulum["dense"], stack(*(checkpoint.load(pendulum[k]).state["mean"] for k in ("dense", "trained")))
    )
    assert [rec["error"][0], rec["error"][-1]] == (-ends["metric"]).tolist()
    e = rec["error"]
    assert rec["barrier"] == pytest.approx(max(e) - (e[0] + e[-1]) / 2, abs=1e-9)
    assert rec["barrier_linear"] == pytest.approx(max(0.0, e[1] - (e[0] + e[-1]) / 2), abs=1e-9)


def test_sharpness_1d_2d_and_directions_from(pendulum, tmp_path: Path) -> None:
    before = files_in(pendulum["trained"])
    args = ["sharpness", "--points", "3", "--directions", "2", "--2d", "--grid", "3", "--radius", "0.5"]
    rec = json.loads(ok(*args, stdin=f"{pendulum['trained']}\n"))
    assert rec["kind"] == "sharpness" and rec["checkpoint"] == str(pendulum["trained"])
    assert rec["t"] == [-0.5, 0.0, 0.5] and np.shape(rec["loss"]) == (2, 3) and len(rec["curvature"]) == 2
    assert rec["curvature_mean"] == pytest.approx(np.mean(rec["curvature"]))
    assert rec["level"] == 1 and rec["strategy"] == "snes" and rec["directions_from"] is None
    surface = pendulum["trained"].parent / "L01-snr-trained-surface-seed0.npz"
    assert rec["surface"] == str(surface)
    with np.load(surface) as z:
        assert z["loss"].shape == (3, 3) and z["alpha"].shape == z["beta"].shape == (3,)
        assert z["loss"][1, 1] == pytest.approx(rec["loss"][0][1], rel=1e-5)  # the centre is the checkpoint
    assert files_in(pendulum["trained"]) == before  # nothing written into the checkpoint
    stamp = surface.stat().st_mtime_ns
    one_line_error(*run(*args, str(pendulum["trained"])), "exists: pass --force")
    assert surface.stat().st_mtime_ns == stamp
    out = tmp_path / "s.npz"
    rec = json.loads(ok(*args, "--directions-from", str(pendulum["dense"]), "--surface-out", str(out),
                        str(pendulum["trained"])))  # fmt: skip
    assert rec["directions_from"] == str(pendulum["dense"]) and rec["directions_from_level"] == 0
    assert rec["surface"] == str(out) and out.exists()
    with np.load(out) as z:
        assert str(z["directions_from"]) == str(pendulum["dense"])


def test_directions_from_level_0_match_a_hand_computation(pendulum) -> None:
    """Appendix A.3: drawn and normalised at L00, applied to L01 masked by its mask, not renormalised."""
    dense, trained = checkpoint.load(pendulum["dense"]), checkpoint.load(pendulum["trained"])
    rec = json.loads(ok("sharpness", "--points", "3", "--directions", "2", "--radius", "0.5", "--seed", "4",
                        "--directions-from", str(pendulum["dense"]), str(pendulum["trained"])))  # fmt: skip
    theta = trained.state["mean"]
    hand = hand_directions(4, 2, dense.state["mean"], dense.state["mask"], trained.state["mask"])
    ts = [-0.5, 0.0, 0.5]

    def along(dirs: list[dict]) -> np.ndarray:
        import jax

        # θ + t·d in float32, the precision the networks run at.
        f32 = np.float32
        nets = [jax.tree.map(lambda p, d, t=t: f32(p) + f32(t) * f32(d), theta, d) for d in dirs for t in ts]
        return evaluate_as(pendulum["trained"], stack(*nets))["loss"].reshape(len(dirs), len(ts))

    expected = along(hand)
    np.testing.assert_allclose(rec["loss"], expected, rtol=1e-5)
    # The per-level renormalisation A.3 does not do (norms of L00's weights under L01's mask) differs.
    renormalised = hand_directions(4, 2, dense.state["mean"], trained.state["mask"], trained.state["mask"])
    assert not np.allclose(along(renormalised), expected, rtol=1e-3)
    # Directions from the checkpoint itself are the default ones.
    own = json.loads(ok("sharpness", "--points", "3", "--directions", "1", "--radius", "0.5", "--seed", "4",
                        "--directions-from", str(pendulum["trained"]), str(pendulum["trained"])))  # fmt: skip
    default = json.loads(ok("sharpness", "--points", "3", "--directions", "1", "--radius", "0.5", "--seed", "4",
                            str(pendulum["trained"])))  # fmt: skip
    assert own["loss"] == default["loss"]


def test_sharpness_paper_preset_uses_the_51_step_grid(pendulum) -> None:
    from eslt_cli.cli.sharpness import grid_sizes

    assert grid_sizes("paper", None, None) == (51, 51) and grid_sizes("cpu", None, None) == (21, 11)
    assert grid_sizes("paper", 5, None) == (5, 51) and grid_sizes("paper", None, 7) == (51, 7)
    rec = json.loads(ok("sharpness", "--preset", "paper", "--directions", "1", str(pendulum["trained"])))
    assert rec["t"] == np.linspace(-1.0, 1.0, 51).tolist()
    assert len(json.loads(ok("sharpness", "--directions", "1", str(pendulum["trained"])))["t"]) == 21


BAD = [
    (["lmc", "{ticket}", "{dense}"], "is a ticket"),
    (["sharpness", "{ticket}"], "is a ticket"),
    (["sharpness", "/nonexistent/ckpt"], "no such checkpoint"),
    (["lmc", "{dense}", "/nonexistent/ckpt"], "no such checkpoint"),
    (["show", "/nonexistent/ckpt"], "no such checkpoint or folder"),
    (["show", "{tmp}"], "holds no eslt checkpoints"),
    (["sharpness", "--points", "2", "{dense}"], "at least 3"),
    (["lmc", "--which", "last", "{dense}", "{dense}"], "final or best"),
    (["sharpness", "--directions-from", "{ticket}", "{dense}"], "is a ticket"),
    (["sharpness", "--directions-from", "{trained}", "{dense}"], "prunes weights the measured checkpoint keeps"),
    (["sharpness", "--preset", "fast", "{dense}"], "--preset must be cpu or paper"),
]


@pytest.mark.parametrize("args, message", BAD)
def test_bad_input_one_line_exit_2(pendulum, tmp_path: Path, args: list[str], message: str) -> None:
    fill = {"tmp": str(tmp_path), **{k: str(v) for k, v in pendulum.items()}}
    before = files_in(pendulum["dense"].parent)
    one_line_error(*run(*[a.format(**fill) for a in args]), message)
    assert files_in(pendulum["dense"].parent) == before


@pytest.fixture(scope="module")
def fashion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not FASHION.exists():
        pytest.skip("apt-get install dataset-fashion-mnist")
    out = tmp_path_factory.mktemp("analysis-fmnist") / "fashion_mnist-snes-seed0" / "L00-trained"
    return Path(ok("train", "--task", "fashion_mnist", "--seed", "0", *TINY_VISION, "--out", str(out)).strip())


@needs_fashion
def test_fashion_mnist_lmc_and_sharpness(fashion, pendulum) -> None:
    # Each point is a pass over the 10k test images: keep the counts minimal (2D is tested on Pendulum).
    meta = checkpoint.read_meta(fashion)
    rec = json.loads(ok("lmc", "--points", "2", str(fashion), str(fashion)))
    assert rec["error_of"] == "accuracy" and rec["barrier"] == 0.0 and rec["alpha"] == [0.0, 1.0]
    assert rec["error"][0] == pytest.approx(1.0 - meta["metrics"]["final"]["metric"], abs=1e-5)
    rec = json.loads(ok("sharpness", "--points", "3", "--directions", "1", str(fashion)))
    assert np.shape(rec["loss"]) == (1, 3) and all(np.isfinite(rec["curvature"])) and rec["surface"] is None
    assert rec["loss"][0][1] == pytest.approx(meta["metrics"]["final"]["loss"], rel=1e-4)  # t = 0: the checkpoint
    one_line_error(*run("lmc", str(fashion), str(pendulum["dense"])), "compare checkpoints of one task")
