"""Tests for eslt_cli.tasks.data: IDX parsing, folder loading, tfds (mocked), resolution."""

from __future__ import annotations

import gzip
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import idx_bytes, write_idx

from eslt_cli.errors import BadInput, DataMissing
from eslt_cli.tasks import data
from eslt_cli.tasks.data import (
    DEBIAN_FASHION_MNIST,
    IDX_FILES,
    ImageData,
    has_idx_files,
    load_idx_folder,
    load_images,
    load_tfds,
    read_idx,
)


def make_idx_folder(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = False) -> dict[str, np.ndarray]:
    """Writes the four standard IDX files with random contents; returns what was written."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 7, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 7, n_test, dtype=np.uint8),
    }
    arrays["y_test"][0] = 7  # the largest label only in test: num_classes must look at both
    folder.mkdir(parents=True, exist_ok=True)
    for key, base in IDX_FILES.items():
        write_idx(folder / (base + (".gz" if gz else "")), arrays[key])
    return arrays


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    data.clear_cache()
    yield
    data.clear_cache()


# ----------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "arr",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-128, -1, 0, 127], dtype=np.int8),
        np.array([[-30000, 2], [3, 30000]], dtype=np.int16),
        np.array([-(2**31), 0, 2**31 - 1], dtype=np.int32),
        np.array([[1.5, -2.25]], dtype=np.float32),
        np.array([np.pi, -np.e], dtype=np.float64),
    ],
    ids=["u8", "i8", "i16", "i32", "f32", "f64"],
)
def test_read_idx_round_trip(tmp_path: Path, arr: np.ndarray, suffix: str) -> None:
    got = read_idx(write_idx(tmp_path / f"a-idx{suffix}", arr))
    assert got.shape == arr.shape
    assert got.dtype == arr.dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


def test_read_idx_bad_magic(tmp_path: Path) -> None:
    raw = bytearray(idx_bytes(np.zeros((2, 2), np.uint8)))
    raw[0] = 1
    path = tmp_path / "bad-idx"
    path.write_bytes(bytes(raw))
    with pytest.raises(BadInput, match="bad-idx.*not an IDX file"):
        read_idx(path)
    (tmp_path / "code-idx").write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(BadInput, match="not an IDX file"):
        read_idx(tmp_path / "code-idx")


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_truncated(tmp_path: Path, suffix: str) -> None:
    raw = idx_bytes(np.zeros((3, 4, 4), np.uint8))
    path = tmp_path / f"short-idx{suffix}"
    write_idx(path, np.zeros((3, 4, 4), np.uint8))
    # Cut the data, then the header itself.
    for cut in (raw[:-5], raw[:9]):
        if suffix:
            with gzip.open(path, "wb") as f:
                f.write(cut)
        else:
            path.write_bytes(cut)
        with pytest.raises(BadInput, match="short-idx.*truncated"):
            read_idx(path)


def test_read_idx_cut_gzip_stream_and_missing_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x-idx.gz", np.zeros((50, 50), np.uint8))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(BadInput, match="x-idx.gz"):
        read_idx(path)
    with pytest.raises(BadInput, match="nope-idx"):
        read_idx(tmp_path / "nope-idx")


# ---------------------------------------------------------------- load_idx_folder


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_folder(tmp_path: Path, gz: bool) -> None:
    written = make_idx_folder(tmp_path, gz=gz)
    assert has_idx_files(tmp_path)
    d = load_idx_folder(tmp_path)
    assert d.x_train.shape == (20, 28, 28, 1) and d.x_test.shape == (10, 28, 28, 1)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int32 and d.y_test.dtype == np.int32
    assert d.image_shape == (28, 28, 1)
    assert d.num_classes == 8
    assert d.source == f"idx:{tmp_path.resolve()}"
    np.testing.assert_array_equal(d.x_train[..., 0], written["x_train"])
    np.testing.assert_array_equal(d.y_test, written["y_test"])
    assert not d.x_train.flags.writeable and not d.y_train.flags.writeable
    assert load_idx_folder(tmp_path) is d  # cached


def test_load_idx_folder_mixed_gz_and_plain(tmp_path: Path) -> None:
    make_idx_folder(tmp_path)
    plain = tmp_path / IDX_FILES["x_test"]
    gz = Path(str(plain) + ".gz")
    with gzip.open(gz, "wb") as f:
        f.write(plain.read_bytes())
    plain.unlink()
    assert load_idx_folder(tmp_path).x_test.shape == (10, 28, 28, 1)


def test_load_idx_folder_count_mismatch(tmp_path: Path) -> None:
    make_idx_folder(tmp_path)
    write_idx(tmp_path / IDX_FILES["y_train"], np.zeros(19, np.uint8))
    with pytest.raises(BadInput, match="20 images but .* 19 labels"):
        load_idx_folder(tmp_path)


def test_load_idx_folder_missing_file(tmp_path: Path) -> None:
    make_idx_folder(tmp_path)
    (tmp_path / IDX_FILES["y_test"]).unlink()
    assert not has_idx_files(tmp_path)
    with pytest.raises(BadInput, match="t10k-labels-idx1-ubyte"):
        load_idx_folder(tmp_path)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian fashion-mnist package not installed")
def test_debian_fashion_mnist() -> None:
    assert has_idx_files(DEBIAN_FASHION_MNIST)
    start = time.perf_counter()
    d = load_idx_folder(DEBIAN_FASHION_MNIST)
    assert time.perf_counter() - start < 5
    assert d.x_train.shape == (60000, 28, 28, 1) and d.x_test.shape == (10000, 28, 28, 1)
    assert d.y_train.shape == (60000,) and d.y_test.shape == (10000,)
    assert d.num_classes == 10 and d.image_shape == (28, 28, 1)
    # Fashion-MNIST is balanced: 6000 / 1000 per class.
    assert np.bincount(d.y_train).tolist() == [6000] * 10
    assert np.bincount(d.y_test).tolist() == [1000] * 10


# ---------------------------------------------------------------------- load_tfds


@pytest.fixture
def mock_tfds(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """``tfds.testing.mock_data`` with random data, no files and no network.

    tfds 4.9.10's mock stores ``__getitems__`` as a plain attribute on a
    MagicMock, so it is called without ``self`` and fails; the shim takes the
    keys from the last positional argument either way.
    """
    import tensorflow_datasets as tfds
    from tensorflow_datasets.testing import mocking

    def getitems(*args: object, generator: mocking.RandomFakeGenerator, serialized: bool = False) -> list:
        del serialized
        return [generator[k] for k in args[-1]]  # type: ignore[index]

    monkeypatch.setattr(mocking, "_getitems", getitems)
    n = 5
    with tfds.testing.mock_data(num_examples=n, policy=tfds.testing.MockPolicy.USE_CODE):
        yield n


@pytest.mark.parametrize(
    ("name", "shape"),
    [("mnist", (28, 28, 1)), ("fashion_mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))],
)
def test_load_tfds_mocked(mock_tfds: int, tmp_path: Path, name: str, shape: tuple[int, int, int]) -> None:
    d = load_tfds(name, str(tmp_path))
    n = mock_tfds
    assert d.x_train.shape == (n, *shape) and d.x_test.shape == (n, *shape)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int32
    assert d.image_shape == shape and d.num_classes == 10
    assert ((d.y_train >= 0) & (d.y_train < 10)).all()
    assert d.x_train.std() > 0  # real random pixels, not the empty preallocation
    assert d.source.startswith(f"tfds:{name}")
    assert not d.x_test.flags.writeable
    assert load_tfds(name, str(tmp_path)) is d  # cached


def test_load_tfds_mocked_default_data_dir(mock_tfds: int) -> None:
    d = load_tfds("mnist", None)
    assert d.x_train.shape == (mock_tfds, 28, 28, 1) and d.source == "tfds:mnist"


def test_load_tfds_chunks(mock_tfds: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "_TFDS_CHUNK", 2)  # 5 records -> reads of 2, 2, 1
    d = load_tfds("mnist", None)
    data.clear_cache()
    monkeypatch.setattr(data, "_TFDS_CHUNK", 1024)
    np.testing.assert_array_equal(load_tfds("mnist", None).x_train, d.x_train)


def test_load_tfds_not_prepared(tmp_path: Path) -> None:
    with pytest.raises(DataMissing, match=f"dataset 'mnist' is not in {tmp_path}: download it") as e:
        load_tfds("mnist", str(tmp_path))
    assert "\n" not in str(e.value) and "--data-dir" in str(e.value)


def test_load_tfds_not_prepared_default_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # tfds reads TFDS_DATA_DIR once at import, into constants.DATA_DIR.
    from tensorflow_datasets.core import constants

    monkeypatch.setattr(constants, "DATA_DIR", str(tmp_path))
    with pytest.raises(DataMissing, match=f"not in {tmp_path}"):
        load_tfds("cifar10", None)


@pytest.mark.parametrize("name", ["no_such_dataset", "mnits", "huggingface:mnist", "mnist/no_config", "Mnist"])
def test_load_tfds_bad_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadInput) as e:
        load_tfds(name, str(tmp_path))
    assert not isinstance(e.value, DataMissing)
    assert name in str(e.value) and "\n" not in str(e.value)


def test_load_tfds_suggests_close_name(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="is not a tfds dataset .*mnist"):
        load_tfds("mnits", str(tmp_path))


def test_load_tfds_not_image_classification(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not image classification"):
        load_tfds("imdb_reviews", str(tmp_path))


# -------------------------------------------------------------------- load_images


def test_load_images_idx_data_dir_wins(tmp_path: Path) -> None:
    make_idx_folder(tmp_path / "mine", n_train=4, n_test=2)
    make_idx_folder(tmp_path / "default", n_train=6, n_test=3)
    d = load_images("mnist", tmp_path / "mine", default_idx=tmp_path / "default")
    assert d.x_train.shape[0] == 4 and d.source.startswith("idx:")


def test_load_images_default_idx(tmp_path: Path) -> None:
    make_idx_folder(tmp_path, n_train=6, n_test=3, gz=True)
    d = load_images("mnist", None, default_idx=tmp_path)
    assert d.x_train.shape[0] == 6


def test_load_images_data_dir_without_idx_uses_tfds(tmp_path: Path) -> None:
    make_idx_folder(tmp_path / "default")
    (tmp_path / "tfds").mkdir()
    with pytest.raises(DataMissing, match="tfds"):
        load_images("mnist", tmp_path / "tfds", default_idx=tmp_path / "default")


def test_load_images_tfds_when_no_idx(mock_tfds: int, tmp_path: Path) -> None:
    d = load_images("cifar10", None, default_idx=tmp_path / "absent")
    assert d.image_shape == (32, 32, 3) and d.source == "tfds:cifar10"


def test_load_images_bad_data_dir(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="--data-dir .*nowhere does not exist"):
        load_images("mnist", tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInput, match="not a folder"):
        load_images("mnist", tmp_path / "file")


def test_load_images_partial_idx_folder(tmp_path: Path) -> None:
    make_idx_folder(tmp_path)
    (tmp_path / IDX_FILES["x_test"]).unlink()
    with pytest.raises(BadInput, match="lacks t10k-images-idx3-ubyte"):
        load_images("mnist", tmp_path)


def test_image_data_checks_labels() -> None:
    x = np.zeros((2, 4, 4, 1), np.uint8)
    y = np.array([0, 3], np.int32)
    with pytest.raises(BadInput, match="labels outside"):
        ImageData(x, y, x, y, num_classes=3, source="test")
