"""Image-classification data for the vision tasks.

Loads train/test splits either from the four standard IDX files (MNIST,
Fashion-MNIST, as Debian ships them) or from a locally prepared
tensorflow-datasets dataset, read through ``tfds.data_source`` so that
TensorFlow is not needed. Nothing here downloads anything.
"""

from __future__ import annotations

import difflib
import functools
import gzip
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eslt_cli.errors import BadInput, DataMissing

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# Base names of the four IDX files; each may also carry a ".gz" suffix.
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

# IDX type codes (third magic byte) -> big-endian numpy dtype.
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# Records fetched per tfds read: batched reads are ~30x faster than one by one.
_TFDS_CHUNK = 1024

# Plain registered names, optionally with a config and a version. Namespaced
# names ("huggingface:x") are refused because resolving them needs the network.
_TFDS_NAME = re.compile(r"[a-z0-9_]+(/[A-Za-z0-9_.+-]+)?(:[0-9*]+\.[0-9*]+\.[0-9*]+)?")


@dataclass(frozen=True, eq=False)
class ImageData:
    """Train and test images (uint8, NHWC) with int32 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    source: str

    def __post_init__(self) -> None:
        splits = ((self.x_train, self.y_train, "train"), (self.x_test, self.y_test, "test"))
        for x, y, split in splits:
            if x.ndim != 4 or x.dtype != np.uint8:
                raise BadInput(f"{self.source}: {split} images must be uint8 (N, H, W, C), got {x.dtype} {x.shape}")
            if y.shape != (x.shape[0],) or y.dtype != np.int32:
                raise BadInput(f"{self.source}: {x.shape[0]} {split} images but labels are {y.dtype} {y.shape}")
            if y.size and (y.min() < 0 or y.max() >= self.num_classes):
                raise BadInput(f"{self.source}: {split} labels outside 0..{self.num_classes - 1}")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise BadInput(
                f"{self.source}: train images are {self.x_train.shape[1:]} but test images are {self.x_test.shape[1:]}"
            )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one image."""
        h, w, c = self.x_train.shape[1:]
        return int(h), int(w), int(c)


def _frozen(data: ImageData) -> ImageData:
    """Marks the arrays read-only: cached results are shared between callers."""
    for arr in (data.x_train, data.y_train, data.x_test, data.y_test):
        arr.flags.writeable = False
    return data


# --------------------------------------------------------------------------- IDX


