"""``eslt plot``: every kind renders from real checkpoints or synthetic records; bad input is one line, exit 2."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CONTROL, eslt, run_cli

from eslt_cli.figures import FIGURES, drawing, labels
from eslt_cli.figures import inputs as figure_inputs
from eslt_cli.figures import lmc as lmc_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_inprocess(*args: str) -> str:
    """``eslt -q ARGS`` in-process for module-scoped fixtures (the ``cli`` fixture is per test): its stdout."""
    code, out, err = run_cli("-q", *args)
    assert code == 0, f"eslt {' '.join(args)} exited {code}: {err}"
    return out.strip()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Pendulum, seeds 0 and 1: dense, then snr and random arms one level up (trained), and an L02-snr ticket."""
    root = tmp_path_factory.mktemp("runs")
    out: dict[str, Path] = {"root": root}
    for seed in (0, 1):
        dense = run_inprocess("train", "--task", "pendulum", "--seed", str(seed), *TINY_CONTROL, "--root", str(root))
        out[f"dense{seed}"] = Path(dense)
        for arm in ("snr", "random"):
            ticket = run_inprocess("prune", f"--{arm}", dense)
            out[f"{arm}{seed}"] = Path(run_inprocess("train", ticket))
        out[f"ticket{seed}"] = Path(run_inprocess("prune", "--snr", str(out[f"snr{seed}"])))
    return out


def lmc_records(cross_level: bool) -> list[dict]:
    """Synthetic ``eslt lmc`` lines: same seed across level pairs, or run-vs-run pairs per level."""
    alpha = np.linspace(0.0, 1.0, 11)
    recs = []
    if cross_level:
        pairs = [((la, lb), ("snes", "snes"), (0, 0)) for la in range(4) for lb in range(la, 4)]
    else:
        pairs = [((lv, lv), s, (0, 1)) for lv in range(4) for s in (("snes", "snes"), ("snes", "gd"))]
    for (la, lb), strategies, seeds in pairs:
        bump = 0.05 * (1 + abs(lb - la)) * (1.5 if strategies[1] == "gd" else 1.0)
        error = 0.2 + bump * np.sin(np.pi * alpha)
        recs.append({
            "kind": "lmc", "a": f"/runs/s{seeds[0]}/L{la:02d}", "b": f"/runs/s{seeds[1]}/L{lb:02d}", "which": "final",
            "task": "fashion_mnist", "levels": [la, lb], "sparsity": [1 - 0.8**la, 1 - 0.8**lb],
            "strategies": list(strategies), "seeds": list(seeds), "alpha": alpha.tolist(), "error": error.tolist(),
            "loss": (2 * error).tolist(), "metric": (1 - error).tolist(), "error_of": "accuracy",
            "barrier_definition": "frankle2020", "barrier": bump, "barrier_linear": bump,
        })  # fmt: skip
    return recs


def write_surface(path: Path, sharp: float = 1.0, flat: bool = False) -> Path:
    alpha, beta = np.linspace(-1, 1, 9), np.linspace(-1, 1, 7)
    loss = sharp * alpha[:, None] ** 2 + 0.5 * beta[None, :] ** 2 + 0.3
    if flat:  # a 1D profile only: not a surface
        np.savez(path, alpha=alpha, loss=loss[:, 0])
    else:
        np.savez(path, alpha=alpha, beta=beta, loss=loss, metric=1 - loss / 3)
    return path


def sharpness_records(folder: Path | None = None) -> list[dict]:
    """Synthetic ``eslt sharpness`` lines for ES and GD over four levels; with ``folder``, 2D surfaces too."""
    t = np.linspace(-1.0, 1.0, 11)
    recs = []
    for level in range(4):
        for trainer, strategy, growth in (("es", "snes", 1.2), ("gd", None, 3.0)):
            curv = [growth**level * (1 + 0.1 * d) for d in range(3)]
            surface = None
            if folder is not None and level in (0, 3):
                surface = str(write_surface(folder / f"{trainer}-L{level}.npz", sharp=curv[0]))
            recs.append({
                "kind": "sharpness", "checkpoint": f"/runs/L{level:02d}-{trainer}", "task": "fashion_mnist",
                "level": level, "sparsity": 1 - 0.8**level, "strategy": strategy,
                "trainer": {"name": trainer, "strategy": strategy}, "which": "final", "radius": 1.0, "t": t.tolist(),
                "loss": [(0.3 + c / 2 * t**2).tolist() for c in curv], "curvature": curv,
                "curvature_mean": float(np.mean(curv)), "curvature_std": float(np.std(curv)), "directions_from": None,
                "surface": surface,
            })  # fmt: skip
    return recs


def jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def assert_png(path: Path, min_bytes: int = 5000) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > min_bytes, (path, len(data))


@pytest.mark.parametrize("kind", ["sparsity", "layers", "snr", "curves"])
def test_checkpoint_kinds_render_from_a_runs_folder(cli, runs, tmp_path: Path, kind: str) -> None:
    out = tmp_path / f"{kind}.png"
    code, stdout, err = cli("plot", kind, str(runs["root"]), "--out", str(out))
    assert code == 0, err
    assert stdout == f"{out}\n"  # stdout is exactly the figure's path
    assert_png(out)
    hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert hidden == [f".{kind}.png.eslt"]  # its record (for --force), no temporary left behind


def test_sparsity_best_svg_pdf_and_paths_on_stdin(cli, runs, tmp_path: Path) -> None:
    piped = "\n".join(str(runs[k]) for k in ("dense0", "dense1", "snr0", "snr1", "random0", "random1"))
    code, stdout, err = cli("plot", "sparsity", "--which", "best", "--out", str(tmp_path / "s.svg"), stdin=piped)
    assert code == 0, err
    assert (tmp_path / "s.svg").read_text().lstrip().startswith("<?xml")
    code, _, err = cli("plot", "curves", str(runs["snr0"]), str(runs["snr0"]), "--out", str(tmp_path / "c.pdf"))
    assert code == 0 and (tmp_path / "c.pdf").read_bytes()[:5] == b"%PDF-"
    assert "1 checkpoints" in err  # the same checkpoint given twice is drawn once


def test_dash_reads_stdin_besides_arguments(cli, runs, tmp_path: Path) -> None:
    out = tmp_path / "snr.png"
    code, _, err = cli("plot", "snr", str(runs["ticket0"]), "-", "--out", str(out), stdin=f"{runs['ticket1']}\n")
    assert code == 0 and "2 checkpoints" in err, err
    assert_png(out)


