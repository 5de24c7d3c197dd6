"""The commands end to end: a real shell pipe of the console script, the rest in-process."""

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import jax
import pytest
from conftest import TINY_CONTROL, TINY_VISION, eslt_path, needs_fashion, run_cli

from eslt_cli import checkpoint, paths, pipeline
from eslt_cli.tasks.base import evaluate


def check_stdout(*texts: str) -> tuple[Path, ...]:
    for text in texts:
        assert len(text.splitlines()) == 1  # stdout is exactly one path
    return tuple(Path(text.strip()) for text in texts)


def real_pipe(task_args: list[str], folder: Path) -> tuple[Path, ...]:
    """``eslt train ... | eslt prune --snr | eslt train`` as a shell runs it: three console-script processes
    at once, each reading the one before it through a pipe; ``tee`` keeps what each printed."""
    dense, ticket, trained = (folder / f"{name}.out" for name in ("dense", "ticket", "trained"))
    line = f"eslt train {shlex.join(task_args)} | tee {dense} | eslt prune --snr | tee {ticket} | eslt train >{trained}"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", line], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PATH": eslt_path()})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return check_stdout(*(f.read_text() for f in (dense, ticket, trained)))


def inprocess_pipe(task_args: list[str]) -> tuple[Path, ...]:
    """The same three commands in-process, each given what the one before it printed."""
    outputs = []
    stdin = None
    for args in (["train", *task_args], ["prune", "--snr"], ["train"]):
        code, stdout, err = run_cli(*args, stdin=stdin)
        assert code == 0, err
        outputs.append(stdin := stdout)
    return check_stdout(*outputs)


def check_lineage(dense: Path, ticket: Path, trained: Path) -> None:
    d, t, tr = (checkpoint.load(p) for p in (dense, ticket, trained))
    assert (d.kind, t.kind, tr.kind) == ("trained", "ticket", "trained")
    assert (d.meta["level"], t.meta["level"], tr.meta["level"]) == (0, 1, 1)
    # Links are relative to the checkpoint's folder, so a run folder can move (README: portable run folders).
    assert paths.follow(t.path, t.meta["parent"]) == dense.absolute()
    assert paths.follow(tr.path, tr.meta["parent"]) == ticket.absolute()
    assert [paths.follow(tr.path, p) for p in tr.meta["lineage"]] == [dense.absolute(), ticket.absolute()]
    assert t.meta["pruning"]["criterion"] == "snr"
    assert abs(t.meta["sparsity"]["global"] - 0.2) < 1e-3
    # Rewinding: the ticket's init is the level-0 init, bit for bit.
    for a, b in zip(jax.tree.leaves(d.state["init"]), jax.tree.leaves(t.state["init"]), strict=True):
        assert (a == b).all()
    for m, w in zip(jax.tree.leaves(tr.state["mask"]), jax.tree.leaves(tr.state["mean"]), strict=True):
        assert (w[m == 0] == 0).all()
    assert tr.meta["trainer"] == d.meta["trainer"]  # the ticket's recorded settings were used


def test_real_pipe_pendulum(tmp_path: Path) -> None:
    paths = real_pipe(["--task", "pendulum", "--strategy", "snes", "--seed", "0", *TINY_CONTROL], tmp_path)
    assert paths[0] == Path(os.environ["ESLT_HOME"]) / "pendulum-snes-seed0" / "L00-trained"  # the default root
    check_lineage(*paths)
    assert paths[1].name == "L01-snr" and paths[2].name == "L01-snr-trained"
    trained = checkpoint.load(paths[2])
    assert trained.meta["metric"] == "return"
    # Re-evaluating the final mean with the checkpoint's evaluation key reproduces its test return.
    again = evaluate(pipeline.task_of(trained.record), trained.state["mean"], pipeline.eval_key(trained.record))
    assert again["metric"] == pytest.approx(trained.meta["metrics"]["final"]["metric"], rel=1e-5)


