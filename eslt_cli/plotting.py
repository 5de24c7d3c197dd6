"""Figures from eslt outputs: checkpoints' meta, ``eslt lmc`` / ``eslt sharpness`` JSON lines, 2D surfaces.

Pure functions over parsed inputs, one per kind, all with the signature of
:data:`PlotFn`; :data:`PLOTS` maps each kind to its function. The inputs are
gathered by :func:`collect` (checkpoint folders, folders searched recursively,
``.jsonl``/``.json`` record files, ``.npz`` surfaces, JSON object lines) into
an :class:`Inputs`. Only checkpoint ``meta`` is read, never arrays.

matplotlib draws with the non-interactive Agg backend; figures are written
atomically (a hidden temporary file renamed into place) as PNG, SVG or PDF by
the suffix of the output path.
"""

from __future__ import annotations

import io
import json
import math
import os
import uuid
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from eslt_cli import files
from eslt_cli.checkpoint import find, read_meta
from eslt_cli.errors import BadInput, RunFailed
from eslt_cli.specs import optimiser_of

SUFFIXES = (".png", ".svg", ".pdf")
WHICH = ("final", "best")
SURFACE_HINT = "surface needs a 2D grid: run `eslt sharpness --2d ...` and plot its output or the .npz it writes"
MAX_RECORDS_BYTES = 256 << 20  # a .jsonl/.json record file: far more than any analysis writes
MAX_SURFACE_BYTES = 256 << 20  # a surface .npz (a 201 x 201 grid is under 1 MiB)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Ckpt:
    """A checkpoint's path and meta."""

    path: Path
    meta: dict[str, Any]


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
        surfaces = [p for p in (_surface_path(r) for r in self.records if r.get("kind") == "sharpness") if p]
        return [c.path for c in self.checkpoints] + self.files + self.surfaces + surfaces

    def describe(self) -> str:
        kinds: dict[str, int] = defaultdict(int)
        for r in self.records:
            kind = str(r.get("kind", "unknown"))
            kinds[kind if kind.isprintable() and len(kind) <= 40 else repr(kind)[:40]] += 1  # one line, always
        recs = ", ".join(f"{n} {k} record{'s' if n != 1 else ''}" for k, n in sorted(kinds.items())) or "0 records"
        return f"{len(self.checkpoints)} checkpoints, {recs}, {len(self.surfaces)} .npz surfaces"


def _parse_records(path: Path) -> list[dict[str, Any]]:
    try:
        text = files.read_regular(path, MAX_RECORDS_BYTES).decode("utf-8")
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
        inputs.checkpoints.extend(Ckpt(p, check_meta(p, read_meta(p))) for p in found)
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


def _number_text(v: float) -> str:
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
            raise BadInput(f"{where}: {r.get('kind')} record field {key!r} holds {_number_text(bad)}: plots need "
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
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
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
            _add_path(inputs, Path(line))
    seen: set[Path] = set()
    unique = []
    for c in inputs.checkpoints:
        key = c.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(c)
    inputs.checkpoints = unique
    return inputs


# --------------------------------------------------------------------------- output


def check_out(out: Path, force: bool = False, inputs: Iterable[Path] = ()) -> None:
    """Refuse an output path with an unknown suffix, or one :func:`eslt_cli.files.check_replace` refuses.

    An existing file is replaced only with ``force``, and only when eslt drew it and nobody
    changed it since (its ``.<name>.eslt`` record, see :mod:`eslt_cli.files`); never an input.
    """
    check_format(out)
    files.check_replace(Path(out), "figure", force, "--out", inputs)


def check_format(out: Path) -> None:
    """Refuse an output path whose suffix is not a figure format."""
    if Path(out).suffix.lower() not in SUFFIXES:
        raise BadInput(f"--out {out}: unknown figure format '{Path(out).suffix}'; end the name with .png, .svg or .pdf")


MARK = b"eslt-figure"  # written into every figure's metadata (PNG text, SVG/PDF creator): a label, not a proof


def _save(fig: Any, out: Path, dpi: int) -> Path:
    """Write ``fig`` atomically, then its record (so ``--force`` may replace it later)."""
    out = Path(out)
    try:
        check_format(out)
    except BadInput:
        plt.close(fig)
        raise
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        plt.close(fig)
        raise RunFailed(f"cannot create the folder of {out}: {exc.strerror or exc}") from None
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}{out.suffix}"
    try:
        fmt = out.suffix.lower()[1:]
        mark = {
            "png": {"Software": MARK.decode()},
            "svg": {"Creator": MARK.decode()},
            "pdf": {"Creator": MARK.decode()},
        }
        fig.savefig(tmp, dpi=dpi, format=fmt, bbox_inches="tight", metadata=mark[fmt])
        os.replace(tmp, out)
    except OSError as exc:
        raise RunFailed(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    files.remember(out, "figure")
    return out


def _axes(n: int, width: float = 5.0, height: float = 3.6, max_cols: int = 3) -> tuple[Any, list[Any]]:
    cols = min(n, max_cols)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained")
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


# --------------------------------------------------------------------------- meta helpers


def _task(meta: dict[str, Any]) -> str:
    task = meta.get("task")
    return str(task.get("name") if isinstance(task, dict) else task)


def _remaining_pct(meta: dict[str, Any]) -> float:
    sp = meta.get("sparsity")
    if isinstance(sp, dict):
        if sp.get("total"):
            return 100.0 * float(sp["remaining"]) / float(sp["total"])
        return 100.0 * (1.0 - float(sp.get("global", 0.0)))
    if isinstance(sp, (int, float)):
        return 100.0 * (1.0 - float(sp))
    return 100.0


def _metric_label(metric: str) -> str:
    return {"accuracy": "test accuracy", "return": "test return (mean episode return)"}.get(metric, f"test {metric}")


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std()) if arr.size > 1 else 0.0


