"""The README's Results table is the one scripts/study.py makes from the committed results/*.jsonl."""

from __future__ import annotations

import importlib.util
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
    assert "| snr | 1 | 90 ± 15 (n=3) |" in study.table(study.summarise(rows), study.effects(rows))
