"""The README's Results table is the one scripts/study.py makes from the committed results/*.jsonl."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("study", ROOT / "scripts" / "study.py")
study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study)


@pytest.mark.skipif(not (ROOT / "results" / "summary.jsonl").exists(), reason="no study results committed yet")
def test_readme_results_table_comes_from_the_json_lines() -> None:
    readme = (ROOT / "README.md").read_text()
    assert study.readme_section(readme) == study.from_jsonl(ROOT / "results")


def test_table_statistics_on_hand_made_records() -> None:
    rows = [
        {"study": "s", "task": "t", "optimiser": "snes", "arm": a, "seed": seed, "level": 1, "sparsity": 0.2,
         "final": v, "best": v}
        for a, vals in (("snr", (-100.0, -120.0, -110.0)), ("random", (-200.0, -180.0, -220.0)))
        for seed, v in enumerate(vals)
    ]  # fmt: skip
    (summary,) = [s for s in study.summarise(rows) if s["arm"] == "snr"]
    assert (summary["n"], summary["mean"], summary["std"]) == (3, -110.0, 10.0)
    assert summary["se"] == pytest.approx(10.0 / 3**0.5)
    (effect,) = study.effects(rows)
    # paired differences 100, 60, 110: mean 90, std 26.46
    assert effect["mean"] == pytest.approx(90.0) and effect["std"] == pytest.approx(26.4575, rel=1e-4)
    assert "| snr | 1 | 90 ± 15 (n=3) |" in study.table(study.summarise(rows), study.effects(rows), [])


def test_effects_are_against_random_reinit_with_the_rewound_random_arm_as_a_second_control() -> None:
    rows = [
        {"study": "s", "task": "t", "optimiser": "snes", "arm": arm, "seed": seed, "level": 2, "sparsity": 0.36,
         "final": v + seed, "best": v}
        for arm, v in (("snr", -100.0), ("random", -300.0), ("random-reinit", -500.0), ("dense", -90.0))
        for seed in (0, 1)
    ]  # fmt: skip
    effect = study.effects(rows)
    # The paper's baseline first; the controls are not arms; the dense network has no effect.
    assert [(e["arm"], e["vs"], e["mean"], e["n"]) for e in effect] == [("snr", "random-reinit", 400.0, 2),
                                                                      ("snr", "random", 200.0, 2)]  # fmt: skip
    text = study.table(study.summarise(rows), effect, [])
    assert "| arm | level | − random-reinit | − random |" in text
    assert "| snr | 2 | 400 ± 0 (n=2) | 200 ± 0 (n=2) |" in text


def test_snr_tickets_are_also_compared_with_magnitude_tickets_claim_2() -> None:
    rows = [
        {"study": "s", "task": "t", "optimiser": "sep_cma_es", "arm": arm, "seed": seed, "level": 12,
         "sparsity": 0.93, "final": v - 10 * seed, "best": v}
        for arm, v in (("snr", -200.0), ("magnitude", -700.0), ("random-reinit", -1000.0))
        for seed in (0, 1, 2)
    ]  # fmt: skip
    effect = {(e["arm"], e["vs"]): e["mean"] for e in study.effects(rows)}
    # magnitude is compared with the random controls only, never with itself.
    assert effect == {
        ("magnitude", "random-reinit"): 300.0,
        ("snr", "random-reinit"): 800.0,
        ("snr", "magnitude"): 500.0,
    }
    text = study.table(study.summarise(rows), study.effects(rows), [])
    assert "| arm | level | − random-reinit | − magnitude |" in text
    assert "| magnitude | 12 | 300 ± 0 (n=3) | - |" in text and "| snr | 12 | 800 ± 0 (n=3) | 500 ± 0 (n=3) |" in text


def test_transferred_tickets_are_compared_with_random_tickets_transferred_alike() -> None:
    rows = [
        {"study": "s", "task": "t", "optimiser": "pgpe", "arm": arm, "seed": 0, "level": 5, "sparsity": 0.67,
         "final": v, "best": v}
        for arm, v in (("snr+to-pgpe", -200.0), ("random+to-pgpe", -500.0), ("random", -900.0))
    ]  # fmt: skip
    (effect,) = study.effects(rows)
    assert (effect["arm"], effect["vs"], effect["mean"]) == ("snr+to-pgpe", "random+to-pgpe", 300.0)
    rows.append({**rows[0], "arm": "random-reinit+to-pgpe", "final": -600.0})
    assert [(e["vs"], e["mean"]) for e in study.effects(rows)] == [("random-reinit+to-pgpe", 400.0),
                                                                   ("random+to-pgpe", 300.0)]  # fmt: skip


def test_analyses_summaries_and_lmc_table(tmp_path: Path) -> None:
    (tmp_path / "analyses").mkdir()
    lmc = [
        {"kind": "lmc", "task": "t", "levels": la_lb, "strategies": ["snes", "snes"], "seeds": seeds, "barrier": b}
        for la_lb, seeds, b in (([0, 1], [0, 0], 0.1), ([0, 1], [1, 1], 0.3), ([1, 1], [0, 1], 0.5))
    ]  # fmt: skip
    (tmp_path / "analyses" / "lmc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lmc))
    sharp = [{"kind": "sharpness", "task": "t", "strategy": None, "trainer": {"name": "adam"}, "level": 2,
              "seed": s, "curvature_mean": c} for s, c in ((0, 1.0), (1, 3.0))]  # fmt: skip
    (tmp_path / "analyses" / "sharpness.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sharp))
    rows = study.analyses(tmp_path, [{"task": "t", "optimiser": "snes", "arm": "snr", "seed": 0, "level": 1,
                                      "pearson": 0.9, "spearman": 0.8}])  # fmt: skip
    (pair,) = [r for r in rows if r["analysis"] == "lmc" and r["stat"] == "same seed"]
    assert (pair["levels"], pair["n"], pair["mean"]) == ([0, 1], 2, pytest.approx(0.2))
    (curv,) = [r for r in rows if r["analysis"] == "sharpness"]
    assert (curv["group"], curv["mean"], curv["n"]) == ("adam", 2.0, 2)
    text = study.analyses_table(rows)
    assert "| 0 | - | 0.200 ± 0.100 |" in text and "| 1 | 0.200 ± 0.100 | 0.500 |" in text
    assert "| 2 | 2.000 ± 1.000 (n=2) |" in text and "| 1 | 0.900 (n=1) |" in text


def test_lmc_between_two_optimisers_at_the_same_level_is_a_column(tmp_path: Path) -> None:
    (tmp_path / "analyses").mkdir()
    lmc = [
        {"kind": "lmc", "task": "t", "levels": [lv, lv], "strategies": ["snes", "adam"], "seeds": [s, s], "barrier": b}
        for lv, s, b in ((0, 0, 0.08), (0, 1, 0.10), (5, 0, 0.2))
    ]  # fmt: skip
    (tmp_path / "analyses" / "lmc-es-gd.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lmc))
    text = study.analyses_table(study.analyses(tmp_path, []))
    assert "snes vs adam**: the two networks of the same seed and level" in text
    assert "| 0 | 0.090 ± 0.010 |" in text and "| 5 | 0.200 |" in text
