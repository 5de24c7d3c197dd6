"""Command-line habits (issue 25): global options after the command, progress lines, resume message."""

from __future__ import annotations

import math
import re

import pytest
import typer.main
from conftest import TINY_CONTROL

from eslt_cli.cli import app, common
from eslt_cli.trainers.record import Progress

COMMANDS = list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_takes_the_global_options_after_it(cli, name: str) -> None:
    code, out, err = cli(name, "-q", "--debug", "--help")
    assert code == 0, err
    assert "-q, --quiet" in out and "--debug" in out


def test_debug_after_the_command_shows_the_traceback(cli) -> None:
    with pytest.raises(Exception, match="no such checkpoint"):
        cli("prune", "--snr", "/nonexistent/ckpt", "--debug")
    code, _, err = cli("prune", "--snr", "/nonexistent/ckpt")  # the next invocation is one line again
    assert code == 2 and "Traceback" not in err


def test_plain_lines_name_the_cost_and_show_best_and_eta(capsys, monkeypatch) -> None:
    clock = iter([100.0, 110.0])
    monkeypatch.setattr(common.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(common.Reporter, "PLAIN_EVERY_S", 0.0)
    with common.Reporter("pendulum snes L00", 200, "return", "gen") as report:
        report(Progress(50, 200, 515.2, -480.1, 12.5, best=-470.3))
        report(Progress(100, 200, 400.0, -300.0, 5.0, best=-300.0))
    lines = capsys.readouterr().err.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    assert re.fullmatch(stamp + "pendulum snes L00 gen 50/200 cost 515.2 test return -480.1 best -470.3 "
                        "12.50 gen/s eta 12s", lines[0])  # fmt: skip
    assert lines[1].endswith("cost 400 test return -300 best -300 5.00 gen/s eta 20s")  # 50 gens in 10 s


def test_vision_fitness_is_a_loss_and_a_resume_is_said(capsys) -> None:
    with common.Reporter("fashion_mnist adam L00", 3, "accuracy", "epoch") as report:
        report(Progress(1, 3, 0.5, 0.8, 0.0, best=0.8, resumed=True))
        report(Progress(2, 3, 0.4, math.nan, 1.0, best=0.8))
    err = capsys.readouterr().err
    assert "fashion_mnist adam L00: resuming from epoch 1 of 3" in err
    assert "loss 0.4 test accuracy nan best 0.8" in err and "cost" not in err


def test_duration() -> None:
    assert [common.duration(s) for s in (0.4, 42, 185, 7800)] == ["0s", "42s", "3m05s", "2h10m"]


def test_a_resumed_run_says_so_and_quiet_after_the_command(cli, tmp_path, monkeypatch) -> None:
    args = ["train", "--task", "pendulum", *TINY_CONTROL, "--save-every", "1", "--out", str(tmp_path / "ck")]
    with monkeypatch.context() as mp:
        mp.setattr(common.StopOnSignal, "__call__", lambda self: 15)  # a SIGTERM after the first chunk
        code, _, err = cli(*args)
    assert code == 143 and re.search(r"gen 2/4 cost \S+ test return \S+ best \S+ \S+ gen/s eta \S+", err), err
    code, out, err = cli(*args)
    assert code == 0 and "pendulum snes L00: resuming from generation 2 of 4" in err, err
    code, out, err = cli(*args, "-q", "--force")
    assert code == 0 and out.strip() == str(tmp_path / "ck") and err == ""
