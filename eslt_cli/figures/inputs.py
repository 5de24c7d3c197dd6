"""What ``eslt plot`` reads: checkpoints' meta, ``eslt lmc`` / ``eslt sharpness`` records, ``.npz`` surfaces.

:func:`collect` parses path arguments and stdin lines (checkpoint folders, folders searched
recursively, ``.jsonl``/``.json`` record files, ``.npz`` surfaces, JSON object lines) into an
:class:`Inputs`. Only checkpoint ``meta`` is read, never arrays; the fields the figures read from
meta and from records are checked here (:data:`META_FIELDS`, :data:`RECORD_FIELDS`), so every
figure gets the same one-line errors. File inputs are regular files read bounded
(:func:`eslt_cli.outputs.read_regular`): a FIFO or a device is one error line, never a hang.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eslt_cli import outputs
from eslt_cli.checkpoint import find, read_meta
from eslt_cli.errors import BadInput
from eslt_cli.meta import Meta, parse

SURFACE_HINT = "surface needs a 2D grid: run `eslt sharpness --2d ...` and plot its output or the .npz it writes"
MAX_RECORDS_BYTES = 256 << 20  # a .jsonl/.json record file: far more than any analysis writes
MAX_SURFACE_BYTES = 256 << 20  # a surface .npz (a 201 x 201 grid is under 1 MiB)


@dataclass(frozen=True)
class Ckpt:
    """A checkpoint's path and meta."""

    path: Path
    meta: Meta


@dataclass
class Inputs:
    """Everything the plots can read: checkpoints, JSON records, ``.npz`` surfaces."""

    checkpoints: list[Ckpt] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    surfaces: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # record files read
    warnings: list[str] = field(default_factory=list)  # for people: what a figure shows specially

    def paths(self) -> list[Path]:
        """Every input file and checkpoint: an output is none of them, nor inside a checkpoint."""
        surfaces = [p for p in (surface_path(r) for r in self.records if r.get("kind") == "sharpness") if p]
        return [c.path for c in self.checkpoints] + self.files + self.surfaces + surfaces

    def describe(self) -> str:
        kinds: dict[str, int] = defaultdict(int)
        for r in self.records:
            kind = str(r.get("kind", "unknown"))
            kinds[kind if kind.isprintable() and len(kind) <= 40 else repr(kind)[:40]] += 1  # one line, always
        recs = ", ".join(f"{n} {k} record{'s' if n != 1 else ''}" for k, n in sorted(kinds.items())) or "0 records"
        return f"{len(self.checkpoints)} checkpoints, {recs}, {len(self.surfaces)} .npz surfaces"

    def counts(self) -> dict[str, int]:
        """How many checkpoints, records and surfaces were read (for ``--json``)."""
        return {"checkpoints": len(self.checkpoints), "records": len(self.records), "surfaces": len(self.surfaces)}

    def missing(self, kind: str, what: str) -> BadInput:
        """The error of a ``kind`` given nothing it can draw: what it needs, and what it got."""
        return BadInput(f"{kind} needs {what}; got {self.describe()}")


