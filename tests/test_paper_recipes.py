"""examples/paper/*.sh, one recipe per figure and table of the paper.

Smoke: every recipe runs end to end in a real bash subprocess at ESLT_SMOKE=1 (one seed, one
level, tiny settings, fast tasks in place of brax and tfds ones), all of them on one runs root,
so later recipes reuse what earlier ones trained, as on a GPU host. This checks the recipes'
wiring (sweeps, transfers, analyses, plots) with the real eslt, not the science. Compilation
dominates such tiny runs; XLA's expensive passes are skipped, as in tests/test_brax.py.

Paper mode (`--preset paper`, the GPU settings) cannot train here; it runs with a stand-in eslt
that records its arguments and makes the folders eslt would, at 2 levels and 1 seed, to check the
commands the recipes give on a GPU host.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import FASHION, REAL_ESLT, eslt_path

PAPER = Path(__file__).resolve().parents[1] / "examples" / "paper"
# Each recipe and the files its smoke run must leave in ROOT/figures, in figure order.
EXPECTED = {
    "fig1.sh": ["fig1-imp-es-vs-gd.png"],
    "fig2.sh": ["fig2-tickets.png"],
    "fig3.sh": ["fig3-es-vs-gd.png"],
    "fig4.sh": ["fig4-tasks.png", "fig4-es.png"],
    "fig5.sh": ["fig5-es-to-gd.png"],
    "fig6.sh": ["fig6-lmc.png", "fig6-lmc-es-vs-gd.png", "fig6-sharpness.png"],
    "fig7.sh": ["fig7-snr.png", "fig7-imp.png"],
    "table1.sh": ["table1.md"],
    "a3_surfaces.sh": ["a3-surfaces.png"],
}  # fmt: skip
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"

pytestmark = pytest.mark.skipif(not FASHION.exists(), reason="apt-get install dataset-fashion-mnist")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runs root that every recipe of this module shares."""
    return tmp_path_factory.mktemp("paper")


