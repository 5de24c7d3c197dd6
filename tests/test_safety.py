"""Data safety (README: the --force rule and the path rule): hostile input never costs a user a file.

Every case runs against a copy of a small world (trained checkpoints, a ticket,
a user's folder and file) and checks the exit code, exactly one stderr line,
clean stdout, and that every pre-existing file and folder is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from conftest import REAL_ESLT, TINY_CONTROL, TINY_VISION, needs_fashion, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def world0(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world0")
    code, out, err = run_cli("-q", "train", "--task", "pendulum", *TINY_CONTROL, "--out", str(root / "L00-trained"))
    assert code == 0, err
    code, out, err = run_cli("-q", "prune", "--magnitude", str(root / "L00-trained"))
    assert code == 0, err
    (root / "u" / "sub").mkdir(parents=True)
    (root / "u" / "thesis.tex").write_text("my thesis")
    (root / "afile").write_text("x")
    (root / "u" / "photo.png").write_bytes(b"\x89PNG not eslt's")
    (root / "u" / "notes.svg").write_text("<svg><!-- quotes eslt-figure, the mark eslt puts in its figures --></svg>")
    np.savez(root / "u" / "data.npz", x=np.arange(3))
    return root


@pytest.fixture
def world(world0: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "w"
    shutil.copytree(world0, root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("ESLT_HOME", str(root / "runs"))
    return root


def snapshot(root: Path) -> dict[str, str]:
    """A hash of every file (content) and folder (existence) under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p)] = "link:" + os.readlink(p)
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p)] = "dir"
    return out


def edit_meta(path: Path, change) -> None:
    file = path / "meta" / "metadata"
    meta = json.loads(file.read_text())
    change(meta)
    file.write_text(json.dumps(meta))


def _set(key: str, value):
    return lambda m: m.__setitem__(key, value)


def _drop(key: str):
    return lambda m: m.pop(key)