def test_default_out_is_kind_png_in_the_current_folder(cli, runs, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = cli("plot", "layers", str(runs["root"]))
    assert code == 0 and Path(stdout.strip()) == tmp_path / "layers.png"
    assert_png(tmp_path / "layers.png")


def test_collect_reads_meta_of_every_checkpoint_once(runs) -> None:
    inputs = figure_inputs.collect([str(runs["root"]), str(runs["snr0"])])
    assert len(inputs.checkpoints) == 12  # 2 seeds x (dense + 2 tickets + 2 trained + 1 L02 ticket)
    snr = [c for c in inputs.checkpoints if c.meta.snr_stats]
    assert {c.meta.level for c in snr} == {1, 2}


@pytest.mark.parametrize("cross_level", [True, False])
def test_lmc_heatmap_and_barrier_vs_level(cli, tmp_path: Path, cross_level: bool) -> None:
    recs = lmc_records(cross_level)
    out = tmp_path / "lmc.png"
    code, stdout, err = cli("plot", "lmc", "--out", str(out), stdin="".join(json.dumps(r) + "\n" for r in recs))
    assert code == 0, err
    assert_png(out)
    out2 = tmp_path / "lmc2.png"
    code, _, err = cli("plot", "lmc", str(jsonl(tmp_path / "lmc.jsonl", recs)), "--out", str(out2))
    assert code == 0, err
    assert_png(out2)


def old_lmc_record(curve: bool = True) -> dict:
    """An ``eslt lmc`` line from before ``barrier_definition``: ``barrier`` was the rise above the chord."""
    rec = dict(lmc_records(cross_level=True)[1], error=[0.1, 0.6, 0.3, 0.3, 0.3], alpha=[0.0, 0.25, 0.5, 0.75, 1.0])
    del rec["barrier_definition"], rec["barrier_linear"]
    rec["barrier"] = 0.45  # max err(α) − [err(0) + α·(err(1) − err(0))]
    if not curve:
        del rec["alpha"], rec["error"]
    return rec


def test_lmc_plots_the_frankle_barrier_and_converts_old_records(cli, tmp_path: Path) -> None:
    new = lmc_records(cross_level=True)[0]
    assert lmc_figure.barrier_record(new) == new
    converted = lmc_figure.barrier_record(old_lmc_record())
    # Frankle et al. (2020): 0.6 − (0.1 + 0.3) / 2; the old value is kept as barrier_linear.
    assert converted["barrier"] == pytest.approx(0.4) and converted["barrier_linear"] == 0.45
    assert converted["barrier_definition"] == "frankle2020"
    out = tmp_path / "old.png"
    code, _, err = cli("plot", "lmc", str(jsonl(tmp_path / "old.jsonl", [*lmc_records(True), old_lmc_record()])),
                       "--out", str(out))  # fmt: skip
    assert code == 0, err
    assert_png(out)


def test_sharpness_and_surface(cli, tmp_path: Path) -> None:
    recs = sharpness_records(tmp_path)
    records = jsonl(tmp_path / "sharp.jsonl", recs)
    code, _, err = cli("plot", "sharpness", str(records), "--out", str(tmp_path / "sharp.png"))
    assert code == 0, err
    assert_png(tmp_path / "sharp.png")
    code, _, err = cli("plot", "surface", str(records), "--out", str(tmp_path / "surf.png"))
    assert code == 0, err
    assert_png(tmp_path / "surf.png")
    code, _, err = cli("plot", "surface", str(tmp_path / "es-L0.npz"), "--out", str(tmp_path / "one.png"))
    assert code == 0, err
    assert_png(tmp_path / "one.png")


def test_surface_path_relative_to_the_records_file(cli, tmp_path: Path, monkeypatch) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    write_surface(sub / "s.npz")
    rec = dict(sharpness_records()[0], surface="s.npz")
    records = jsonl(sub / "r.jsonl", [rec])
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("plot", "surface", str(records), "--out", str(tmp_path / "rel.png"))
    assert code == 0, err


def test_real_pipe_of_json_lines_into_plot(tmp_path: Path) -> None:
    """The console script reads JSON lines from a pipe until end-of-file (in-process tests hand it a string)."""
    recs = lmc_records(cross_level=False)
    out = tmp_path / "piped.png"
    proc = eslt("plot", "lmc", "--out", str(out), stdin="".join(json.dumps(r) + "\n" for r in recs))
    assert proc.stdout == f"{out}\n"
    assert_png(out)


BAD = [
    # (args, stdin, message); {root}: runs folder, {x}: test paths
    (["plot", "surface", "{root}"], None, "surface needs a 2D grid: run `eslt sharpness --2d"),
    (["plot", "surface", "{sharp_no_surface}"], None, "surface needs a 2D grid"),
    (["plot", "surface", "{flat_npz}"], None, "surface needs a 2D grid"),
    (["plot", "snr", "{dense0}", "{dense1}"], None, "snr needs tickets made by `eslt prune`"),
    (["plot", "sparsity", "{lmc}"], None, "sparsity needs trained checkpoints"),
    (["plot", "sparsity", "{ticket0}"], None, "sparsity needs trained checkpoints"),
    (["plot", "curves", "{ticket0}"], None, "curves needs trained checkpoints"),
    (["plot", "layers", "{lmc}"], None, "layers needs checkpoints"),
    (["plot", "lmc", "{root}"], None, "lmc needs `eslt lmc` output"),
    (["plot", "sharpness", "{lmc}"], None, "sharpness needs `eslt sharpness` output"),
    (["plot", "nope", "{root}"], None, "unknown plot kind 'nope': choose one of sparsity"),
    (["plot", "sparsity", "{root}", "--out", "{tmp}/fig.jpg"], None, "end the name with .png, .svg or .pdf"),
    (["plot", "sparsity", "{root}", "--out", "{existing}"], None, "exists: pass --force"),
    (["plot", "sparsity", "{root}", "--which", "last"], None, "choose final or best"),
    (["plot", "sparsity"], None, "no inputs: sparsity needs"),
    (["plot", "sparsity"], "\n", "no inputs"),
    (["plot", "sparsity", "/nonexistent/runs"], None, "no such file or folder"),
    (["plot", "sparsity", "{tmp}/empty"], None, "no eslt checkpoints"),
    (["plot", "lmc", "{garbage}"], None, "not JSON lines"),
    (["plot", "lmc"], "{{not json\n", "not a JSON object"),
    (["plot", "lmc", "{tmp}/notes.txt"], None, "not a checkpoint, folder, .jsonl/.json"),
    (["plot", "lmc", "{old_lmc}"], None, "predates barrier_definition (its barrier is the old linear-baseline one)"),
    (["plot", "lmc", "{future_lmc}"], None, "has barrier_definition 'v3', not 'frankle2020'"),
    # file inputs: regular files only (a FIFO would block for ever, /dev/zero never end)
    (["plot", "lmc", "{tmp}/fifo.jsonl"], None, "fifo.jsonl is a FIFO, device or socket, not a regular file"),
    (["plot", "lmc", "{tmp}/zero.jsonl"], None, "zero.jsonl is a FIFO, device or socket, not a regular file"),
    (["plot", "surface", "{tmp}/fifo.npz"], None, "fifo.npz is not a regular file"),
    (["plot", "lmc"], "{tmp}/fifo.jsonl\n", "fifo.jsonl is a FIFO, device or socket"),
    # non-finite values in records: refused by name, never dropped silently
    (["plot", "lmc", "{nan_lmc}"], None, "nan.jsonl record 2: lmc record field 'barrier' holds NaN"),
    (
        ["plot", "lmc"],
        '{{"kind": "lmc", "levels": [1, 1], "barrier": Infinity}}\n',
        "stdin line 1: lmc record field 'barrier' holds Infinity",
    ),
    (["plot", "sharpness", "{inf_sharp}"], None, "record 1: sharpness record field 'curvature' holds -Infinity"),
    (
        ["plot", "sharpness"],
        '{{"kind": "sharpness", "t": [0, 1, 2], "loss": [[1, 2]]}}\n',
        "sharpness record has 3 steps t but 2 losses per direction",
    ),
    # a record without the fields of an `eslt lmc` line: named by where it was read, not "None vs None"
    (["plot", "lmc", "{bare_lmc}"], None, "bare.jsonl record 1: lmc record has no levels"),
]


@pytest.mark.parametrize("args, stdin, message", BAD)
def test_bad_input_one_line_exit_2_nothing_written(cli, runs, tmp_path: Path, args, stdin, message) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "existing.png").write_bytes(b"keep")
    (tmp_path / "garbage.jsonl").write_text("{not json\n")
    lmc = lmc_records(True)
    os.mkfifo(tmp_path / "fifo.jsonl")
    os.mkfifo(tmp_path / "fifo.npz")
    (tmp_path / "zero.jsonl").symlink_to("/dev/zero")
    fill = {
        "root": str(runs["root"]), "tmp": str(tmp_path), "dense0": str(runs["dense0"]), "dense1": str(runs["dense1"]),
        "ticket0": str(runs["ticket0"]), "lmc": str(jsonl(tmp_path / "lmc.jsonl", lmc_records(True))),
        "sharp_no_surface": str(jsonl(tmp_path / "s.jsonl", sharpness_records())),
        "flat_npz": str(write_surface(tmp_path / "flat.npz", flat=True)), "existing": str(tmp_path / "existing.png"),
        "garbage": str(tmp_path / "garbage.jsonl"),
        "old_lmc": str(jsonl(tmp_path / "old.jsonl", [old_lmc_record(curve=False)])),
        "future_lmc": str(jsonl(tmp_path / "v3.jsonl", [dict(lmc_records(True)[0], barrier_definition="v3")])),
        "nan_lmc": str(jsonl(tmp_path / "nan.jsonl", [lmc[0], dict(lmc[1], barrier=math.nan)])),
        "inf_sharp": str(jsonl(tmp_path / "inf.jsonl", [dict(sharpness_records()[0], curvature=[1.0, -math.inf])])),
        "bare_lmc": str(jsonl(tmp_path / "bare.jsonl", [{"kind": "lmc"}])),
    }  # fmt: skip
    before = sorted(p.name for p in tmp_path.iterdir())
    out_args = [] if "--out" in args else ["--out", str(tmp_path / "fig.png")]
    signal.alarm(60)  # a blocking read fails the test instead of hanging it
    try:
        code, stdout, err = cli(*[a.format(**fill) for a in args], *out_args,
                                stdin=None if stdin is None else stdin.format(**fill))  # fmt: skip
    finally:
        signal.alarm(0)
    assert code == 2, err
    assert stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eslt: error: "), err
    assert message in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no figure, no temporary
    assert (tmp_path / "existing.png").read_bytes() == b"keep"