def read_idx(path: Path) -> np.ndarray:
    """Parses one IDX file (gzipped if the name ends in ``.gz``) into a native-endian array."""
    path = Path(path)
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        # OSError covers a missing file and gzip.BadGzipFile; EOFError a cut-off gzip stream.
        raise BadInput(f"cannot read IDX file {path}: {e}") from e

    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise BadInput(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'missing'})")
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise BadInput(f"IDX file {path} is truncated (header cut short)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "longer than its header says"
        raise BadInput(f"IDX file {path} is {what}: {got} data bytes for shape {shape}, expected {expected}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    # Native byte order so downstream code (jax) never sees '>' dtypes.
    return arr.astype(dtype.newbyteorder("="), copy=False)


def _find_idx(folder: Path, base: str) -> Path | None:
    for name in (base, base + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def has_idx_files(folder: Path) -> bool:
    """True when ``folder`` holds all four standard IDX files (plain or gzipped)."""
    folder = Path(folder)
    return folder.is_dir() and all(_find_idx(folder, base) for base in IDX_FILES.values())


def load_idx_folder(folder: Path) -> ImageData:
    """Loads the four standard IDX files from ``folder`` (cached per resolved path)."""
    return _load_idx_cached(Path(folder).resolve())


@functools.lru_cache(maxsize=4)
def _load_idx_cached(folder: Path) -> ImageData:
    paths = {key: _find_idx(folder, base) for key, base in IDX_FILES.items()}
    missing = [IDX_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise BadInput(f"{folder} lacks the IDX files {', '.join(missing)} (plain or .gz)")
    arrays = {key: read_idx(p) for key, p in paths.items() if p is not None}

    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        xp, yp = paths[f"x_{split}"], paths[f"y_{split}"]
        if x.ndim != 3 or x.dtype != np.uint8:
            raise BadInput(f"{xp} must hold uint8 images (N, H, W), got {x.dtype} {x.shape}")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise BadInput(f"{yp} must hold integer labels (N,), got {y.dtype} {y.shape}")
        if x.shape[0] != y.shape[0]:
            raise BadInput(f"{xp} has {x.shape[0]} images but {yp} has {y.shape[0]} labels")
        if y.size and y.min() < 0:
            raise BadInput(f"{yp} has negative labels")

    y_train = arrays["y_train"].astype(np.int32)
    y_test = arrays["y_test"].astype(np.int32)
    num_classes = int(max(y_train.max(initial=-1), y_test.max(initial=-1))) + 1
    return _frozen(
        ImageData(
            x_train=arrays["x_train"][..., None],  # grayscale: add the channel axis
            y_train=y_train,
            x_test=arrays["x_test"][..., None],
            y_test=y_test,
            num_classes=num_classes,
            source=f"idx:{folder}",
        )
    )


# -------------------------------------------------------------------------- TFDS


def load_tfds(name: str, data_dir: str | None) -> ImageData:
    """Loads the train and test splits of a locally prepared tfds dataset (cached).

    ``data_dir=None`` lets tfds use its default (``TFDS_DATA_DIR`` or
    ``~/tensorflow_datasets``). Never downloads: a dataset that is not prepared
    raises :class:`DataMissing`.
    """
    if data_dir is not None and "://" not in str(data_dir):
        data_dir = os.path.abspath(data_dir)
    return _load_tfds_cached(name, None if data_dir is None else str(data_dir))


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _builder(tfds: Any, name: str, data_dir: str | None) -> Any:
    """tfds.builder, with its errors turned into one-line BadInput."""
    from tensorflow_datasets.core.registered import DatasetNotFoundError

    if not _TFDS_NAME.fullmatch(name):
        raise BadInput(f"{name!r} is not a tfds dataset name (expected e.g. 'mnist' or 'cifar10')")
    try:
        return tfds.builder(name, data_dir=data_dir)
    except DatasetNotFoundError as e:
        close = difflib.get_close_matches(name, tfds.list_builders(with_community_datasets=False), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise BadInput(f"{name!r} is not a tfds dataset{hint}") from e
    except (ValueError, AssertionError) as e:
        # Unknown config (ValueError) or version (AssertionError).
        raise BadInput(f"cannot use tfds dataset {name!r}: {_first_line(e)}") from e


def _missing_message(name: str, builder: Any) -> str:
    root = builder.data_dir_root
    base = name.split("/")[0].split(":")[0]
    # data_source needs a random-access format, hence --file_format=array_record.
    how = (
        f"download it on a host with network (python -m tensorflow_datasets.scripts.download_and_prepare "
        f"--datasets={base} --data_dir=DIR --file_format=array_record) "
        f"or pass --data-dir pointing at a folder with the four IDX files"
    )
    if builder.is_prepared():
        fmt = builder.info.file_format
        stored = fmt.value if fmt is not None else "a format without random access"
        return f"dataset {name!r} in {root} is stored as {stored}, which needs TensorFlow: {how}"
    return f"dataset {name!r} is not in {root}: {how}"


@functools.lru_cache(maxsize=4)
def _load_tfds_cached(name: str, data_dir: str | None) -> ImageData:
    # Imported here: it costs ~0.5 s and the IDX path does not need it.
    import tensorflow_datasets as tfds

    builder = _builder(tfds, name, data_dir)
    features = builder.info.features
    keys = set(features.keys())
    if not {"image", "label"} <= keys or not isinstance(features["label"], tfds.features.ClassLabel):
        listed = ", ".join(sorted(keys))
        raise BadInput(f"tfds dataset {name!r} is not image classification (features: {listed})")
    image = features["image"]
    if not isinstance(image, tfds.features.Image) or None in image.shape or image.np_dtype != np.uint8:
        raise BadInput(f"tfds dataset {name!r} does not have fixed-size uint8 images (image: {image.shape})")
    image_shape = tuple(int(d) for d in image.shape)
    num_classes = int(features["label"].num_classes)

    try:
        # download=False: the default would call download_and_prepare, i.e. the network.
        train, test = tfds.data_source(name, split=["train", "test"], data_dir=data_dir, download=False)
    except (NotImplementedError, KeyError, FileNotFoundError) as e:
        # Not prepared: NotImplementedError (no random-access format recorded,
        # as when data_dir is given) or KeyError (no splits, data_dir=None).
        # NotImplementedError also means "prepared as TFRecord"; the message tells which.
        raise DataMissing(_missing_message(name, builder)) from e

    try:
        x_train, y_train = _read_split(train, image_shape)
        x_test, y_test = _read_split(test, image_shape)
    except ImportError as e:
        # tfds decodes the stored PNGs with OpenCV or Pillow when TensorFlow is absent.
        raise BadInput(f"reading tfds images needs OpenCV or Pillow ({_first_line(e)})") from e
    return _frozen(
        ImageData(
            x_train=x_train,
            y_train=y_train,
            x_test=x_test,
            y_test=y_test,
            num_classes=num_classes,
            source=f"tfds:{name}" + (f"@{data_dir}" if data_dir else ""),
        )
    )


def _read_split(source: Any, image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Copies a tfds data source into preallocated arrays, in batched reads."""
    n = len(source)
    x = np.empty((n, *image_shape), dtype=np.uint8)
    y = np.empty((n,), dtype=np.int32)
    for start in range(0, n, _TFDS_CHUNK):
        keys = list(range(start, min(start + _TFDS_CHUNK, n)))
        for i, record in zip(keys, source.__getitems__(keys)):
            x[i] = record["image"]
            y[i] = record["label"]
    return x, y


# ----------------------------------------------------------------------- choose


def check_data_dir(data_dir: Path) -> bool:
    """Refuse a ``--data-dir`` that cannot hold a dataset (checked before any output exists, also by
    ``eslt train --dry-run``, without reading the data); True when it holds the four IDX files."""
    if not data_dir.exists():
        raise BadInput(f"--data-dir {data_dir} does not exist")
    if not data_dir.is_dir():
        raise BadInput(f"--data-dir {data_dir} is not a folder")
    if has_idx_files(data_dir):
        return True
    present = [b for b in IDX_FILES.values() if _find_idx(data_dir, b)]
    if present:
        # Half a set of IDX files is a mistake, not a tfds data dir.
        missing = [b for b in IDX_FILES.values() if b not in present]
        raise BadInput(f"--data-dir {data_dir} has some IDX files but lacks {', '.join(missing)}")
    return False


def load_images(tfds_name: str, data_dir: Path | None, default_idx: Path | None = None) -> ImageData:
    """Loads images from the first usable place.

    Order: IDX files in ``data_dir``; else tfds ``tfds_name`` in ``data_dir``;
    without ``data_dir``: IDX files in ``default_idx``; else tfds with its
    default data dir.
    """
    if data_dir is not None:
        data_dir = Path(data_dir)
        if check_data_dir(data_dir):
            return load_idx_folder(data_dir)
        return load_tfds(tfds_name, str(data_dir))
    if default_idx is not None and has_idx_files(default_idx):
        return load_idx_folder(default_idx)
    return load_tfds(tfds_name, None)


def clear_cache() -> None:
    """Forgets cached datasets (tests; or to free memory)."""
    _load_idx_cached.cache_clear()
    _load_tfds_cached.cache_clear()