@needs_fashion
def test_pipe_fashion_mnist_on_real_data() -> None:
    paths = inprocess_pipe(["--task", "fashion_mnist", "--strategy", "snes", "--seed", "0", *TINY_VISION])
    check_lineage(*paths)
    meta = checkpoint.read_meta(paths[2])
    assert meta["metric"] == "accuracy" and 0.0 <= meta["metrics"]["final"]["metric"] <= 1.0


def test_rerun_is_skipped_and_changed_settings_refused(cli) -> None:
    args = ["train", "--task", "cartpole", *TINY_CONTROL]
    code, out, _ = cli(*args)
    assert code == 0
    path = Path(out.strip())
    stamp = (path / "meta" / "metadata").stat().st_mtime_ns
    code, again, err = cli(*args)
    assert (code, again) == (0, out) and "up to date" in err
    assert (path / "meta" / "metadata").stat().st_mtime_ns == stamp
    code, _, err = cli(*args[:-1], "3")
    assert code == 2 and "other settings (task.test_episodes 2 -> 3)" in err
    code, out2, _ = cli("--quiet", *args[:-1], "3", "--force")
    assert code == 0 and out2 == out and checkpoint.read_meta(path)["task"]["test_episodes"] == 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny trained checkpoints (diagonal and isotropic ES) for the bad-input table."""
    root = tmp_path_factory.mktemp("trained")
    out = {}
    for strategy in ("snes", "open_es"):
        code, stdout, err = run_cli("train", "--task", "cartpole", "--strategy", strategy, *TINY_CONTROL,
                                    "--out", str(root / strategy))  # fmt: skip
        assert code == 0, err
        out[strategy] = Path(stdout.strip())
    code, stdout, err = run_cli("prune", "--magnitude", str(out["snes"]))
    assert code == 0, err
    out["ticket"] = Path(stdout.strip())
    # Damaged copies: bad meta JSON, a newer schema, truncated array files.
    for name, damage in (
        ("badmeta", lambda p: (p / "meta" / "metadata").write_text('{"schema": 1, "ki')),
        ("newer", lambda p: (p / "meta" / "metadata").write_text('{"schema": 999, "kind": "trained"}')),
        (
            "truncated",
            lambda p: [
                f.write_bytes(f.read_bytes()[:7])
                for f in (p / "state").rglob("*")
                if f.is_file() and f.parent.name == "d"
            ],
        ),  # fmt: skip
    ):
        shutil.copytree(out["snes"], root / name)
        damage(root / name)
        out[name] = root / name
    (root / "plain").mkdir()
    (root / "afile").write_text("x")
    out["plain"], out["afile"] = root / "plain", root / "afile"
    return out


BAD = [
    # (args, stdin, message)
    (["prune", "--snr", "/nonexistent/ckpt"], None, "no such checkpoint"),
    (["prune", "--snr", "{tmp}"], None, "not an eslt checkpoint"),
    (["prune", "--snr"], "", "empty stdin"),
    (["prune", "--snr"], "{snes}\n{snes}\n", "would both write"),
    (["prune", "--snr"], None, "no input checkpoint"),
    (["train"], "", "empty stdin"),
    (["train", "--task", "nope"], None, "unknown task 'nope': choose one of fashion_mnist"),
    (["train", "--task", "cartpole", "--strategy", "cma"], None, "unknown strategy 'cma': choose one of pgpe"),
    (["prune", "--snr", "--rate", "1.5", "{snes}"], None, "--rate must be in (0, 1)"),
    (["prune", "--snr", "--rate", "0", "{snes}"], None, "--rate must be in (0, 1)"),
    (["prune", "--snr", "{open_es}"], None, "use --magnitude"),
    (["prune", "{snes}"], None, "exactly one of"),
    (["prune", "--snr", "--random", "{snes}"], None, "exactly one of"),
    (["prune", "--snr", "--out", "{snes}", "{snes}"], None, "is the input"),
    (["train", "{snes}"], None, "already trained"),
    (["prune", "--snr"], "{ticket}", "is a ticket"),
    (["train", "--task", "cartpole", "--population", "7", "--strategy", "pgpe"], None, "must be even"),
    (["train", "--task", "cartpole", "--generations", "0"], None, "must be positive"),
    (["train", "--task", "fashion_mnist", "--data-dir", "/nonexistent"], None, "does not exist"),
    (["prune", "--magnitude", "--exclude", "conv9", "{snes}"], None, "unknown layers"),
    (["train", "--task", "cartpole", "--preset", "huge"], None, "unknown preset"),
    (["prune", "--snr", "{badmeta}"], None, "not valid JSON"),
    (["prune", "--snr", "{newer}"], None, "upgrade eslt"),
    (["prune", "--snr", "{truncated}"], None, "damaged"),
    (["prune", "--snr"], '{{"nopath": 1}}\n', 'no "path"'),
    (["prune", "--snr"], "{{broken\n", "not JSON"),
    (["prune", "--snr", "--from", "middle", "{snes}"], None, "--from must be final or best"),
    (["train", "--task", "cartpole", "--std-init", "-1"], None, "--std-init must be positive"),
    (["train", "--task", "cartpole", "--lr", "0"], None, "--lr must be positive"),
    (["train", "--task", "cartpole", "--strategy", "sep_cma_es", "--elite-ratio", "2"], None, "(0, 1]"),
    (["train", "--task", "cartpole", "--mean-decay", "-1"], None, "non-negative"),
    (["train", "--task", "cartpole", "--optimizer", "rmsprop"], None, "unknown optimizer"),
    (["train", "--task", "cartpole", "--hidden", "a,b"], None, "comma-separated"),
    (["train", "--task", "fashion_mnist", "--hidden", "8"], None, "applies to control"),
    (["train", "--task", "mnist", "--batch-size", "0"], None, "--batch-size must be positive"),
    (["train", "--task", "cartpole", "--test-episodes", "0"], None, "--test-episodes must be positive"),
    (["train", "--task", "cartpole", "--save-every", "0"], None, "--save-every must be positive"),
    (["train", "--task", "cartpole", "--seed", "abc"], None, "valid integer"),
    (["train", "--task", "pendulum", "{ticket}"], None, "eslt transfer"),
    (["train", "--hidden", "8", "{ticket}"], None, "cannot change a ticket's architecture"),
    (["train", "--task", "fashion_mnist", "--data-dir", "{afile}"], None, "not a folder"),
    (["train", "--task", "cartpole", "--out", "{plain}"], None, "is not an eslt checkpoint"),
    (["train", "--task", "tfds:no_such_dataset_xyz"], None, "not a tfds dataset"),
    (["lmc", "{snes}"], None, "give both A and B"),
    (["nope"], None, "No such command"),
]


@pytest.mark.parametrize("args, stdin, message", BAD)
def test_bad_input_one_line_exit_2_nothing_written(cli, trained, tmp_path: Path, args, stdin, message) -> None:
    fill = {"tmp": str(tmp_path), **{k: str(v) for k, v in trained.items()}}
    args = [a.format(**fill) for a in args]
    stdin = None if stdin is None else stdin.format(**fill)
    before = {p: p.stat().st_mtime_ns for p in Path(fill["snes"]).parent.rglob("*")}
    runs = Path(__import__("os").environ["ESLT_HOME"])
    code, out, err = cli(*args, stdin=stdin)
    assert code == 2, err
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) <= 2 and "Traceback" not in err
    assert {p: p.stat().st_mtime_ns for p in Path(fill["snes"]).parent.rglob("*")} == before
    assert not runs.exists() or not any(runs.rglob("_CHECKPOINT_METADATA"))


def test_bad_input_table_is_large() -> None:
    assert len(BAD) >= 30


@needs_fashion
def test_non_finite_fitness_is_a_failed_run(cli) -> None:
    code, out, err = cli("train", "--task", "fashion_mnist", *TINY_VISION, "--std-init", "1e38")
    assert code == 1 and out == "" and "non-finite" in err and len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(cli) -> None:
    with pytest.raises(Exception, match="no such checkpoint"):
        cli("--debug", "prune", "--snr", "/nonexistent/ckpt")