def _plain_log(axis: Any) -> None:
    """Plain numbers (100, 50, 12.5) on a log axis instead of powers of ten; no minor labels."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    axis.set_minor_formatter(NullFormatter())


def _remaining_axis(ax: Any, xs: Iterable[float]) -> None:
    """Log x axis of remaining weights in percent, decreasing to the right as in the paper."""
    xs = sorted({round(x, 3) for x in xs if x > 0}, reverse=True)
    ax.set_xscale("log")
    if xs:
        lo, hi = xs[-1], xs[0]
        ax.set_xlim(hi * 1.12, lo / 1.12)  # inverted: sparser to the right
        if len(xs) <= 8:
            ticks = [x for i, x in enumerate(xs) if i == 0 or xs[i - 1] / x > 1.15]  # no crowded labels
        else:
            ticks = [t for t in (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1) if lo / 1.12 <= t <= hi * 1.12]
        ax.set_xticks(ticks)
    _plain_log(ax.xaxis)
    ax.set_xlabel("remaining weights (%, log scale)")


def _integer_x(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _band(ax: Any, x: Sequence[float], mean: Sequence[float], std: Sequence[float], label: str, **kw: Any) -> None:
    xs, m, s = (np.asarray(v, dtype=float) for v in (x, mean, std))
    (line,) = ax.plot(xs, m, marker="o", ms=4, label=label, **kw)
    if np.any(s > 0):
        ax.fill_between(xs, m - s, m + s, color=line.get_color(), alpha=0.2, lw=0)


def _band_of(ax: Any, samples: dict[Any, list[float]], label: str, reverse: bool = False) -> list[Any]:
    """Mean ± std of ``samples`` (x -> values) as a band, x sorted; returns the x values."""
    xs = sorted(samples, reverse=reverse)
    ms = [_mean_std(samples[x]) for x in xs]
    _band(ax, xs, [a for a, _ in ms], [b for _, b in ms], label)
    return xs


def _mark_non_finite(ax: Any, xs: Sequence[float], label: str) -> None:
    """Red crosses at the bottom edge of ``ax`` at ``xs``: NaN, infinite or missing values, shown, not dropped."""
    if not xs:
        return
    from matplotlib.transforms import blended_transform_factory

    ax.plot(list(xs), [0.03] * len(xs), ls="none", marker="x", color="red", ms=7, mew=1.5, clip_on=False,
            transform=blended_transform_factory(ax.transData, ax.transAxes), label=label)  # fmt: skip


def _value_text(v: Any) -> str:
    return "missing" if v is None else _number_text(float(v))


def _run_name(meta: dict[str, Any]) -> str:
    return f"{_task(meta)} {optimiser_of(meta)} {meta.get('arm')} level {meta.get('level')} seed {meta.get('seed')}"


def _legend(ax: Any, **kw: Any) -> None:
    """A legend, when something on ``ax`` has a label (matplotlib warns on stderr otherwise)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def _need(kind: str, what: str, inputs: Inputs) -> BadInput:
    return BadInput(f"{kind} needs {what}; got {inputs.describe()}")


# --------------------------------------------------------------------------- kinds


