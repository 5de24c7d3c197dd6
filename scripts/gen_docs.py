#!/usr/bin/env python3
"""Generate eslt's shell completions and man pages from the live CLI.

    python scripts/gen_docs.py           # (re)write completions/ and man/
    python scripts/gen_docs.py --check   # exit 1 and list the files that are stale

Everything is derived from the Typer app in ``eslt_cli.cli``:

- ``completions/eslt.{bash,zsh,fish}``: Typer's own completion scripts (the ones
  ``eslt --show-completion`` prints), which call back into ``eslt`` with
  ``_ESLT_COMPLETE=complete_<shell>`` set, so they never go stale as options change;
  they are regenerated only to follow Typer itself.
- ``man/eslt.1`` and ``man/eslt-<command>.1`` for every visible (sub)command, found by
  walking the click command tree, so new commands get a page when this is re-run.

The output has no dates and follows the command registration order, so generating twice
gives identical bytes.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import typer  # noqa: E402
import typer.main  # noqa: E402
from typer._completion_shared import get_completion_script  # noqa: E402

try:  # recent Typer vendors a trimmed click as typer._click; older ones use click itself
    from typer import _click as click
except ImportError:  # pragma: no cover
    import click  # type: ignore[no-redef]

from eslt_cli import __version__  # noqa: E402
from eslt_cli.cli import app  # noqa: E402

PROG = "eslt"
SHELLS = ("bash", "zsh", "fish")
COMPLETIONS_DIR = "completions"
MAN_DIR = "man"
NOREWRAP = "\b"  # click's "don't rewrap this paragraph" marker
EXAMPLES_HEADER = re.compile(r"^examples?:$", re.IGNORECASE)


def complete_var(prog_name: str = PROG) -> str:
    """The environment variable Typer reads at run time (typer.core._typer_main_shell_completion)."""
    return f"_{prog_name}_COMPLETE".replace("-", "_").upper()


# --------------------------------------------------------------------------- completions


def completion_files() -> dict[str, str]:
    files = {}
    for shell in SHELLS:
        script = get_completion_script(prog_name=PROG, complete_var=complete_var(), shell=shell)
        files[f"{COMPLETIONS_DIR}/{PROG}.{shell}"] = script.strip() + "\n"
    return files


# --------------------------------------------------------------------------- roff helpers


def esc(text: str) -> str:
    """Escape text for roff: backslashes, and hyphens as \\- so options copy-paste as ASCII."""
    return text.replace("\\", "\\e").replace("-", "\\-")


def line(text: str) -> str:
    """One roff text line: never starting with a control character or blank."""
    text = esc(text)
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text if text.strip() else "\\&"


def bold(text: str) -> str:
    return f"\\fB{esc(text)}\\fR"


def italic(text: str) -> str:
    return f"\\fI{esc(text)}\\fR"


def quoted(text: str) -> str:
    """A macro argument."""
    return '"' + esc(text).replace('"', "\\(dq") + '"'


# --------------------------------------------------------------------------- help text


def blocks(help_text: str | None) -> list[tuple[str, str]]:
    """Split click help text into ("text", paragraph) and ("verbatim", block) pieces.

    Paragraphs marked with click's \\b marker, and indented ones, are kept verbatim
    (dedented); the others are collapsed to one line for roff to fill.
    """
    if not help_text:
        return []
    help_text = help_text.split("\f", 1)[0]  # click: \f ends the help text
    out = []
    for para in re.split(r"\n[ \t]*\n", textwrap.dedent(help_text).strip("\n")):
        lines = para.split("\n")
        if lines[0].strip() == NOREWRAP:
            lines = lines[1:]
        elif not para[:1].isspace():
            text = " ".join(part.strip() for part in lines).strip()
            if text:
                out.append(("text", text))
            continue
        body = textwrap.dedent("\n".join(lines)).strip("\n")
        if body.strip():
            out.append(("verbatim", body))
    return out


def split_examples(pieces: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """Take the verbatim blocks after an 'Example:' / 'Examples:' paragraph out of the description."""
    for i, (kind, text) in enumerate(pieces):
        if kind == "text" and EXAMPLES_HEADER.match(text):
            j = i + 1
            while j < len(pieces) and pieces[j][0] == "verbatim":
                j += 1
            if j > i + 1:
                return pieces[:i] + pieces[j:], [text for _, text in pieces[i + 1 : j]]
    return pieces, []


def render(pieces: list[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for kind, text in pieces:
        if kind == "text":
            out += [".PP", line(text)]
        else:
            out += [".PP", ".RS 2", ".nf", *(line(part) for part in text.split("\n")), ".fi", ".RE"]
    return out


def summary(cmd: Any) -> str:
    """The one-line NAME description: short_help, else the first paragraph of the help."""
    if cmd.short_help:
        text = cmd.short_help
    else:
        pieces = blocks(cmd.help)
        text = pieces[0][1] if pieces else ""
    text = " ".join(text.split())
    return text[:-1] if text.endswith(".") and not text.endswith("..") else text


# --------------------------------------------------------------------------- man pages


def is_group(cmd: Any) -> bool:
    return hasattr(cmd, "list_commands") and hasattr(cmd, "get_command")


def is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def page_name(ctx: Any) -> str:
    return ctx.command_path.replace(" ", "-")


def visible_commands(group: Any, ctx: Any) -> list[tuple[str, Any]]:
    found = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is not None and not getattr(cmd, "hidden", False):
            found.append((name, cmd))
    return found


def param_entry(param: Any, ctx: Any) -> list[str]:
    record = param.get_help_record(ctx)
    if record is None:
        return []
    head, help_text = record
    # click appends "  [default: x; required; env var: Y]" to the help: give each its own sentence
    extras: list[str] = []
    match = re.search(r"(?:^|  )\[([^\[\]]*)\]$", help_text)
    if match:
        help_text = help_text[: match.start()].rstrip()
        extras = [part.strip() for part in match.group(1).split(";") if part.strip()]
    is_option = not is_argument(param)
    words = []
    for token in head.split(" "):  # flags in bold; argument names and metavars in italics
        word = token.rstrip(",")
        comma = "," if token.endswith(",") else ""
        if is_option and word.startswith("-"):
            words.append(bold(word) + comma)
        elif word == "/":
            words.append(word)
        else:
            words.append(italic(word) + comma)
    body = [line(help_text)] if help_text else []
    for extra in extras:
        key, sep, value = extra.partition(": ")
        if sep:
            sentence = f"{key[:1].upper()}{key[1:]}: {value}"
        else:
            sentence = f"{extra[:1].upper()}{extra[1:]}."
        body += [".br", line(sentence)] if body else [line(sentence)]
    return [".TP", " ".join(words), *body]


def synopsis(cmd: Any, ctx: Any) -> list[str]:
    pieces = " ".join(cmd.collect_usage_pieces(ctx))
    args = re.sub(r"[A-Za-z_][\w-]*", lambda m: "\x00" + m.group(0) + "\x01", pieces)
    args = esc(args).replace("\x00", "\\fI").replace("\x01", "\\fR")
    return [".SH SYNOPSIS", f".B {esc(ctx.command_path)}", args]


def man_page(cmd: Any, ctx: Any, siblings: list[str]) -> str:
    name = page_name(ctx)
    out = [
        '.\\" -*- coding: UTF-8 -*-',
        '.\\" Generated by scripts/gen_docs.py from the eslt command line; do not edit.',
        f'.TH {quoted(name.upper())} 1 "" {quoted(f"{PROG} {__version__}")} "User Commands"',
        ".nh",  # no hyphenation: option names and paths stay whole
        ".ad l",  # ragged right
        ".SH NAME",
        f"{esc(name)} \\- {esc(summary(cmd))}",
        *synopsis(cmd, ctx),
    ]
    description, examples = split_examples(blocks(cmd.help) + blocks(cmd.epilog))
    if description:
        out += [".SH DESCRIPTION", *render(description)[1:]]  # no .PP right after .SH

    params = [p for p in cmd.get_params(ctx) if not getattr(p, "hidden", False)]
    arguments = [p for p in params if is_argument(p)]
    options = [p for p in params if not is_argument(p)]
    if arguments:
        out.append(".SH ARGUMENTS")
        for param in arguments:
            out += param_entry(param, ctx)
    if options or ctx.parent is not None:
        out.append(".SH OPTIONS")
        for param in options:
            out += param_entry(param, ctx)
        if ctx.parent is not None and any(not getattr(p, "hidden", False) for p in ctx.parent.command.params):
            parent = ctx.parent.command_path
            out += [
                ".PP",
                f"Options of {bold(parent)} itself (see {bold(page_name(ctx.parent))}(1)) go before the command name.",
            ]

    children = visible_commands(cmd, ctx) if is_group(cmd) else []
    if children:
        out.append(".SH COMMANDS")
        for child_name, child in children:
            child_page = f"{name}-{child_name}"
            out += [".TP", bold(child_name), line(summary(child) + "."), ".br", f"See {bold(child_page)}(1)."]

    if examples:
        out.append(".SH EXAMPLES")
        out += render([("verbatim", example) for example in examples])[1:]

    see_also = [page_name(ctx.parent)] if ctx.parent is not None else []
    see_also += [f"{name}-{child_name}" for child_name, _ in children]
    see_also += [s for s in siblings if s != name]
    if see_also:
        out += [".SH SEE ALSO", ",\n".join(f"{bold(s)}(1)" for s in see_also)]
    return "\n".join(out) + "\n"


def man_pages() -> dict[str, str]:
    root = typer.main.get_command(app)
    pages: dict[str, str] = {}

    def walk(cmd: Any, ctx: Any, siblings: list[str]) -> None:
        pages[f"{MAN_DIR}/{page_name(ctx)}.1"] = man_page(cmd, ctx, siblings)
        if is_group(cmd):
            children = visible_commands(cmd, ctx)
            names = [f"{page_name(ctx)}-{n}" for n, _ in children]
            for child_name, child in children:
                walk(child, click.Context(child, info_name=child_name, parent=ctx), names)

    walk(root, click.Context(root, info_name=PROG), [])
    return pages


# --------------------------------------------------------------------------- driver


def _tables() -> dict[str, str]:
    """README tables by marker name: the settings (eslt_cli.presets) and the figure kinds (eslt_cli.figures)."""
    from eslt_cli import figures, presets

    return {"settings-table": presets.readme_table(), "figures-table": figures.readme_table()}


def readme(root: Path = ROOT) -> str:
    """README.md with each table between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` regenerated."""
    text = (root / "README.md").read_text()
    for name, table in _tables().items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{table}\n{end}{tail}"
    return text


def generate() -> dict[str, str]:
    """Every generated file: path relative to the repository root -> content."""
    return {**completion_files(), **man_pages(), "README.md": readme()}


def obsolete(files: dict[str, str], root: Path = ROOT) -> list[str]:
    """Man pages on disk for commands that no longer exist."""
    man = root / MAN_DIR
    if not man.is_dir():
        return []
    return sorted(
        p.relative_to(root).as_posix() for p in man.glob(f"{PROG}*.1") if p.relative_to(root).as_posix() not in files
    )


def stale(root: Path = ROOT) -> list[str]:
    """Paths (relative to root) that are missing, differ from a fresh generation, or are obsolete."""
    files = generate()
    out = []
    for rel, content in files.items():
        path = root / rel
        if not path.is_file() or path.read_bytes() != content.encode():
            out.append(rel)
    return out + obsolete(files, root)


def write(root: Path = ROOT) -> list[str]:
    files = generate()
    changed = []
    for rel in obsolete(files, root):
        (root / rel).unlink()
        changed.append(f"removed {rel}")
    for rel, content in files.items():
        path = root / rel
        data = content.encode()
        if path.is_file() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        changed.append(f"wrote {rel}")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="list stale files and exit 1 if any; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        if out_of_date:
            print("stale generated files (run: python scripts/gen_docs.py):")
            for rel in out_of_date:
                print(f"  {rel}")
            return 1
        print("completions and man pages are up to date")
        return 0
    changed = write()
    for entry in changed:
        print(entry)
    if not changed:
        print("completions and man pages are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