T, K = "L00-trained", "L01-magnitude"
PEND = ["train", "--task", "pendulum", *TINY_CONTROL]  # a fresh tiny run, refused before it writes anything
# Refused alike by `train` and `train --dry-run` (test_dry_run_refuses_what_the_run_refuses): (id, options, message).
REFUSED_SETTINGS = [
    ("save-every-0", ["--save-every", "0"], "--save-every must be positive, got 0"),
    ("devices-negative", ["--devices", "-1"], "--devices must be between 1 and"),
    ("devices-more-than-exist", ["--devices", "5"], "--devices must be between 1 and 1 (the devices JAX sees), got 5"),
    ("std-init-inf", ["--std-init", "inf"], "--std-init must be a finite number, got inf"),
    ("lr-nan", ["--lr", "nan"], "--lr must be"),
    ("population-huge", ["--population", str(10**12)], "of memory (a population of 1000000000000 x"),
    ("hidden-huge", ["--hidden", "1000000,1000000"], "lower --hidden"),
    ("generations-huge", ["--generations", str(10**13)], "lower --generations"),
    ("root-a-file", ["--root", "afile"], "--root afile is not a folder"),
    ("root-below-a-file", ["--root", "afile/runs"], "--root afile/runs is not a folder"),
]
VISION = ["train", "--task", "fashion_mnist"]  # refused before any data is read
REFUSED_VISION = [
    ("batch-size-huge", ["--batch-size", str(10**9)], "lower --batch-size"),
    ("data-dir-missing", ["--data-dir", "nowhere"], "/nowhere does not exist"),
    ("adam-batch-size-huge", ["--trainer", "adam", "--batch-size", str(10**9)], "lower --batch-size"),
]
# (id, meta edit of the trained checkpoint or None, argv, expected code, stderr fragment)
CASES = [
    ("force-user-folder", None, ["prune", "--snr", "--out", "u", "--force", T], 2, "not an eslt checkpoint"),
    ("force-user-file", None, ["prune", "--snr", "--out", "afile", "--force", T], 2, "not an eslt checkpoint"),
    (
        "force-train-user-folder",
        None,
        ["train", "--task", "pendulum", *TINY_CONTROL, "--out", "u", "--force"],
        2,
        "not an eslt checkpoint",
    ),
    (
        "force-permute-user-folder",
        None,
        ["permute", "--weights", "--out", "u", "--force", K],
        2,
        "not an eslt checkpoint",
    ),
    ("trainer-name-a-list", lambda m: m["trainer"].__setitem__("name", []), ["show", T], 2, "trainer must be"),
    ("out-dot", None, ["prune", "--snr", "--out", ".", "--force", T], 2, "holds the input"),
    ("out-is-input", None, ["prune", "--snr", "--out", T, "--force", T], 2, "is the input"),
    ("out-inside-input", None, ["prune", "--snr", "--out", f"{T}/meta", "--force", T], 2, "inside the input"),
    ("out-newline", None, ["prune", "--snr", "--out", "a\nb", T], 2, "line break"),
    ("arm-dotdot", _set("arm", "../../escape"), ["prune", "--snr", T], 2, "arm"),
    ("arm-slash", _set("arm", "a/b"), ["prune", "--snr", T], 2, "arm"),
    ("tfds-dotdot", None, ["train", "--task", "tfds:../../x"], 2, "not a tfds dataset name"),
    ("level-text", _set("level", "abc"), ["prune", "--snr", T], 2, "level"),
    ("level-negative", _set("level", -5), ["prune", "--snr", T], 2, "level"),
    ("seed-text", _set("seed", "zero"), ["prune", "--snr", T], 2, "seed"),
    ("seed-huge", _set("seed", 2**70), ["prune", "--snr", T], 2, "seed"),
    ("no-task", _drop("task"), ["prune", "--snr", T], 2, "task"),
    ("no-trainer", _drop("trainer"), ["prune", "--snr", T], 2, "trainer"),
    ("lineage-not-list", _set("lineage", "x"), ["prune", "--snr", T], 2, "lineage"),
    ("task-a-string", _set("task", "pendulum"), ["prune", "--snr", T], 2, "task"),
    ("unknown-task", lambda m: m["task"].__setitem__("name", "nope"), ["prune", "--snr", T], 2, "unknown task"),
    ("cnn-on-control", lambda m: m["model"].__setitem__("kind", "cnn"), ["prune", "--snr", T], 2, "does not fit"),
    ("keep-negative", lambda m: m.__setitem__("pruning", {"keep": -1.0}), ["prune", "--snr", T], 2, "pruning.keep"),
    ("population-text", lambda m: m["trainer"].__setitem__("population", "many"), ["show", T], 2, "population"),
    ("seed-option-huge", None, ["train", "--task", "pendulum", "--seed", str(2**70)], 2, "--seed"),
    ("dpi-huge", None, ["plot", "layers", "--dpi", "1000000", T], 2, "--dpi"),
    ("stdin-huge", None, ["prune", "--snr"], 2, "stdin"),
    ("grid-huge", None, ["sharpness", "--2d", "--grid", "100000", T], 2, "--grid"),
    ("points-huge", None, ["lmc", "--points", "10000000", T, T], 2, "--points"),
    ("lmc-two-dashes", None, ["lmc", "-", "-"], 2, "only one"),
    (
        "plot-force-user-file",
        None,
        ["plot", "layers", "--out", "u/photo.png", "--force", T],
        2,
        "has no record of eslt writing it",
    ),
    (
        "plot-force-file-with-mark",
        None,
        ["plot", "layers", "--out", "u/notes.svg", "--force", T],
        2,
        "--force replaces only a figure eslt wrote",
    ),
    ("plot-out-inside-input", None, ["plot", "layers", "--out", f"{T}/layers.png", T], 2, "inside the input"),
    ("surface-out-inside-input", None, ["sharpness", "--2d", "--surface-out", f"{T}/s.npz", T], 2, "inside the input"),
    (
        "plot-snr-stats-text",
        _set("snr_stats", {"pearson": "high", "spearman": 0.5}),
        ["plot", "snr", T],
        2,
        "meta snr_stats.pearson is malformed",
    ),
    ("plot-snr-stats-list", _set("snr_stats", {"pearson": [0.5]}), ["plot", "snr", T], 2, "snr_stats.pearson"),
    (
        "plot-layers-text",
        lambda m: m["sparsity"].__setitem__("layers", {"Dense_0": {"remaining": "all"}}),
        ["plot", "layers", T],
        2,
        "meta sparsity.layers is malformed",
    ),
    (
        "surface-force-user-file",
        None,
        ["sharpness", "--2d", "--surface-out", "u/data.npz", "--force", T],
        2,
        "--force replaces only a surface eslt wrote",
    ),
    ("plot-out-newline", None, ["plot", "layers", "--out", "a\nb.png", T], 2, "line break"),
    *[(name, None, [*PEND, *options], 2, message) for name, options, message in REFUSED_SETTINGS],
    *[(name, None, [*VISION, *options], 2, message) for name, options, message in REFUSED_VISION],
    ("prune-seed-negative", None, ["prune", "--random", "--seed", "-1", T], 2, "--seed must be an integer in [0,"),
    ("prune-seed-huge", None, ["prune", "--random", "--seed", str(2**70), T], 2, "--seed must be an integer in [0,"),
    ("permute-seed-negative", None, ["permute", "--weights", "--seed", "-1", K], 2, "--seed must be an integer"),
    ("sharpness-seed-negative", None, ["sharpness", "--seed", "-1", T], 2, "--seed must be an integer in [0,"),
    ("sharpness-seed-huge", None, ["sharpness", "--seed", str(2**70), T], 2, "--seed must be an integer in [0,"),
    ("sharpness-radius-huge", None, ["sharpness", "--radius", "1e308", T], 2, "--radius must be a number in (0.0,"),
    ("sharpness-radius-nan", None, ["sharpness", "--radius", "nan", T], 2, "--radius must be a number in (0.0,"),
    ("sparsity-huge-int", _set("sparsity", {"global": 10**400}), ["show", T], 2, "sparsity.global must be a number"),
    (
        "metric-huge-int",
        lambda m: m["metrics"]["final"].__setitem__("metric", 10**400),
        ["show", T],
        2,
        "metrics.final",
    ),
]


