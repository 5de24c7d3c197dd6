"""Settling settings and output paths (no training)."""

from pathlib import Path

import pytest

from eslt_cli import plans, strategies
from eslt_cli.errors import BadInput


def plan(**overrides):
    return plans.plan_train(None, {"task": "pendulum", **overrides}, root=Path("/r"))


def test_fresh_defaults_and_derived_path() -> None:
    p = plan()
    assert (p.trainer.strategy, p.trainer.population, p.trainer.optimizer, p.trainer.lr) == ("snes", 64, "sgd", 1.0)
    assert p.out == Path("/r/pendulum-snes-seed0/L00-trained") and p.level == 0 and p.arm == "dense"
    assert p.task.train_episodes == 8 and p.model.hidden == (32, 32)


def test_overrides_win_and_aliases_resolve() -> None:
    p = plan(task="Pendulum-v1", strategy="Sep-CMA-ES", seed=3, hidden=(16,), population=10)
    assert (p.task.name, p.trainer.strategy, p.seed, p.model.hidden) == ("pendulum", "sep_cma_es", 3, (16,))
    assert p.trainer.optimizer is None and p.trainer.lr is None  # Sep-CMA-ES takes no optimiser
    assert p.out.parent.name == "pendulum-sep_cma_es-seed3"


@pytest.mark.parametrize("name", list(strategies.STRATEGIES))
def test_paper_preset_plans_for_every_strategy(name: str) -> None:
    p = plans.plan_train(None, {"task": "fashion_mnist", "strategy": name}, preset="paper")
    assert (p.trainer.population, p.trainer.generations, p.task.batch_size) == (128, 4000, 1024)
    # The paper's code: Adam only for PGPE; SNES and DES recombine with lr 1; Sep-CMA-ES has no optimiser.
    expected = {"pgpe": "adam", "snes": "sgd", "des": "sgd", "sep_cma_es": None}
    default = strategies.get_strategy(name).default_optimizer
    assert p.trainer.optimizer == expected.get(name, default)


def test_fingerprint_changes_with_settings() -> None:
    assert plan().fingerprint == plan().fingerprint
    assert plan().fingerprint != plan(generations=5).fingerprint


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"hidden": (8,), "task": "fashion_mnist"}, "--hidden applies to control"),
        ({"batch_size": 0, "task": "mnist"}, "--batch-size must be positive"),
        ({"strategy": "sep_cma_es", "lr": 0.1}, "has no optimiser"),
        ({"strategy": "snes", "elite_ratio": 0.3}, "no elite selection"),
    ],
)
def test_bad_settings(overrides: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        plan(**overrides)
