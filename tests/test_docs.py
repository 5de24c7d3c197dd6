"""The generated shell completions and man pages (scripts/gen_docs.py) are current and valid."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "run: python scripts/gen_docs.py"


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
MAN_PAGES = sorted((ROOT / "man").glob("eslt*.1"))


def test_generated_files_are_current() -> None:
    stale = gen.stale()
    assert not stale, f"stale generated files {stale}; {REGENERATE}"


def test_generation_is_deterministic() -> None:
    assert gen.generate() == gen.generate()


def test_every_subcommand_has_a_man_page() -> None:
    import typer.main

    from eslt_cli.cli import app

    group = typer.main.get_command(app)
    names = [name for name, cmd in group.commands.items() if not cmd.hidden]
    assert names
    expected = ["man/eslt.1"] + [f"man/eslt-{name}.1" for name in names]
    generated = gen.generate()
    for rel in expected:
        assert rel in generated, f"the generator made no page for {rel}"
        assert (ROOT / rel).is_file(), f"{rel} is missing; {REGENERATE}"


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed (apt-get install man-db groff-base)")
@pytest.mark.parametrize("page", MAN_PAGES, ids=lambda p: p.name)
def test_man_page_renders(page: Path) -> None:
    env = {**os.environ, "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat", "LC_ALL": "C.UTF-8"}
    result = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    troff_messages = [line for line in result.stderr.splitlines() if "troff" in line]
    assert not troff_messages, "\n".join(troff_messages)
    for section in ("NAME", "SYNOPSIS", "OPTIONS", "SEE ALSO"):
        assert re.search(rf"^{section}$", result.stdout, re.MULTILINE), f"{page.name}: no {section} section"
    assert page.stem in result.stdout.replace("‐", "-")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_parses() -> None:
    result = subprocess.run(["bash", "-n", str(ROOT / "completions" / "eslt.bash")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("shell,check", [("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])])
def test_other_completions_parse(shell: str, check: list[str]) -> None:
    if shutil.which(check[0]) is None:
        pytest.skip(f"{shell} is not installed")
    result = subprocess.run([*check, str(ROOT / "completions" / f"eslt.{shell}")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_completion_variable_matches_the_cli(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The scripts' _ESLT_COMPLETE (or whatever they name) is what `eslt` answers to."""
    from eslt_cli import cli

    script = (ROOT / "completions" / "eslt.bash").read_text()
    var = re.search(r"(_\w+_COMPLETE)=complete_bash", script).group(1)
    for name, value in {var: "complete_bash", "COMP_WORDS": "eslt tr", "COMP_CWORD": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["eslt"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code in (0, None)
    assert "train" in capsys.readouterr().out.split()