def _parse_records(path: Path) -> list[dict[str, Any]]:
    try:
        text = outputs.read_regular(path, MAX_RECORDS_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text; pass a JSON-lines file written by eslt") from None
    records: list[dict[str, Any]] = []
    lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    try:
        for _, line in lines:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError
            records.append(obj)
    except ValueError:
        try:  # a .json file holding one object or a list of objects over several lines
            whole = json.loads(text)
        except ValueError:
            raise BadInput(f"{path}: not JSON lines (one JSON object per line, as `eslt lmc` prints)") from None
        items = whole if isinstance(whole, list) else [whole]
        if not all(isinstance(o, dict) for o in items):
            raise BadInput(f"{path}: expected JSON objects (records of `eslt lmc` or `eslt sharpness`)") from None
        records = list(items)
    for i, r in enumerate(records, 1):
        check_record(r, f"{path} record {i}")
        r.setdefault("_source", str(path))
    return records


def _check_surface_file(path: Path) -> Path:
    """``path`` if it is a regular file (a FIFO or device would block or never end)."""
    if not path.is_file():  # follows symlinks; False for FIFOs, devices, sockets
        raise BadInput(f"{path} is not a regular file: a surface is an .npz file `eslt sharpness --2d` wrote")
    return path


def _add_path(inputs: Inputs, path: Path) -> None:
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder (check the path)")
    if path.is_dir():
        found = find(path)
        if not found:
            raise BadInput(f"{path}: no eslt checkpoints in this folder or below; pass checkpoints or a runs root")
        inputs.checkpoints.extend(Ckpt(p, parse(check_meta(p, read_meta(p)))) for p in found)
    elif path.suffix in (".jsonl", ".json"):
        inputs.records.extend(_parse_records(path))
        inputs.files.append(path)
    elif path.suffix == ".npz":
        inputs.surfaces.append(_check_surface_file(path))
    else:
        raise BadInput(f"{path}: not a checkpoint, folder, .jsonl/.json record file or .npz surface")


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _numbers(v: Any) -> bool:
    """A number, or a (nested) list of numbers (non-finite ones are refused before, by :func:`_non_finite`)."""
    if isinstance(v, list):
        return all(_numbers(x) for x in v)
    return isinstance(v, int | float) and not isinstance(v, bool)


def _non_finite(v: Any) -> float | None:
    """The first NaN or infinity in a number or (nested) list of numbers, else None."""
    if isinstance(v, list):
        return next((x for x in map(_non_finite, v) if x is not None), None)
    if isinstance(v, float) and not math.isfinite(v):
        return v
    return None


def number_text(v: float) -> str:
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def _flat(v: Any) -> bool:
    """A list of numbers, not nested."""
    return isinstance(v, list) and all(_numbers(x) and not isinstance(x, list) for x in v)


def _rows(v: Any) -> bool:
    """A list of numbers, or a list of such lists of one length (sharpness: a profile per direction)."""
    return _flat(v) or (isinstance(v, list) and all(_flat(x) for x in v) and len({len(x) for x in v}) <= 1)


def _text(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= 4096 and v.isprintable()  # one line: it may appear in messages


def _texts(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str | int) and not isinstance(x, bool) for x in v)


def _level(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 999


# Fields the plots read from `eslt lmc` / `eslt sharpness` records, and what each must hold (None is allowed).
RECORD_FIELDS: dict[str, dict[str, Callable[[Any], bool]]] = {
    "lmc": {"a": _text, "b": _text, "task": _text, "error_of": _text, "barrier": _finite,
            "barrier_linear": _finite, "barrier_definition": _text, "alpha": _flat, "error": _flat,
            "levels": lambda v: isinstance(v, list) and len(v) == 2 and all(_level(x) for x in v),
            "seeds": _texts, "arms": _texts, "strategies": _texts},
    "sharpness": {"task": _text, "arm": _text, "strategy": _text, "level": _level,
                  "sparsity": lambda v: _finite(v) and 0 <= v <= 1, "t": _flat, "loss": _rows,
                  "curvature": _flat, "curvature_mean": lambda v: _numbers(v) and not isinstance(v, list),
                  "surface": _text,
                  "trainer": lambda v: _text(v) or (isinstance(v, dict) and _text(v.get("name", "es")))},
}  # fmt: skip


def check_record(r: dict[str, Any], where: str) -> dict[str, Any]:
    """``r`` if the fields the plots read have the right types (a one-line :class:`BadInput` otherwise).

    A NaN or infinity in any of them is refused by name: eslt never records one there (a diverged
    evaluation fails `eslt sharpness`; in `eslt lmc` it makes the barrier undefined), and a plot
    would otherwise drop it without a word. ``where`` (file and record number, or stdin line)
    is kept in the record as ``_where`` for later messages.
    """
    r.setdefault("_where", where)
    for key, ok in RECORD_FIELDS.get(str(r.get("kind")), {}).items():
        bad = _non_finite(r.get(key))
        if bad is not None:
            raise BadInput(f"{where}: {r.get('kind')} record field {key!r} holds {number_text(bad)}: plots need "
                           f"finite values; remove that record (or re-run `eslt {r.get('kind')}` for it)")  # fmt: skip
        if r.get(key) is not None and not ok(r[key]):
            raise BadInput(f"{where}: {r.get('kind')} record field {key!r} is malformed: {str(r[key])[:60]!r}")
    alpha, error = r.get("alpha"), r.get("error")
    if r.get("kind") == "lmc" and isinstance(alpha, list) and isinstance(error, list) and len(alpha) != len(error):
        raise BadInput(f"{where}: lmc record has {len(alpha)} alphas but {len(error)} errors")
    t, loss = r.get("t"), r.get("loss")
    if r.get("kind") == "sharpness" and isinstance(t, list) and isinstance(loss, list) and loss:
        row = loss[0] if isinstance(loss[0], list) else loss
        if len(row) != len(t):
            raise BadInput(f"{where}: sharpness record has {len(t)} steps t but {len(row)} losses per direction")
    return r


def _count(v: Any) -> bool:
    return _finite(v) and v >= 0


def _layers(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(st, dict) and _count(st.get("remaining")) and _count(st.get("total")) for st in v.values()
    )


def _evals(v: Any) -> bool:
    if not isinstance(v, dict):
        return False
    gens, metric = v.get("generation", []), v.get("metric", [])
    return _flat(gens) and _flat(metric) and len(gens) == len(metric)


# Fields of checkpoint meta the plots read beyond what the schema checks, and what each must hold
# (None or absent allowed). NaN is allowed where eslt writes it (an undefined correlation) and drawn as such.
META_FIELDS: dict[tuple[str, ...], Callable[[Any], bool]] = {
    ("sparsity", "remaining"): _count, ("sparsity", "total"): _count, ("sparsity", "layers"): _layers,
    ("snr_stats", "pearson"): lambda v: _numbers(v) and not isinstance(v, list),
    ("snr_stats", "spearman"): lambda v: _numbers(v) and not isinstance(v, list),
    ("history", "fitness_mean"): _flat, ("history", "eval"): _evals,
}  # fmt: skip


def check_meta(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` if the fields the plots read have the right types (a one-line :class:`BadInput` otherwise)."""
    for keys, ok in META_FIELDS.items():
        value: Any = meta
        for k in keys:
            value = value.get(k) if isinstance(value, dict) else None
        if value is not None and not ok(value):
            raise BadInput(f"{path}: meta {'.'.join(keys)} is malformed ({str(value)[:60]!r}); the checkpoint "
                           "is damaged (or not eslt's): re-create it")  # fmt: skip
    return meta


def collect(paths: Iterable[str], lines: Iterable[str] = ()) -> Inputs:
    """Parse path arguments and stdin ``lines`` (paths or JSON object lines) into :class:`Inputs`.

    Checkpoints found twice are kept once.
    """
    inputs = Inputs()
    for p in paths:
        _add_path(inputs, Path(p))
    for n, line in enumerate(lines, 1):
        if not line:
            continue
        if line.strip().startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                raise BadInput(f"stdin line {n}: starts with '{{' but is not a JSON object") from None
            if not isinstance(obj, dict):
                raise BadInput(f"stdin line {n}: a JSON line must be an object (a record or a --json line)")
            if str(obj.get("kind")) in RECORD_FIELDS:
                inputs.records.append(check_record(obj, f"stdin line {n}"))
            elif isinstance(obj.get("path"), str):  # a --json line of train/prune/...: its checkpoint
                _add_path(inputs, Path(obj["path"]))
            else:
                inputs.records.append(obj)
        else:
            _add_path(inputs, Path(line))  # a path exactly as piped, spaces included (as every command reads it)
    seen: set[Path] = set()
    unique = []
    for c in inputs.checkpoints:
        key = c.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(c)
    inputs.checkpoints = unique
    return inputs


def load_surface(path: Path) -> dict[str, np.ndarray]:
    raw = outputs.read_regular(path, MAX_SURFACE_BYTES)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:  # bounded: no member may unpack past the limit
            if sum(info.file_size for info in archive.infolist()) > MAX_SURFACE_BYTES:
                raise BadInput(f"{path}: its arrays unpack to more than 256 MiB: not a surface eslt wrote")
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise BadInput(f"{path}: unreadable .npz ({type(exc).__name__}); {SURFACE_HINT}") from None
    alpha, beta, loss = arrays.get("alpha"), arrays.get("beta"), arrays.get("loss")
    if alpha is None or beta is None or loss is None or loss.ndim != 2 or loss.shape != (alpha.size, beta.size):
        raise BadInput(f"{path}: no 2D loss grid (arrays alpha (n,), beta (m,), loss (n, m)); {SURFACE_HINT}")
    if not all(np.issubdtype(x.dtype, np.number) and not np.issubdtype(x.dtype, np.complexfloating)
               for x in (alpha, beta, loss)):  # fmt: skip
        raise BadInput(f"{path}: alpha, beta and loss must be real numbers; {SURFACE_HINT}")
    if not (np.all(np.isfinite(alpha)) and np.all(np.isfinite(beta))):
        raise BadInput(f"{path}: alpha or beta holds NaN or Infinity; not a surface eslt wrote")
    return arrays


def surface_path(r: dict[str, Any]) -> Path | None:
    s = r.get("surface")
    if not s:
        return None
    p = Path(s)
    if not p.is_absolute() and not p.exists() and r.get("_source"):
        near = Path(r["_source"]).parent / p
        if near.exists():
            return near
    return p