def test_force_replaces_only_an_unchanged_figure_eslt_drew(cli, tmp_path: Path) -> None:
    """--force is proven by content: the SHA-256 in the figure's hidden record, not a mark the file may contain."""
    out = tmp_path / "lmc.png"
    record = tmp_path / ".lmc.png.eslt"
    stdin = "".join(json.dumps(r) + "\n" for r in lmc_records(True))
    assert cli("plot", "lmc", "--out", str(out), stdin=stdin)[0] == 0
    assert json.loads(record.read_text())["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    first = out.read_bytes()
    code, _, err = cli("plot", "lmc", "--out", str(out), "--force", stdin=stdin)  # unchanged: replaced
    assert code == 0, err
    assert_png(out)
    for name, content, why in [
        ("edited", first + b"x", "has changed since eslt wrote it"),  # still carries eslt's mark
        ("user's", b"\x89PNG a user's picture eslt-figure", "has changed since eslt wrote it"),
    ]:
        out.write_bytes(content)
        code, stdout, err = cli("plot", "lmc", "--out", str(out), "--force", stdin=stdin)
        assert (code, stdout) == (2, "") and why in err and "rm " in err and len(err.splitlines()) == 1, (name, err)
        assert out.read_bytes() == content
    record.unlink()  # a figure from before the records (or a user's file beside none)
    code, _, err = cli("plot", "lmc", "--out", str(out), "--force", stdin=stdin)
    assert code == 2 and "has no record of eslt writing it" in err and out.read_bytes() == content, err
    record.write_text("my notes")  # a file in the record's place that eslt did not write
    out.unlink()
    code, _, err = cli("plot", "lmc", "--out", str(out), stdin=stdin)
    assert code == 2 and "not a record eslt wrote" in err and record.read_text() == "my notes", err


def test_registry_functions_share_one_signature(tmp_path: Path) -> None:
    import inspect

    signatures = {str(inspect.signature(f.draw)) for f in FIGURES.values()}
    assert len(signatures) == 1
    assert set(FIGURES) == {"sparsity", "lmc", "sharpness", "surface", "layers", "snr", "curves"}


def test_a_level_0_starts_only_the_arms_of_its_own_optimiser() -> None:
    recs = [{"s": "adam", "arm": "magnitude"}, {"s": "snes", "arm": "snr"}, {"s": "adam", "arm": "dense"}]
    arms = labels.arms_by(recs, lambda r: r["s"], lambda r: r["arm"])
    assert arms == {"adam": ["magnitude"], "snes": ["snr"]}
    assert labels.arm_groups("adam", "dense", arms) == ["adam magnitude"]  # not "adam snr" too
    assert labels.arm_groups("snes", "snr", arms) == ["snes snr"]
    assert labels.arm_groups("ars", None, arms) == ["ars magnitude", "ars snr"]  # a base without arms: all


def _copy_with(src: Path, dst: Path, change) -> Path:
    """A copy of checkpoint ``src`` at ``dst`` with its meta changed (JSON NaN/Infinity as json.dumps writes them)."""
    shutil.copytree(src, dst)
    meta_file = dst / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    change(meta)
    meta_file.write_text(json.dumps(meta))
    return dst


def test_non_finite_metrics_are_named_and_marked_not_dropped(cli, runs, tmp_path: Path, monkeypatch) -> None:
    marks: list[tuple[list[float], str]] = []
    real = drawing.mark_non_finite

    def spy(ax, xs, label):
        if xs:
            marks.append((list(xs), label))
        real(ax, xs, label)

    monkeypatch.setattr(drawing, "mark_non_finite", spy)
    nan = _copy_with(runs["snr0"], tmp_path / "nan", lambda m: m["metrics"]["final"].__setitem__("metric", math.nan))
    inf = _copy_with(runs["random1"], tmp_path / "inf", lambda m: m["metrics"]["final"].__setitem__("metric", math.inf))
    code, out, err = cli("plot", "sparsity", str(runs["dense0"]), str(runs["snr1"]), str(nan), str(inf),
                         "--out", str(tmp_path / "s.png"))  # fmt: skip
    assert code == 0 and out == f"{tmp_path / 's.png'}\n", err
    warnings = [line for line in err.splitlines() if line.startswith("eslt: warning:")]
    assert len(warnings) == 2, err
    assert f"{nan}: final test metric is NaN (pendulum snes snr level 1 seed 0)" in warnings[0] + warnings[1]
    assert f"{inf}: final test metric is Infinity (pendulum snes random level 1 seed 1)" in warnings[0] + warnings[1]
    assert [(sorted(round(x) for x in xs), label.split()[0]) for xs, label in marks] == [([80, 80], "final")]
    assert_png(tmp_path / "s.png")
    marks.clear()  # every run non-finite: still a figure showing them, never an empty one
    code, _, err = cli("plot", "sparsity", str(nan), "--out", str(tmp_path / "only.png"))
    assert code == 0 and "final test metric is NaN" in err and len(marks) == 1, err


def test_undefined_snr_correlations_are_named_and_marked(cli, runs, tmp_path: Path, monkeypatch) -> None:
    marks: list[list[float]] = []
    real = drawing.mark_non_finite
    monkeypatch.setattr(drawing, "mark_non_finite", lambda ax, xs, label: (xs and marks.append(list(xs)),
                                                                           real(ax, xs, label)))  # fmt: skip
    nan = _copy_with(runs["ticket0"], tmp_path / "t", lambda m: m["snr_stats"].__setitem__("pearson", math.nan))
    code, _, err = cli("plot", "snr", str(nan), str(runs["ticket1"]), "--out", str(tmp_path / "snr.png"))
    assert code == 0, err
    assert f"eslt: warning: {nan}: snr_stats.pearson is NaN (pendulum snes snr level 2 seed 0)" in err
    assert "spearman" not in err and marks == [[2]]  # the Pearson panel only


def figure_inputs_by_source(runs: dict[str, Path], folder: Path) -> dict[str, list[str]]:
    """A sample of every kind of input a figure reads (:data:`eslt_cli.figures.Source`)."""
    return {
        "checkpoints": [str(runs["root"])],
        "lmc": [str(jsonl(folder / "lmc.jsonl", lmc_records(cross_level=True)))],
        "sharpness": [str(jsonl(folder / "sharp.jsonl", sharpness_records(folder)))],
        "surfaces": [str(write_surface(folder / "direct.npz"))],
    }


@pytest.mark.parametrize("kind", list(FIGURES))
def test_every_registered_figure_draws_from_the_cli_with_its_inputs(cli, runs, tmp_path: Path, kind: str) -> None:
    from typing import get_args

    from eslt_cli.figures import Source

    samples = figure_inputs_by_source(runs, tmp_path)
    assert set(samples) == set(get_args(Source))  # a new kind of input needs a sample here
    figure = FIGURES[kind]
    out = tmp_path / f"{kind}.png"
    code, stdout, err = cli("plot", kind, *(p for source in figure.reads for p in samples[source]), "--out", str(out),
                            "--json")  # fmt: skip
    assert code == 0, err
    line = json.loads(stdout)
    assert (line["path"], line["kind"], line["reads"]) == (str(out), kind, list(figure.reads))
    assert line["drawn"] > 0 and line["series"] and line["panels"], line
    assert_png(out)
    code, stdout, _ = cli("plot", "--help")
    assert code == 0 and kind in stdout and figure.needs in " ".join(stdout.split())


def test_plot_json_is_one_line_with_what_was_drawn(cli, runs, tmp_path: Path) -> None:
    out = tmp_path / "curves.svg"
    code, stdout, err = cli("plot", "curves", str(runs["snr0"]), str(runs["random0"]), str(runs["ticket0"]),
                            "--out", str(out), "--json")  # fmt: skip
    assert code == 0 and stdout.count("\n") == 1, err
    assert json.loads(stdout) == {
        "path": str(out), "kind": "curves", "format": "svg", "reads": ["checkpoints"],
        "inputs": {"checkpoints": 3, "records": 0, "surfaces": 0}, "drawn": 2,  # the ticket has no history
        "series": ["L1 random s0", "L1 snr s0"],
        "panels": ["ES population during training", "Test evaluation of the ES mean"], "warnings": 0,
    }  # fmt: skip
    nan = _copy_with(runs["snr0"], tmp_path / "nan", lambda m: m["metrics"]["final"].__setitem__("metric", math.nan))
    code, stdout, err = cli("plot", "sparsity", str(runs["dense0"]), str(nan), "--out", str(tmp_path / "s.png"),
                            "--json")  # fmt: skip
    line = json.loads(stdout)
    assert code == 0 and line["warnings"] == err.count("eslt: warning:") == 1, err
    assert (line["drawn"], line["series"]) == (2, ["dense"])  # the NaN run is a mark, not a line


def test_the_command_line_imports_no_plotting_library() -> None:
    """`eslt show`, `eslt prune` and the help import the figure registry, never matplotlib (start-up time)."""
    code = ("import sys; import eslt_cli.cli, eslt_cli.figures; "
            "print(sorted(m for m in ('matplotlib', 'numpy', 'jax') if m in sys.modules))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