@pytest.mark.parametrize("name, edit, argv, code, message", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_one_line_and_changes_nothing(world: Path, name, edit, argv, code, message) -> None:
    if edit is not None:
        edit_meta(world / T, edit)
    before = snapshot(world.parent)
    stdin = "x" * (2 << 20) if name == "stdin-huge" else None
    got, out, err = run_cli("-q", *argv, stdin=stdin)
    assert (got, out) == (code, ""), err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eslt: error:") and message in lines[0], err
    assert "unexpected" not in err
    assert snapshot(world.parent) == before


def test_arrays_that_do_not_fit_the_meta_network(world: Path) -> None:
    edit_meta(world / K, lambda m: m["model"].__setitem__("hidden", [16, 16]))
    before = snapshot(world.parent)
    code, out, err = run_cli("-q", "train", str(world / K))
    assert (code, out) == (2, "") and "do not fit" in err and len(err.splitlines()) == 1, err
    assert snapshot(world.parent) == before


@pytest.mark.parametrize("planted", ["fifo", "dev-zero", "state-metadata"])
def test_planted_files_in_a_checkpoint(world: Path, planted: str) -> None:
    meta = world / T / "meta" / "metadata"
    if planted == "fifo":
        meta.unlink()
        os.mkfifo(meta)
    elif planted == "dev-zero":
        meta.unlink()
        meta.symlink_to("/dev/zero")
    else:
        (world / T / "state" / "_METADATA").write_text("{broken")
    before = snapshot(world.parent)
    code, out, err = run_cli("-q", "prune", "--snr", str(world / T))
    assert (code, out) == (2, "") and len(err.splitlines()) == 1, err
    assert ("regular file" if planted != "state-metadata" else "unreadable state") in err
    assert snapshot(world.parent) == before


def test_planted_lock_symlink_is_not_followed(world: Path) -> None:
    victim = world / "u" / "thesis.tex"
    (world / f".{K.replace('magnitude', 'snr')}.lock").symlink_to(victim)
    code, out, err = run_cli("-q", "prune", "--snr", str(world / T))
    assert (code, out) == (1, "") and "symlink" in err and len(err.splitlines()) == 1, err
    assert victim.read_text() == "my thesis"
    assert not (world / "L01-snr").exists()


@needs_fashion
def test_a_failed_run_leaves_no_run_folder_or_lock(world: Path) -> None:
    code, _, err = run_cli("-q", "train", "--task", "fashion_mnist", *TINY_VISION, "--std-init", "1e38")
    assert code == 1 and "non-finite" in err, err
    assert not (world / "runs").exists(), list((world / "runs").rglob("*"))


def test_show_lists_the_good_checkpoints_beside_a_bad_one(world: Path) -> None:
    edit_meta(world / T, _set("level", "abc"))
    code, out, err = run_cli("show", str(world))
    assert code == 0 and out.split() == [str(world / K)], err
    assert "warning" in err and "level" in err


def test_empty_eslt_home_is_the_default_root(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESLT_HOME", "")
    code, out, err = run_cli("-q", "train", "--task", "pendulum", *TINY_CONTROL)
    assert code == 0, err
    assert Path(out.strip()).is_relative_to(world / "eslt-runs")


def test_force_replaces_an_eslt_checkpoint(world: Path) -> None:
    code, out, err = run_cli("-q", "prune", "--magnitude", "--force", str(world / T))
    assert code == 0 and out.strip() == str(world / K), err
    assert not list(world.glob(".*partial*")) and not list(world.glob(".*.lock"))


def test_a_retrained_parent_invalidates_its_children(world: Path) -> None:
    """Train level 0, prune it, re-train level 0 with other settings: the ticket is never reused."""
    old = json.loads((world / K / "meta" / "metadata").read_text())
    code, _, err = run_cli("-q", "train", "--task", "pendulum", *TINY_CONTROL[:-1], "3", "--out", str(world / T),
                           "--force")  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli("-q", "prune", "--magnitude", str(world / T))
    assert (code, out) == (2, "") and "content has changed" in err, err
    code, out, err = run_cli("-q", "prune", "--magnitude", "--force", str(world / T))
    assert code == 0, err
    new = json.loads((world / K / "meta" / "metadata").read_text())
    parent = json.loads((world / T / "meta" / "metadata").read_text())
    assert new["fingerprint"]["parent_digest"] == parent["digest"] != old["fingerprint"]["parent_digest"]
    code, _, err = run_cli("-q", "prune", "--magnitude", str(world / T))
    assert code == 0 and "up to date" not in err  # quiet; reused without a message
    assert json.loads((world / K / "meta" / "metadata").read_text()) == new


def test_json_lines_pipe_into_plot_and_lmc_reads_stdin(world: Path) -> None:
    code, line, err = run_cli("-q", "prune", "--snr", "--json", str(world / T))
    assert code == 0, err
    code, out, err = run_cli("-q", "plot", "snr", "--out", str(world / "snr.png"), stdin=line)
    assert code == 0 and Path(out.strip()) == world / "snr.png", err
    code, out, err = run_cli("-q", "plot", "snr", "--out", str(world / "snr.png"), "--force", stdin=line)
    assert code == 0, err  # an eslt figure may be replaced
    code, out, err = run_cli("-q", "lmc", "--points", "2", "-", str(world / T), stdin=str(world / T))
    assert code == 0 and json.loads(out)["barrier"] == 0.0, err


READ = {"x86_64": 0, "aarch64": 63}.get(platform.machine())  # the read(2) syscall's number


@pytest.mark.skipif(READ is None or not Path("/proc/self/syscall").exists(), reason="needs Linux /proc/PID/syscall")
def test_sigint_early_stops_with_130_and_writes_nothing(tmp_path: Path) -> None:
    """SIGINT before any work: eslt is blocked reading its input path from a pipe that stays open."""
    # SIGINT as at a terminal: a test run started in the background (`&`) ignores SIGINT, and eslt
    # keeps an ignored SIGINT ignored, as a background job should.
    proc = subprocess.Popen([str(REAL_ESLT), "prune", "--snr"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 120
    # Wait until the main thread sits in read(0, ...): imports done, handlers installed (no sleep guess).
    while not Path(f"/proc/{proc.pid}/syscall").read_text().startswith(f"{READ} 0x0 "):
        assert proc.poll() is None and time.monotonic() < deadline, "eslt never read its stdin"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and out == "" and err.strip().endswith("eslt: interrupted"), err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("redirect", [">/dev/full", ">&-"])
def test_a_full_or_closed_stdout_is_one_line(world: Path, redirect: str) -> None:
    proc = subprocess.run(f"{REAL_ESLT} -q prune --magnitude --force {world / T} {redirect}", shell=True,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eslt: error:"), proc.stderr
    assert proc.returncode == (1 if "full" in redirect else 2)


# Values a damaged or hostile meta might hold in any field.
HOSTILE = st.one_of(
    st.sampled_from(["", "../..", "a/b", "tfds:../../x", "x" * 5000, "\n", "nan"]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.just([]),
    st.just({}),
    st.just(["a", 1]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_meta_is_one_line_or_success(world0: Path, tmp_path: Path, data: st.DataObject) -> None:
    """Field by field, wrong types, out-of-range numbers, path-like strings, missing keys: never a traceback."""
    target = tmp_path / uuid.uuid4().hex
    shutil.copytree(world0 / T, target / T)
    meta = json.loads((target / T / "meta" / "metadata").read_text())
    section = data.draw(st.sampled_from([None, "task", "model", "trainer", "sparsity", "metrics"]))
    holder = meta if section is None else meta[section]
    key = data.draw(st.sampled_from(sorted(holder)))
    if data.draw(st.booleans()):
        holder.pop(key)
    else:
        holder[key] = data.draw(HOSTILE)
    (target / T / "meta" / "metadata").write_text(json.dumps(meta))
    argv = data.draw(st.sampled_from([["show"], ["prune", "--magnitude"], ["plot", "layers", "--out",
                                                                           str(target / "f.png")]]))  # fmt: skip
    code, out, err = run_cli("-q", *argv, str(target / T))
    assert code in (0, 2), err
    if code:
        assert out == "" and len(err.splitlines()) == 1 and err.startswith("eslt: error:"), err
        assert "unexpected" not in err, err


def test_plot_layers_of_a_meta_without_layers_is_one_line(world0: Path, tmp_path: Path) -> None:
    shutil.copytree(world0 / T, tmp_path / T)
    meta = json.loads((tmp_path / T / "meta" / "metadata").read_text())
    meta["sparsity"]["layers"] = {}  # found by the test above: it divided by zero
    (tmp_path / T / "meta" / "metadata").write_text(json.dumps(meta))
    code, out, err = run_cli("-q", "plot", "layers", "--out", str(tmp_path / "f.png"), str(tmp_path / T))
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "sparsity.layers" in err, err


@settings(max_examples=30, deadline=None)
@given(record=st.dictionaries(st.sampled_from(["kind", "alpha", "error", "barrier", "level", "loss", "a", "b",
                                                "task", "curvature", "sparsity", "trainer"]), HOSTILE))  # fmt: skip
def test_malformed_json_lines_for_plot_are_one_line(record: dict, tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tmp_path_factory.mktemp("plot") / "f.png"
    for kind in ("lmc", "sharpness"):
        code, stdout, err = run_cli("-q", "plot", kind, "--out", str(out), "--force",
                                    stdin=json.dumps({"kind": kind, **record}) + "\n")  # fmt: skip
        assert code in (0, 2) and len(err.splitlines()) <= 1, err
        assert "unexpected" not in err, err


def test_an_unwritable_jax_cache_is_skipped_quietly(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESLT_JAX_CACHE", str(world / "afile" / "cache"))  # below a plain file: cannot exist
    code, out, err = run_cli("prune", "--magnitude", "--force", str(world / T))
    assert code == 0 and out.strip() == str(world / K), err
    assert "cache" not in err.lower() and "warning" not in err.lower(), err


def test_partial_writes_left_by_a_killed_save_are_removed(world: Path) -> None:
    stale = world / ".L01-magnitude.partial-deadbeef.orbax-checkpoint-tmp-1712"
    (stale / "state").mkdir(parents=True)
    code, _, err = run_cli("-q", "prune", "--magnitude", "--force", str(world / T))
    assert code == 0, err
    assert not stale.exists() and not list(world.glob(".L01-magnitude.*"))


# Issue 23: validate before writing; a failed command leaves nothing behind; paths exactly as given.


@pytest.mark.parametrize(
    "argv, message",
    [([*PEND, *options], message) for _, options, message in REFUSED_SETTINGS]
    + [([*VISION, *options], message) for _, options, message in REFUSED_VISION],
    ids=[name for name, _, _ in REFUSED_SETTINGS + REFUSED_VISION],
)
def test_dry_run_refuses_what_the_run_refuses(world: Path, argv: list[str], message: str) -> None:
    """`train --dry-run` runs the run's own checks: the same line, and nothing written by either."""
    before = snapshot(world.parent)
    dry = run_cli("-q", *argv, "--dry-run")
    real = run_cli("-q", *argv)
    assert dry == real and dry[:2] == (2, "") and message in dry[2] and len(dry[2].splitlines()) == 1, (dry, real)
    assert snapshot(world.parent) == before


def test_a_bad_eslt_home_is_named(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESLT_HOME", str(world / "afile" / "runs"))
    before = snapshot(world.parent)
    for extra in ([], ["--dry-run"]):
        code, out, err = run_cli("-q", *PEND, *extra)
        assert (code, out) == (2, "") and len(err.splitlines()) == 1, err
        assert f"ESLT_HOME {world / 'afile' / 'runs'} is not a folder" in err and ".lock" not in err, err
    assert snapshot(world.parent) == before


@pytest.mark.parametrize("argv", [["prune", "--magnitude"], ["prune", "--random", "--out", "elsewhere"],
                                  ["permute", "--mask"], ["train"]])  # fmt: skip
def test_an_input_path_holding_a_line_break_derives_nothing(world: Path, argv: list[str]) -> None:
    """Its children could not record it as their parent: refused before anything is written (it used
    to write an unreadable checkpoint that every re-run then refused)."""
    source = world / ("a\nb" if argv[0] == "prune" else "c\nd")
    shutil.copytree(world / (T if argv[0] == "prune" else K), source)
    before = snapshot(world.parent)
    code, out, err = run_cli("-q", *argv, str(source))
    assert (code, out) == (2, "") and len(err.splitlines()) == 1 and "holds a line break" in err, err
    assert snapshot(world.parent) == before


def test_a_ticket_whose_meta_would_not_read_back_is_not_written(world: Path) -> None:
    """The last guard: what eslt writes passes its own meta checks first, or nothing is written."""
    from eslt_cli import checkpoint, tickets
    from eslt_cli.errors import RunFailed

    parent, ticket = checkpoint.load(world / T), checkpoint.load(world / K)
    meta = {k: v for k, v in ticket.meta.items() if k not in ("schema", "eslt_version", "digest")}
    before = snapshot(world.parent)
    with pytest.raises(RunFailed, match="would not read back"):
        tickets.write_ticket(parent, world / "bad", {"op": "test"}, dict(ticket.state), {**meta, "seed": -1})
    assert snapshot(world.parent) == before


def test_an_integer_too_long_to_read_is_one_line_and_show_skips_it(world: Path) -> None:
    """5000 digits: past Python's int-string limit, which json.loads enforces with a ValueError."""
    file = world / T / "meta" / "metadata"
    file.write_text(file.read_text().replace('"seed": 0', '"seed": ' + "9" * 5000, 1))
    before = snapshot(world.parent)
    code, out, err = run_cli("-q", "show", str(world / T))
    assert (code, out) == (2, "") and len(err.splitlines()) == 1 and "integer too long" in err, err
    code, out, err = run_cli("show", str(world))
    assert code == 0 and out.split() == [str(world / K)], err
    assert "integer too long" in err and "(skipped)" in err and "unexpected" not in err, err
    assert snapshot(world.parent) == before


def test_piped_paths_are_taken_exactly_as_written(world: Path) -> None:
    """`eslt train --out 'W/ck ' | eslt prune` prunes 'W/ck ', not a 'W/ck' that happens to exist."""
    shutil.copytree(world / T, world / "ck ")
    shutil.copytree(world / K, world / "ck")  # a ticket: pruning it would fail
    for n, line in enumerate([f"{world / 'ck '}\n", json.dumps({"path": str(world / "ck ")}) + "\n",
                              f"\n\n{world / 'ck '}\n\n"]):  # fmt: skip
        code, out, err = run_cli("-q", "prune", "--magnitude", "--out", str(world / f"p{n}"), stdin=line)
        assert (code, out.strip()) == (0, str(world / f"p{n}")), err
        assert json.loads((world / f"p{n}" / "meta" / "metadata").read_text())["parent"] == "ck "
    shutil.copytree(world / T, world / "only ")  # and no "only" beside it
    code, out, err = run_cli(
        "plot", "layers", "--json", "--out", str(world / "layers.png"), stdin=f"{world / 'only '}\n"
    )
    assert code == 0 and json.loads(out)["inputs"]["checkpoints"] == 1, err
    before = snapshot(world.parent)
    code, out, err = run_cli("-q", "prune", "--magnitude", "--out", str(world / "p9"), stdin=f"{world / T}\r\n")
    assert (code, out) == (2, "") and len(err.splitlines()) == 1 and "carriage return" in err, err
    assert snapshot(world.parent) == before


def test_show_never_prints_a_path_holding_a_line_break(world: Path) -> None:
    shutil.copytree(world / T, world / "a\nb")
    before = snapshot(world.parent)
    code, out, err = run_cli("-q", "show", str(world / "a\nb"))
    assert (code, out) == (2, "") and len(err.splitlines()) == 1 and "line break" in err, err
    code, out, err = run_cli("show", str(world))
    assert code == 0 and out.splitlines() == [str(world / T), str(world / K)], err
    assert "line break" in err, err
    code, out, err = run_cli("-q", "show", "--json", str(world / "a\nb"))
    assert code == 0 and json.loads(out)["path"] == str(world / "a\nb"), err
    assert snapshot(world.parent) == before


def test_out_of_memory_in_training_is_one_line_and_leaves_nothing(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the memory estimate (a lower bound) lets a run through that XLA cannot fit (the 34.5 GB it asked
    for at --batch-size 1000000 on a host with more than the estimate's 28.2 GB)."""
    import jax

    from eslt_cli import trainers

    def out_of_memory(*args, **kwargs):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 34506276608 bytes.")

    monkeypatch.setattr(trainers, "get", lambda name: out_of_memory)
    before = snapshot(world.parent)
    code, out, err = run_cli("-q", *PEND)
    assert (code, out) == (1, "") and len(err.splitlines()) == 1 and "out of memory (RESOURCE_EXHAUSTED" in err, err
    assert snapshot(world.parent) == before