def plot_sparsity(inputs: Inputs, out: Path, which: str = "final", dpi: int = 100) -> Path:
    """Test performance vs remaining weights: a line per arm (mean ± std over seeds), a panel per task."""
    if which not in WHICH:
        raise BadInput(f"--which {which!r}: choose final or best")
    trained = [
        c for c in inputs.checkpoints if c.meta.get("kind") == "trained" and (c.meta.get("metrics") or {}).get(which)
    ]
    if not trained:
        raise _need("sparsity", "trained checkpoints (from `eslt train`) of one or more pruning runs", inputs)
    tasks = sorted({_task(c.meta) for c in trained})
    fig, axes = _axes(len(tasks))
    for ax, task in zip(axes, tasks):
        here = [c for c in trained if _task(c.meta) == task]
        methods = sorted({optimiser_of(c.meta) for c in here})
        # (method, arm) -> level -> [(remaining %, metric)]
        points: dict[tuple[str, str], dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
        dense: dict[str, list[tuple[float, float]]] = defaultdict(list)
        non_finite: list[float] = []
        for c in here:
            value = c.meta["metrics"][which].get("metric")
            if value is None or not math.isfinite(value):  # shown, never dropped silently
                non_finite.append(_remaining_pct(c.meta))
                inputs.warnings.append(f"{c.path}: {which} test metric is {_value_text(value)} ({_run_name(c.meta)}): "
                                       "left out of the mean, marked × at the bottom of the figure")  # fmt: skip
                continue
            pt = (_remaining_pct(c.meta), float(value))
            if int(c.meta.get("level", 0)) == 0:
                dense[optimiser_of(c.meta)].append(pt)
            else:
                points[(optimiser_of(c.meta), str(c.meta.get("arm")))][int(c.meta["level"])].append(pt)
        for m in methods:  # level-0 dense runs start every arm's curve; alone, they are the "dense" curve
            if dense.get(m) and not any(k[0] == m for k in points):
                points[(m, "dense")][0] = dense[m]
            elif dense.get(m):
                for key in [k for k in points if k[0] == m]:
                    points[key][0] = dense[m]
        xs_all = []
        for (m, arm), levels in sorted(points.items()):
            lv = sorted(levels)
            x = [float(np.mean([p[0] for p in levels[k]])) for k in lv]
            ms = [_mean_std([p[1] for p in levels[k]]) for k in lv]
            seeds = max(len(levels[k]) for k in lv)
            label = (f"{m} {arm}" if len(methods) > 1 else arm) + (f" (n={seeds})" if seeds > 1 else "")
            _band(ax, x, [a for a, _ in ms], [b for _, b in ms], label)
            xs_all += x
        _mark_non_finite(ax, non_finite, f"{which} metric NaN or missing (not in the mean)")
        _remaining_axis(ax, xs_all + non_finite)
        ax.set_ylabel(_metric_label(str(here[0].meta.get("metric"))))
        ax.set_title(f"{task}: {which} ES mean" + (f" ({methods[0]})" if len(methods) == 1 else ""))
        ax.grid(alpha=0.3)
        _legend(ax, fontsize="small", title="arm (mean ± std over seeds)", title_fontsize="small")
    return _save(fig, out, dpi)


def _lmc_arm(r: dict[str, Any]) -> str | None:
    arms = sorted({str(a) for a in r.get("arms") or []} - {"dense"})
    return "/".join(arms) if arms else None


def _lmc_label(r: dict[str, Any], many_tasks: bool) -> str:
    """A record's strategy pair (and task, when several are present)."""
    strategies = [str(s) for s in r.get("strategies") or []]
    label = " vs ".join(strategies) if len(set(strategies)) > 1 else (strategies[0] if strategies else "run")
    return f"{r.get('task')}: {label}" if many_tasks else label


def _lmc_groups(r: dict[str, Any], many_tasks: bool, arms: Mapping[str, Sequence[str]]) -> list[str]:
    """The lines/panels a record belongs to: by strategy pair (and arm, when several arms are present)."""
    return _arm_groups(_lmc_label(r, many_tasks), _lmc_arm(r), arms)


def _error_label(records: Sequence[dict[str, Any]]) -> str:
    of = {str(r.get("error_of")) for r in records}
    if of == {"accuracy"}:
        return "test error (1 − accuracy)"
    if of == {"return"}:
        return "test error (−return)"
    return "test error"


def _record_name(r: dict[str, Any]) -> str:
    """How messages name a record: where it was read (file and record number, or stdin line), and its pair."""
    where = str(r.get("_where") or r.get("_source") or "a record")
    a, b = r.get("a"), r.get("b")
    pair = f" ({a} vs {b})" if isinstance(a, str) and isinstance(b, str) else ""
    return f"{where}: lmc record{pair}"


def _lmc_record(r: dict[str, Any]) -> dict[str, Any]:
    """``r`` with ``barrier`` the Frankle et al. (2020) barrier, whichever eslt wrote it.

    Records without ``barrier_definition`` predate it and hold the linear-baseline
    barrier under ``barrier``: theirs is recomputed from their error curve (kept
    as ``barrier_linear``), and one without a curve is refused rather than misread.
    """
    from eslt_cli.analysis.lmc import BARRIER_DEFINITION, barrier

    name = _record_name(r)
    if len(r.get("levels") or []) != 2:
        raise BadInput(f"{name} has no levels (the IMP levels of its two networks): not a line `eslt lmc` "
                       "printed; re-run `eslt lmc` for that pair")  # fmt: skip
    definition = r.get("barrier_definition")
    if definition is not None:
        if definition != BARRIER_DEFINITION:
            raise BadInput(f"{name} has barrier_definition {definition!r}, not {BARRIER_DEFINITION!r}: "
                           "re-run `eslt lmc` with this eslt")  # fmt: skip
        if not isinstance(r.get("barrier"), (int, float)):
            raise BadInput(f"{name} lacks a numeric barrier; re-run `eslt lmc`")
        return r
    if not r.get("alpha") or not r.get("error"):
        raise BadInput(f"{name} predates barrier_definition (its barrier is the old linear-baseline one) "
                       "and has no error curve to recompute it from; re-run `eslt lmc`")  # fmt: skip
    try:
        frankle = barrier(r["alpha"], r["error"])
    except (BadInput, TypeError, ValueError):
        raise BadInput(f"{name} has a malformed alpha/error curve; re-run `eslt lmc`") from None
    return {**r, "barrier": frankle, "barrier_linear": r.get("barrier"), "barrier_definition": BARRIER_DEFINITION}


def plot_lmc(inputs: Inputs, out: Path, which: str = "final", dpi: int = 100) -> Path:
    """Linear mode connectivity: barrier heatmap over level pairs (same seed), else barrier vs level.

    The barrier drawn is Frankle et al.'s (2020), ``max_α err(α) − (err(0) + err(1)) / 2``
    (Section 5); old records are converted or refused by :func:`_lmc_record`.
    """
    recs = [r for r in inputs.records if r.get("kind") == "lmc"]
    if not recs:
        raise _need("lmc", "`eslt lmc` output (JSON lines with kind 'lmc'), piped or as a .jsonl file", inputs)
    recs = [_lmc_record(r) for r in recs]
    many_tasks = len({r.get("task") for r in recs}) > 1
    arms = _arms_by(recs, lambda r: _lmc_label(r, many_tasks), _lmc_arm)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        for name in _lmc_groups(r, many_tasks, arms):
            groups[name].append(r)
    cross_level = any(int(r["levels"][0]) != int(r["levels"][1]) for r in recs)
    if cross_level:
        fig, axes = _axes(len(groups), width=4.6, height=4.0)
        for ax, (name, rs) in zip(axes, sorted(groups.items())):
            levels = sorted({int(lv) for r in rs for lv in r["levels"]})
            idx = {lv: i for i, lv in enumerate(levels)}
            cells: dict[tuple[int, int], list[float]] = defaultdict(list)
            for r in rs:
                a, b = idx[int(r["levels"][0])], idx[int(r["levels"][1])]
                cells[(a, b)].append(float(r["barrier"]))
                if a != b:
                    cells[(b, a)].append(float(r["barrier"]))
            grid = np.full((len(levels), len(levels)), np.nan)
            for (a, b), v in cells.items():
                grid[a, b] = float(np.mean(v))
            im = ax.imshow(grid, cmap="magma_r", origin="lower", vmin=0.0)
            if len(levels) <= 12:
                for a, b in cells:
                    val = grid[a, b]
                    ax.text(b, a, f"{val:.2f}" if abs(val) < 10 else f"{val:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if val > np.nanmax(grid) * 0.6 else "black")  # fmt: skip
            ax.set_xticks(range(len(levels)), [str(lv) for lv in levels])
            ax.set_yticks(range(len(levels)), [str(lv) for lv in levels])
            ax.set_xlabel("IMP level of network b")
            ax.set_ylabel("IMP level of network a")
            seed_pairs = any(r["levels"][0] == r["levels"][1] and len(set(r.get("seeds") or [])) > 1 for r in rs)
            ax.set_title(f"{name}: error barrier" + ("\n(diagonal: runs of different seeds)" if seed_pairs else ""))
            fig.colorbar(im, ax=ax, label=f"barrier ({_error_label(rs)})", shrink=0.85)
        return _save(fig, out, dpi)
    fig, axes = _axes(2)
    ax, ax2 = axes
    for name, rs in sorted(groups.items()):
        by_level: dict[int, list[float]] = defaultdict(list)
        for r in rs:
            by_level[int(r["levels"][0])].append(float(r["barrier"]))
        _band_of(ax, by_level, name)
    _integer_x(ax)
    ax.set_xlabel("IMP level (both networks)")
    ax.set_ylabel(f"error barrier ({_error_label(recs)})")
    ax.set_title("Linear mode connectivity: barrier vs level")
    ax.grid(alpha=0.3)
    _legend(ax, fontsize="small", title="pair (mean ± std)", title_fontsize="small")
    levels = sorted({int(r["levels"][0]) for r in recs})
    cmap = plt.get_cmap("viridis")
    styles = ["-", "--", ":", "-."]
    names = sorted(groups)
    for r in recs:
        if not r.get("alpha") or not r.get("error"):
            continue
        lvl = int(r["levels"][0])
        color = cmap(levels.index(lvl) / max(len(levels) - 1, 1))
        style = styles[names.index(_lmc_groups(r, many_tasks, arms)[0]) % len(styles)]
        ax2.plot(r["alpha"], r["error"], color=color, ls=style, lw=1.2, alpha=0.85)
    for lvl in levels:  # one legend entry per level
        ax2.plot([], [], color=cmap(levels.index(lvl) / max(len(levels) - 1, 1)), label=f"level {lvl}")
    if len(names) > 1:
        for i, n in enumerate(names):
            ax2.plot([], [], color="gray", ls=styles[i % len(styles)], label=n)
    ax2.set_xlabel("interpolation α (0: network a, 1: network b)")
    ax2.set_ylabel(_error_label(recs))
    ax2.set_title("Error along the linear path")
    ax2.grid(alpha=0.3)
    _legend(ax2, fontsize="small")
    return _save(fig, out, dpi)


def _sharp_label(r: dict[str, Any]) -> str:
    trainer = r.get("trainer")
    name = trainer.get("name") if isinstance(trainer, dict) else trainer
    strategy = r.get("strategy") or (trainer.get("strategy") if isinstance(trainer, dict) else None)
    if name in (None, "es"):
        return f"ES ({strategy})" if strategy else "ES"
    return str(name).upper() if len(str(name)) <= 3 else str(name)


def _arms_by(
    recs: Sequence[dict[str, Any]], base_of: Callable[[dict[str, Any]], str], arm_of: Callable[[dict[str, Any]], Any]
) -> dict[str, list[str]]:
    """The arms (not level-0 dense) of the records of each base label (an optimiser, a strategy pair)."""
    out: dict[str, set[str]] = defaultdict(set)
    for r in recs:
        if arm_of(r) not in (None, "dense"):
            out[base_of(r)].add(str(arm_of(r)))
    return {base: sorted(a) for base, a in out.items()}


def _arm_groups(base: str, arm: Any, arms: Mapping[str, Sequence[str]]) -> list[str]:
    """Line labels a record belongs to: per arm when several arms are present; level-0 dense starts each
    arm of its own base (an Adam level 0 starts the Adam chains only)."""
    every = sorted({a for v in arms.values() for a in v})
    if len(every) <= 1:
        return [base]
    if arm in (None, "dense"):
        return [f"{base} {a}" for a in arms.get(base) or every]
    return [f"{base} {arm}"]


def plot_sharpness(inputs: Inputs, out: Path, which: str = "final", dpi: int = 100) -> Path:
    """Curvature of 1D random loss projections vs remaining weights: a line per trainer (ES vs GD)."""
    recs = [r for r in inputs.records if r.get("kind") == "sharpness"]
    if not recs:
        raise _need("sharpness", "`eslt sharpness` output (JSON lines with kind 'sharpness')", inputs)
    tasks = sorted({str(r.get("task")) for r in recs})
    arms = _arms_by(recs, _sharp_label, lambda r: r.get("arm"))
    fig, axes = _axes(len(tasks) + 1)
    for ax, task in zip(axes, tasks):
        groups: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in recs:
            if str(r.get("task")) != task:
                continue
            x = _remaining_pct({"sparsity": r.get("sparsity", 0.0)})
            vals = r.get("curvature") or ([r["curvature_mean"]] if r.get("curvature_mean") is not None else [])
            if not vals:
                inputs.warnings.append(f"{r.get('_where', 'a sharpness record')}: no curvature; "
                                       "not in the curvature panel")  # fmt: skip
                continue
            for name in _arm_groups(_sharp_label(r), r.get("arm"), arms):
                groups[name][round(x, 6)].extend(float(v) for v in vals)
        xs_all = []
        for name, pts in sorted(groups.items()):
            xs_all += _band_of(ax, pts, name, reverse=True)
        _remaining_axis(ax, xs_all)
        ax.set_ylabel("curvature d²loss/dt² (quadratic fit)")
        ax.set_title(f"{task}: sharpness of the optimum")
        ax.grid(alpha=0.3)
        _legend(ax, fontsize="small", title="mean ± std over directions, runs", title_fontsize="small")
    ax2 = axes[-1]
    levels = sorted({int(r.get("level") or 0) for r in recs})
    cmap = plt.get_cmap("viridis")

    def line_of(r: dict[str, Any]) -> str:  # a level 0 joins its base's line when the base has one arm
        names = _arm_groups(_sharp_label(r), r.get("arm"), arms)
        return names[0] if len(names) == 1 else _sharp_label(r)

    labels = sorted({line_of(r) for r in recs})
    styles = ["-", "--", ":", "-."]
    profiles: dict[tuple[str, int, tuple[float, ...]], list[np.ndarray]] = defaultdict(list)
    for r in recs:  # mean over directions, then over runs of one line and level
        t, loss = r.get("t"), r.get("loss")
        if not t or not loss:
            continue
        arr = np.asarray(loss, dtype=float)
        profiles[(line_of(r), int(r.get("level") or 0), tuple(float(v) for v in t))].append(
            arr.mean(axis=0) if arr.ndim == 2 else arr
        )
    for (name, lvl, t), curves in sorted(profiles.items()):
        color = cmap(levels.index(lvl) / max(len(levels) - 1, 1) * 0.9)
        ax2.plot(t, np.mean(curves, axis=0), color=color, ls=styles[labels.index(name) % len(styles)], lw=1.3)
    for lvl in levels:
        ax2.plot([], [], color=cmap(levels.index(lvl) / max(len(levels) - 1, 1) * 0.9), label=f"level {lvl}")
    if len(labels) > 1:
        for i, n in enumerate(labels):
            ax2.plot([], [], color="gray", ls=styles[i % len(styles)], label=n)
    ax2.set_xlabel("perturbation strength t (along a random direction)")
    ax2.set_ylabel("test loss (mean over directions and runs)")
    ax2.set_title("1D loss projections")
    ax2.grid(alpha=0.3)
    _legend(ax2, fontsize="small")
    return _save(fig, out, dpi)


def _load_surface(path: Path) -> dict[str, np.ndarray]:
    raw = files.read_regular(path, MAX_SURFACE_BYTES)
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


def _surface_path(r: dict[str, Any]) -> Path | None:
    s = r.get("surface")
    if not s:
        return None
    p = Path(s)
    if not p.is_absolute() and not p.exists() and r.get("_source"):
        near = Path(r["_source"]).parent / p
        if near.exists():
            return near
    return p


def plot_surface(inputs: Inputs, out: Path, which: str = "final", dpi: int = 100) -> Path:
    """Filled contours of 2D loss surfaces (sharpness records' ``surface`` or ``.npz`` paths), side by side."""
    panels: list[tuple[str, Path]] = []
    for r in inputs.records:
        if r.get("kind") == "sharpness":
            p = _surface_path(r)
            if p is not None:
                title = f"{r.get('task')} {_sharp_label(r)}, level {r.get('level')}"
                panels.append((title + f" ({_remaining_pct({'sparsity': r.get('sparsity', 0.0)}):.3g}% left)", p))
    panels += [(p.stem, p) for p in inputs.surfaces]
    if not panels:
        raise BadInput(f"{SURFACE_HINT}; got {inputs.describe()}")
    for _, p in panels:
        if not p.exists():
            raise BadInput(f"{p}: surface file not found (moved?); {SURFACE_HINT}")
    grids = [_load_surface(p) for _, p in panels]  # all checked before drawing
    for (_, p), g in zip(panels, grids):
        if not np.isfinite(np.asarray(g["loss"], dtype=float)).any():
            raise BadInput(f"{p}: every loss on the grid is NaN or Infinity: nothing to draw (try a smaller --radius)")
    fig, axes = _axes(len(panels), width=4.4, height=3.9, max_cols=4)
    for ax, (title, p), s in zip(axes, panels, grids):
        a, b, loss = s["alpha"], s["beta"], np.asarray(s["loss"], dtype=float)
        bad = ~np.isfinite(loss)
        if bad.any():  # shown as such: blank in the contours, a cross on each such grid point
            inputs.warnings.append(f"{p}: {int(bad.sum())} of {bad.size} grid points have a non-finite loss; "
                                   "left blank and marked ×")  # fmt: skip
            ii, jj = np.nonzero(bad)
            ax.plot(b[jj], a[ii], ls="none", marker="x", color="red", ms=5, label="non-finite loss")
        cs = ax.contourf(b, a, np.ma.masked_invalid(loss), levels=20, cmap="viridis")
        ax.contour(b, a, np.ma.masked_invalid(loss), levels=10, colors="white", linewidths=0.4, alpha=0.6)
        ax.plot([0], [0], marker="*", color="red", ms=10, label="trained optimum")
        ax.set_xlabel("β (second random direction)")
        ax.set_ylabel("α (first random direction)")
        ax.set_title(title, fontsize="medium")
        _legend(ax, fontsize="small", loc="upper right")
        fig.colorbar(cs, ax=ax, label="test loss", shrink=0.85)
    return _save(fig, out, dpi)


def _group_label(meta: dict[str, Any], many_tasks: bool, many_methods: bool) -> str:
    parts = [_task(meta)] if many_tasks else []
    if many_methods:
        parts.append(optimiser_of(meta))
    return " ".join(parts)


def plot_layers(inputs: Inputs, out: Path, which: str = "final", dpi: int = 100) -> Path:
    """Remaining fraction per layer vs IMP level (a line per layer, mean over seeds), a panel per arm."""
    layers_of = lambda c: (c.meta.get("sparsity") or {}).get("layers")
    cks = [c for c in inputs.checkpoints if isinstance(layers_of(c), dict) and layers_of(c)]
    if not cks:
        raise _need("layers", "checkpoints (tickets or trained) whose meta holds sparsity.layers", inputs)
    many_tasks = len({_task(c.meta) for c in cks}) > 1
    many_methods = len({optimiser_of(c.meta) for c in cks}) > 1
    # (group, arm) -> layer -> level -> {seed: remaining %}; tickets and trained of one level share a mask
    data: dict[tuple[str, str], dict[str, dict[int, dict[Any, float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(dict))
    )

    def add(key: tuple[str, str], meta: dict[str, Any]) -> None:
        for layer, st in meta["sparsity"]["layers"].items():
            pct = 100.0 * float(st["remaining"]) / max(float(st["total"]), 1.0)
            data[key][layer][int(meta.get("level", 0))][meta.get("seed")] = pct

    dense = [c for c in cks if int(c.meta.get("level", 0)) == 0]
    for c in cks:
        if int(c.meta.get("level", 0)) != 0:
            add((_group_label(c.meta, many_tasks, many_methods), str(c.meta.get("arm"))), c.meta)
    for c in dense:  # level 0 starts every arm of its group
        group = _group_label(c.meta, many_tasks, many_methods)
        for key in [k for k in list(data) if k[0] == group] or [(group, "dense")]:
            add(key, c.meta)
    panels = sorted(data)
    fig, axes = _axes(len(panels))
    for ax, key in zip(axes, panels):
        panel = " ".join(s for s in key if s)
        for layer, levels in data[key].items():
            lv = sorted(levels)
            ms = [_mean_std(list(levels[k].values())) for k in lv]
            _band(ax, lv, [a for a, _ in ms], [b for _, b in ms], layer)
        ax.set_yscale("log")
        lows = [min(_mean_std(list(v.values()))[0] for v in levels.values()) for levels in data[key].values()]
        ax.set_ylim(max(min(lows) / 1.5, 1e-3), 130)  # a band reaching 0 would stretch the log axis
        _plain_log(ax.yaxis)
        _integer_x(ax)
        ax.set_xlabel("IMP level")
        ax.set_ylabel("remaining weights in layer (%, log scale)")
        ax.set_title(f"{panel}: per-layer remaining weights")
        ax.grid(alpha=0.3, which="both")
        _legend(ax, fontsize="small", title="layer", title_fontsize="small")
    return _save(fig, out, dpi)


def plot_snr(inputs: Inputs, out: Path, which: str = "final", dpi: int = 100) -> Path:
    """Pearson and Spearman correlation of |mean| and SNR vs level, from tickets' ``snr_stats``."""
    cks = [c for c in inputs.checkpoints if isinstance(c.meta.get("snr_stats"), dict)]
    if not cks:
        raise _need(
            "snr", "tickets made by `eslt prune` from a diagonal-ES checkpoint (their meta holds snr_stats)", inputs
        )
    many_tasks = len({_task(c.meta) for c in cks}) > 1
    many_methods = len({optimiser_of(c.meta) for c in cks}) > 1
    fig, axes = _axes(2)
    for ax, key, name in zip(axes, ("pearson", "spearman"), ("Pearson", "Spearman")):
        groups: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        undefined: list[float] = []
        for c in cks:
            label = " ".join(s for s in (_group_label(c.meta, many_tasks, many_methods), str(c.meta.get("arm"))) if s)
            value = c.meta["snr_stats"].get(key)
            if value is None or not math.isfinite(value):  # NaN: undefined (constant |mean| or SNR); shown
                undefined.append(int(c.meta.get("level", 0)))
                inputs.warnings.append(f"{c.path}: snr_stats.{key} is {_value_text(value)} ({_run_name(c.meta)}): "
                                       "left out of the mean, marked × at the bottom of the figure")  # fmt: skip
                continue
            groups[label][int(c.meta.get("level", 0))].append(float(value))
        for label, levels in sorted(groups.items()):
            _band_of(ax, levels, label)
        _mark_non_finite(ax, undefined, "correlation undefined (NaN) or missing")
        _integer_x(ax)
        ax.set_xlabel("level of the ticket (scores from the trained level before)")
        ax.set_ylabel(f"{name} correlation of |mean| and SNR")
        ax.set_title(f"Magnitude–SNR correlation ({name})")
        ax.grid(alpha=0.3)
        _legend(ax, fontsize="small", title="arm (mean ± std over seeds)", title_fontsize="small")
    return _save(fig, out, dpi)


def plot_curves(inputs: Inputs, out: Path, which: str = "final", dpi: int = 100) -> Path:
    """Training curves: population mean fitness and test metric vs generation, a line per checkpoint."""
    cks = [
        c
        for c in inputs.checkpoints
        if c.meta.get("kind") == "trained" and (c.meta.get("history") or {}).get("fitness_mean")
    ]
    if not cks:
        raise _need("curves", "trained checkpoints (from `eslt train`) with a training history", inputs)
    cks.sort(key=lambda c: (_task(c.meta), str(c.meta.get("arm")), int(c.meta.get("level", 0)), c.meta.get("seed", 0)))
    many_tasks = len({_task(c.meta) for c in cks}) > 1
    many_methods = len({optimiser_of(c.meta) for c in cks}) > 1
    metrics = {str(c.meta.get("metric")) for c in cks}
    levels = sorted({int(c.meta.get("level", 0)) for c in cks})
    arms = sorted({str(c.meta.get("arm")) for c in cks})
    cmap = plt.get_cmap("viridis")
    styles = ["-", "--", ":", "-."]
    fig, (ax, ax2) = _axes(2)
    for c in cks:
        m = c.meta
        color = cmap(levels.index(int(m.get("level", 0))) / max(len(levels) - 1, 1) * 0.9)
        ls = styles[arms.index(str(m.get("arm"))) % len(styles)]
        prefix = _group_label(m, many_tasks, many_methods)
        label = f"{prefix + ' ' if prefix else ''}L{m.get('level')} {m.get('arm')} s{m.get('seed')}"
        fit = np.asarray(m["history"]["fitness_mean"], dtype=float)
        ev = m["history"].get("eval") or {}
        gaps = int(np.sum(~np.isfinite(fit))) + int(np.sum(~np.isfinite(np.asarray(ev.get("metric") or [], float))))
        if gaps:
            inputs.warnings.append(f"{c.path}: {gaps} non-finite value(s) in its training history ({_run_name(m)}): "
                                   "gaps in its curves")  # fmt: skip
        sign = -1.0 if m.get("metric") == "return" else 1.0  # control fitness is the negative return
        ax.plot(np.arange(1, fit.size + 1), sign * fit, color=color, ls=ls, lw=1.1, label=label)
        if ev.get("generation"):
            ax2.plot(ev["generation"], ev["metric"], color=color, ls=ls, lw=1.1, marker=".", label=label)
    fit_label = "population mean return" if metrics == {"return"} else (
        "population mean loss (cross-entropy)" if metrics == {"accuracy"} else "population mean fitness")  # fmt: skip
    ax.set_ylabel(fit_label)
    ax.set_title("ES population during training")
    ax2.set_ylabel(_metric_label(metrics.pop()) if len(metrics) == 1 else "test metric")
    ax2.set_title("Test evaluation of the ES mean")
    for a in (ax, ax2):
        a.set_xlabel("generation")
        a.grid(alpha=0.3)
    ncol = 1 if len(cks) <= 10 else 2
    _legend(ax2, fontsize="x-small", ncol=ncol, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="level arm seed",
               title_fontsize="x-small")  # fmt: skip
    return _save(fig, out, dpi)


PlotFn = Callable[..., Path]
"""``fn(inputs: Inputs, out: Path, which: str = "final", dpi: int = 100) -> Path`` (the written file)."""

PLOTS: dict[str, PlotFn] = {
    "sparsity": plot_sparsity,
    "lmc": plot_lmc,
    "sharpness": plot_sharpness,
    "surface": plot_surface,
    "layers": plot_layers,
    "snr": plot_snr,
    "curves": plot_curves,
}

NEEDS = {
    "sparsity": "trained checkpoints or run folders",
    "lmc": "`eslt lmc` JSON lines",
    "sharpness": "`eslt sharpness` JSON lines",
    "surface": "`eslt sharpness --2d` JSON lines or its .npz",
    "layers": "checkpoints or run folders",
    "snr": "tickets pruned from diagonal-ES checkpoints",
    "curves": "trained checkpoints",
}


def plot(kind: str, inputs: Inputs, out: Path, which: str = "final", dpi: int = 100, force: bool = False) -> Path:
    """Draw ``kind`` from ``inputs`` into ``out`` (an existing ``out`` only with ``force``, see :func:`check_out`).

    Points a figure shows specially (non-finite metrics) are listed in ``inputs.warnings``.
    """
    if kind not in PLOTS:
        raise BadInput(f"unknown plot kind {kind!r}: choose one of {', '.join(PLOTS)}")
    if which not in WHICH:
        raise BadInput(f"--which {which!r}: choose final or best")
    if dpi <= 0:
        raise BadInput(f"--dpi {dpi}: must be positive")
    check_out(Path(out), force, inputs.paths())  # before any drawing
    return PLOTS[kind](inputs, out, which=which, dpi=dpi)
