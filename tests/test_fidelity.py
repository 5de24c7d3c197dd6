"""``--preset paper`` follows the paper's code (RobertTLange/es-lottery) where it and the text differ.

Sep-CMA-ES tickets are pruned by the code's |mean| / C (src/es/masked_es.py returns ``es_state.C``
as the "sigma" of the final mean; src/prune/sig2noise.py divides by it), not the text's
|mean| / (sigma * sqrt(C)). The choice is a setting recorded with the run, absent from its records at
the text's default, so checkpoints made before it existed are still reused.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_CONTROL

from eslt_cli import checkpoint, pipeline, pruning, strategies
from eslt_cli.specs import ESSpec, to_json

ROOT = Path(__file__).resolve().parents[1]
KEY = jax.random.PRNGKey(0)


def sep_cma_state(mean: np.ndarray, sigma: float, C: np.ndarray):
    """An evosax 0.3 Sep-CMA-ES state over ``mean`` with step size ``sigma`` and diagonal covariance ``C``."""
    es, params = strategies.build(ESSpec("sep_cma_es", 4, 1, sigma), jnp.zeros(mean.size))
    state = es.init(KEY, jnp.asarray(mean, jnp.float32), params)
    return state.replace(mean=jnp.asarray(mean, jnp.float32), std=jnp.float32(sigma), C=jnp.asarray(C, jnp.float32))


def tree(flat: np.ndarray) -> dict:
    return {"dense": {"kernel": np.asarray(flat, np.float32).reshape(2, 2), "bias": np.zeros(2, np.float32)}}


def kept(mask: dict) -> list[int]:
    return np.flatnonzero(mask["dense"]["kernel"].ravel()).tolist()


def test_sep_cma_es_code_snr_divides_by_the_variance() -> None:
    # Weight 0: |mean| 1.0, C 4; weight 1: |mean| 0.45, C 1. The text's SNR |m| / (sigma sqrt C) ranks
    # weight 0 first (0.5 vs 0.45); the code's |m| / C ranks weight 1 first (0.25 vs 0.45).
    mean, C, sigma = np.array([1.0, -0.45, 2.0, 3.0]), np.array([4.0, 1.0, 0.5, 0.25]), 0.3
    state = sep_cma_state(mean, sigma, C)
    std = tree(np.asarray(strategies.get_strategy("sep_cma_es").search_std(state)))
    np.testing.assert_allclose(std["dense"]["kernel"].ravel(), sigma * np.sqrt(C + 1e-8), rtol=1e-6)
    mask = jax.tree.map(lambda a: np.ones(a.shape, np.uint8), tree(mean))

    def survivors(definition: str) -> list[int]:
        noise = strategies.snr_noise("sep_cma_es", definition, std)
        return kept(pruning.prune(KEY, "snr", tree(mean), noise, mask, keep=0.75))

    assert survivors("text") == [0, 2, 3]  # text: 1/(0.3*2)=1.67, 0.45/0.3=1.5, 9.4, 20: weight 1 goes
    assert survivors("code") == [1, 2, 3]  # code: 1/4=0.25, 0.45/1=0.45, 4, 12: weight 0 goes
    # The code's scores, up to the one factor sigma**2 that no global threshold sees.
    noise = strategies.snr_noise("sep_cma_es", "code", std)["dense"]["kernel"].ravel()
    np.testing.assert_allclose(np.abs(mean) / noise * sigma**2, np.abs(mean) / C, rtol=1e-5)
    # SNES, PGPE and DES: the code divides by the per-weight std, as the text does.
    for name in ("snes", "pgpe", "des"):
        assert strategies.snr_noise(name, "code", std) is std


def test_paper_preset_prunes_sep_cma_es_tickets_by_the_code() -> None:
    paper = pipeline.plan_train(None, {"task": "pendulum"}, "paper").trainer
    assert isinstance(paper, ESSpec) and (paper.strategy, paper.snr_std) == ("sep_cma_es", "code")
    for strategy in ("snes", "pgpe", "des"):  # the code's definition is the text's: the record keeps its default
        spec = pipeline.plan_train(None, {"task": "pendulum", "strategy": strategy}, "paper").trainer
        assert isinstance(spec, ESSpec) and spec.snr_std == "text"
    cpu = pipeline.plan_train(None, {"task": "pendulum", "strategy": "sep_cma_es"}).trainer
    assert isinstance(cpu, ESSpec) and cpu.snr_std == "text" and "snr_std" not in to_json(cpu)
    text = pipeline.plan_train(None, {"task": "pendulum", "snr_std": "text"}, "paper").trainer
    assert isinstance(text, ESSpec) and text.snr_std == "text"  # the text's definition, one option away
    # A strategy switch brings the new strategy's own setting, as for its other strategy settings.
    assert pipeline.settle_trainer("pendulum", "cpu", paper, {"strategy": "snes"}).snr_std == "text"
    with pytest.raises(Exception, match="isotropic"):
        pipeline.settle_trainer("pendulum", "cpu", None, {"strategy": "open_es", "snr_std": "code"})
    with pytest.raises(Exception, match="unknown --snr-std"):
        pipeline.settle_trainer("pendulum", "cpu", None, {"strategy": "snes", "snr_std": "variance"})


def test_prune_follows_the_recorded_choice_and_says_which(cli, tmp_path: Path) -> None:
    code, out, err = cli("-q", "train", "--task", "pendulum", "--strategy", "sep_cma_es", "--snr-std", "code",
                         *TINY_CONTROL)  # fmt: skip
    assert code == 0, err
    trained = Path(out.strip())
    assert checkpoint.read_meta(trained)["trainer"]["snr_std"] == "code"
    code, out, err = cli("-q", "prune", "--snr", str(trained))
    assert code == 0, err
    meta = checkpoint.read_meta(Path(out.strip()))
    assert meta["pruning"]["snr_std"] == "code" and meta["snr_stats"]["snr_std"] == "code"
    assert meta["fingerprint"]["snr_std"] == "code" and meta["trainer"]["snr_std"] == "code"
    # The text's definition, one option away (elsewhere: the default path holds the code's ticket).
    code, out, err = cli("-q", "prune", "--snr", "--snr-std", "text", str(trained))
    assert code == 2 and "snr_std" in err, err
    code, out, err = cli("-q", "prune", "--snr", "--snr-std", "text", str(trained), "--out", str(tmp_path / "t"))
    assert code == 0, err
    meta = checkpoint.read_meta(Path(out.strip()))
    assert meta["pruning"]["snr_std"] == "text" and "snr_std" not in meta["fingerprint"]
    code, _, err = cli("-q", "prune", "--magnitude", "--snr-std", "code", str(trained))
    assert code == 2 and "--snr only" in err


RUN = ROOT / "results" / "runs" / "pendulum" / "pendulum-snes-seed0"


@pytest.mark.skipif(not (RUN / "L01-snr-trained").exists(), reason="no committed study runs")
def test_runs_made_before_the_setting_existed_are_still_reused() -> None:
    trained, ticket = checkpoint.load(RUN / "L00-trained"), checkpoint.load(RUN / "L01-snr")
    assert "snr_std" not in trained.meta["trainer"]  # made before snr_std existed
    prune = pipeline.plan_prune(trained, "snr")
    assert prune.out == ticket.path.absolute()
    assert checkpoint.identity(prune.fingerprint) == checkpoint.identity(ticket.meta["fingerprint"])
    train = pipeline.plan_train(ticket, {})
    recorded = json.loads(json.dumps(checkpoint.read_meta(train.out)["fingerprint"]))
    assert checkpoint.identity(train.fingerprint) == checkpoint.identity(recorded)