def run(script: str, root: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPER_") and k != "ESLT_SMOKE"}
    env.update(
        ESLT_SMOKE="1",
        ESLT_HOME=str(root),
        PAPER_ROOT=str(root),
        ESLT=str(REAL_ESLT),
        PATH=eslt_path(),
        XLA_FLAGS=f"{env.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip(),
    )  # ESLT_JAX_CACHE: the tests' shared cache, set by conftest
    env.update(extra)
    return subprocess.run(
        ["bash", str(PAPER / script)], capture_output=True, text=True, timeout=900, env=env, check=False
    )


def test_every_recipe_is_tested_and_documented() -> None:
    scripts = sorted(p.name for p in PAPER.glob("*.sh") if p.name != "common.sh")
    assert scripts == sorted(EXPECTED)
    for name in scripts:
        header = "\n".join(line for line in (PAPER / name).read_text().splitlines()[:40] if line.startswith("#"))
        assert re.search(r"\b(Figure|Table|Appendix) ", header), name
        assert "ESTIMATE" in header and "no GPU measurement exists yet" in header, name
        assert "Smoke (ESLT_SMOKE=1)" in header, name
        assert os.access(PAPER / name, os.X_OK), name


@pytest.mark.parametrize("script", list(EXPECTED))
def test_recipe_smoke(script: str, root: Path) -> None:
    proc = run(script, root)
    log = root / "paper.log"
    assert proc.returncode == 0, (
        f"{script} exited {proc.returncode}\nstderr:\n{proc.stderr[-3000:]}\n"
        f"paper.log tail:\n{log.read_text()[-3000:] if log.exists() else '(none)'}"
    )
    printed = proc.stdout.split()
    for name in EXPECTED[script]:
        path = root / "figures" / name
        assert path.is_file() and path.stat().st_size > 0, f"{script} did not write {name}"
        assert str(path) in printed, f"{script} did not print {path}"


def test_table1_lists_every_comparison(root: Path) -> None:
    table = root / "figures" / "table1.md"
    if not table.exists():
        pytest.skip("table1.sh did not run in this session")
    text = table.read_text()
    for heading in ("pendulum (sep_cma_es) -> pendulum_heavy", "fashion_mnist (snes) -> pgpe",
                    "fashion_mnist (snes) -> adam", "pendulum (sep_cma_es) -> ppo"):  # fmt: skip
        assert f"## {heading}" in text
    assert "snr+to-pendulum_heavy" in text and "snr+to-adam" in text
    assert re.search(r"\| 1 \| 80\.0 \| .*±", text)


def test_rerun_trains_nothing(root: Path) -> None:
    """A finished recipe re-run skips its sweeps by their markers: no eslt step starts again."""
    if not (root / "figures" / "fig1-imp-es-vs-gd.png").exists():
        pytest.skip("fig1.sh did not run in this session")
    logs = sorted(root.glob("imp-*.log"))
    before = {p: p.read_text() for p in logs}
    checkpoints = {p: p.stat().st_mtime_ns for p in root.glob("*-seed*/L*")}
    proc = run("fig1.sh", root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p: p.read_text() for p in logs} == before
    assert {p: p.stat().st_mtime_ns for p in root.glob("*-seed*/L*")} == checkpoints


# A stand-in for eslt: records its arguments, makes the folders eslt would, prints their paths.
STUB = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >>"$STUB_LOG"
[ "${1:-}" = -q ] && shift
cmd=${1:-}
shift || true
last=${*: -1}
case $cmd in
  --version) echo "eslt stub" ;;
  train)
    if [ $# -gt 0 ] && [ -d "$last" ]; then
      out=$last-trained
    else
      task="" method=snes seed=0
      while [ $# -gt 0 ]; do
        case $1 in --task) task=$2 ;; --strategy | --trainer) method=$2 ;; --seed) seed=$2 ;; esac
        shift
      done
      out=$ESLT_HOME/$task-$method-seed$seed/L00-trained
    fi
    mkdir -p "$out" && echo "$out" ;;
  prune)
    crit="" reinit=""
    for a; do case $a in --snr | --magnitude | --random) crit=${a#--} ;; --reinit) reinit=-reinit ;; esac; done
    b=${last##*/}
    out=${last%/*}/$(printf 'L%02d' $((10#${b:1:2} + 1)))-$crit$reinit
    mkdir -p "$out" && echo "$out" ;;
  transfer) out=$last-to-$2 && mkdir -p "$out" && echo "$out" ;;
  lmc) printf '{"kind": "lmc", "a": "%s", "b": "%s", "strategies": [null, "x"]}\n' "${*: -2:1}" "$last" ;;
  sharpness) printf '{"kind": "sharpness", "checkpoint": "%s"}\n' "$last" ;;
  plot)
    while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
    : >"$out" && echo "$out" ;;
  show)
    for p; do
      [ "$p" = --json ] && continue
      b=${p##*/} d=${p%/*} d=${d##*/} d=${d%-seed*}
      printf '{"path": "%s", "kind": "trained", "task": {"name": "%s"}, "trainer": {"name": "es", "strategy": "%s"}, '\
'"metric": "return", "level": %d, "arm": "snr", "sparsity": {"global": 0.2}, "metrics": {"final": {"metric": 1.5}}}\n' \
        "$p" "${d%-*}" "${d##*-}" "$((10#${b:1:2}))"
    done ;;
  *) echo "stub eslt: $cmd?" >&2; exit 2 ;;
esac
"""


def test_paper_mode_commands(tmp_path: Path) -> None:
    """At --preset paper (stand-in eslt, 1 seed, 2 levels): every recipe runs, and gives eslt the GPU settings."""
    stub, log, root = tmp_path / "eslt", tmp_path / "calls.log", tmp_path / "runs"
    stub.write_text(STUB)
    stub.chmod(0o755)
    for script, names in EXPECTED.items():
        proc = run(script, root, ESLT_SMOKE="", ESLT=str(stub), STUB_LOG=str(log), PAPER_SEEDS="0", PAPER_LEVELS="2")
        assert proc.returncode == 0, f"{script}: {proc.stderr[-3000:]}"
        for name in names:
            assert (root / "figures" / name).is_file(), f"{script} did not write {name}"
    calls = [line.removeprefix("-q ").split() for line in log.read_text().splitlines()]
    trains = [c for c in calls if c[0] == "train"]
    assert trains and all("--preset" in c and c[c.index("--preset") + 1] == "paper" for c in trains)
    assert not [c for c in calls if {"--population", "--data-dir", "--batch-size"} & set(c)]
    assert len({" ".join(c) for c in trains}) == len(trains), "a finished step was asked again"
    dense = {(c[c.index("--task") + 1], c[c.index("--strategy") + 1]) for c in trains if "--strategy" in c}
    assert {("mnist", "sep_cma_es"), ("kmnist", "pgpe"), ("walker2d", "pgpe"), ("fashion_mnist", "ars")} <= dense
    to_adam = [c for c in trains if c[-1].endswith("-to-adam")]
    assert len(to_adam) == 2 and all(c[c.index("--epochs") + 1] == "20" for c in to_adam)
    transfers = {(c[1], c[2]) for c in calls if c[0] == "transfer"}
    assert transfers == {("--task", "ant_heavy"), ("--task", "mnist"), ("--task", "pendulum_heavy"),
                         ("--strategy", "des"), ("--strategy", "pgpe"), ("--strategy", "sep_cma_es"),
                         ("--trainer", "ppo"), ("--trainer", "adam")}  # fmt: skip
    sharp = [c for c in calls if c[0] == "sharpness"]
    assert sharp and all("--preset" in c and "--directions-from" in c for c in sharp)
    assert all(Path(c[c.index("--directions-from") + 1]).parent == Path(c[-1]).parent for c in sharp)
    assert sum("--2d" in c for c in sharp) == 2  # A.3: levels 0 of the ES and the GD chain at 2 levels


def test_smoke_runs_have_their_own_root(tmp_path: Path) -> None:
    """ESLT_SMOKE=1 without PAPER_ROOT writes under $ESLT_HOME/paper-smoke, not the real runs' root; a root
    holds smoke or real runs, and a recipe of the other kind stops with one line before it writes anything."""
    stub, log, home = tmp_path / "eslt", tmp_path / "calls.log", tmp_path / "home"
    stub.write_text(STUB)
    stub.chmod(0o755)
    smoke = home / "paper-smoke"
    proc = run("fig1.sh", smoke, PAPER_ROOT="", ESLT_HOME=str(home), ESLT=str(stub), STUB_LOG=str(log))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (smoke / "figures" / "fig1-imp-es-vs-gd.png").is_file() and (
        smoke / ".paper" / "mode"
    ).read_text() == "smoke\n"
    assert sorted(p.name for p in home.iterdir()) == ["paper-smoke"]  # nothing in the real runs' root
    before = sorted(smoke.rglob("*"))
    proc = run("fig1.sh", smoke, ESLT_SMOKE="", ESLT=str(stub), STUB_LOG=str(log), PAPER_LEVELS="1")  # real, same root
    assert proc.returncode == 1 and proc.stderr.startswith("paper: error:") and len(proc.stderr.splitlines()) == 1
    assert "holds the recipes' smoke runs, this is a paper run" in proc.stderr
    assert sorted(smoke.rglob("*")) == before
