"""Every data source parsed from small files the tests create, and each bad input refused."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import (
    CLASSES,
    add_entries_that_are_no_files,
    tar_folder,
    write_cifar_batches,
    write_image_folder,
)
from salal_core.config import DataConfig
from salal_core.data import load_dataset
from salal_core.data.load import balanced_subset, download_cifar10, read_source
from salal_core.data.skipped import SkippedFile, skip_counts
from salal_core.errors import SalalError
from salal_core.events import DataLoaded, Notice, Recorder


def test_cifar_pickle_folder_and_archive(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    first = write_cifar_batches(folder)
    archive = tar_folder(folder, tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    for source in (folder, archive):
        data = read_source(source, 32)
        assert data.train.images.shape == (30, 32, 32, 3)
        assert data.test.images.shape == (6, 32, 32, 3)
        assert data.class_names == [f"c{i}" for i in range(10)]
        np.testing.assert_array_equal(data.train.images[0], first)
        assert data.train.labels[:3].tolist() == [0, 1, 2]


def test_pickles_that_run_code_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "evil"
    write_cifar_batches(folder)

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Boom(), b"labels": []}))
    with pytest.raises(SalalError, match="not a readable CIFAR batch"):
        read_source(folder, 32)


def test_image_folder_and_its_archives(tmp_path: Path, image_folder: Path) -> None:
    tgz = tar_folder(image_folder, tmp_path / "pack.tar.gz")
    tar = tmp_path / "pack.tar"
    with tarfile.open(tar, "w") as t:
        t.add(image_folder, arcname="pack")
    for source in (image_folder, tgz, tar):
        data = read_source(source, 32)
        assert data.class_names == sorted(CLASSES)  # class folders sort, as in ImageFolder
        assert len(data.train) == 12 * 4 and len(data.test) == 4 * 4
        assert data.train.images.dtype == np.uint8
        assert np.bincount(data.train.labels).tolist() == [12, 12, 12, 12]
        red = next(i for i, n in enumerate(data.train.ids) if n.endswith("train/red/0000.png"))
        assert data.class_names[data.train.labels[red]] == "red"


def test_grayscale_palette_and_odd_sizes_become_rgb_of_the_asked_size(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "f", per_class_train=2, per_class_test=1)
    Image.new("L", (50, 17), 128).save(root / "train" / "red" / "gray.png")
    Image.new("P", (64, 64), 3).save(root / "train" / "red" / "palette.gif")
    Image.new("RGBA", (40, 40), (1, 2, 3, 4)).save(root / "train" / "red" / "alpha.webp")
    data = read_source(root, 32)
    assert data.train.images.shape == (11, 32, 32, 3)
    gray = data.train.ids.index("train/red/gray.png")
    assert (data.train.images[gray] == 128).all()
    assert read_source(root, 48).train.images.shape[1:] == (48, 48, 3)


def test_corrupt_images_are_skipped_and_counted(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "f", per_class_train=3, per_class_test=1)
    (root / "train" / "red" / "broken.png").write_bytes(b"\x89PNG not really")
    Image.new("RGB", (4, 4)).save(root / "train" / "red" / "tiny.png")
    rec = Recorder()
    data = load_dataset(DataConfig(str(root), str(tmp_path / "cache")), emit=rec)
    assert len(data.train) == 12
    assert data.skipped == [
        SkippedFile("train/red/broken.png", "unreadable"),
        SkippedFile("train/red/tiny.png", "too small"),
    ]
    assert [n.message for n in rec.of(Notice)] == [
        "skipped files in f: 1 unreadable, 1 too small "
        "(train/red/broken.png: unreadable, train/red/tiny.png: too small)"
    ]


def test_entries_that_are_no_files_are_skipped_and_named_not_a_traceback(
    tmp_path: Path,
) -> None:
    """A tester's folder: each of these used to stop the load with a traceback, because every
    file under --data was stat'ed and its name encoded, even ones salal ignores."""
    root = write_image_folder(tmp_path / "f", per_class_train=3, per_class_test=1)
    expected = add_entries_that_are_no_files(root)
    config = DataConfig(str(root), str(tmp_path / "cache"))
    rec = Recorder()
    for _ in range(2):  # decoded, then from the cache: the same files named
        data = load_dataset(config, emit=rec)
        assert len(data.train) == 12 and len(data.test) == 4
        assert data.skipped == expected
    assert [e.from_cache for e in rec.of(DataLoaded)] == [False, True]
    assert rec.of(DataLoaded)[0].skipped == 5
    assert skip_counts(data.skipped) == {
        "dangling link": 1,
        "symlink loop": 1,
        "name not UTF-8": 2,
        "not a regular file": 1,
    }
    message = rec.of(Notice)[0].message
    assert message.startswith("skipped files in f: 1 dangling link, 1 symlink loop, ")
    assert message.endswith(
        "(README: dangling link, loop: symlink loop, notes-\\xff.txt: name not UTF-8, "
        "pipe.png: not a regular file, train/red/\\xe9t\\xe9.png: name not UTF-8)"
    )


def test_decode_cache_is_keyed_by_content(tmp_path: Path, image_folder: Path) -> None:
    cfg = DataConfig(str(image_folder), str(tmp_path / "cache"))
    rec = Recorder()
    first = load_dataset(cfg, emit=rec)
    second = load_dataset(cfg, emit=rec)
    assert [e.from_cache for e in rec.of(DataLoaded)] == [False, True]
    np.testing.assert_array_equal(first.train.images, second.train.images)
    assert second.train.ids == first.train.ids and second.class_names == first.class_names
    Image.new("RGB", (32, 32), (9, 9, 9)).save(image_folder / "train" / "red" / "new.png")
    third = load_dataset(cfg, emit=rec)
    assert rec.of(DataLoaded)[-1].from_cache is False and len(third.train) == len(first.train) + 1


def test_balanced_subset_is_even_seeded_and_sorted() -> None:
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    idx = balanced_subset(labels, 40, seed=3)
    assert np.bincount(labels[idx]).tolist() == [10, 10, 10, 10]
    assert (np.diff(idx) > 0).all()
    assert np.array_equal(idx, balanced_subset(labels, 40, seed=3))


def test_shared_pack_slice(shared_slice: Path, tmp_path: Path) -> None:
    data = load_dataset(DataConfig(str(shared_slice), str(tmp_path / "c")))
    assert data.class_names[:2] == ["airplane", "automobile"] and len(data.class_names) == 10
    assert len(data.train) == 300 and len(data.test) == 100
    assert data.train.images.shape[1:] == (32, 32, 3)


# ----------------------------------------------------------------------------- download


@pytest.fixture
def http_root(tmp_path: Path):
    """A real HTTP server on loopback, serving `tmp_path/www`."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_verifies_the_checksum(tmp_path: Path, http_root) -> None:
    root, url = http_root
    write_cifar_batches(tmp_path / "cifar-10-batches-py")
    payload = tar_folder(tmp_path / "cifar-10-batches-py", root / "c.tar.gz", "cifar-10-batches-py")
    md5 = hashlib.md5(payload.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    cache.mkdir()
    got = download_cifar10(cache, url=f"{url}/c.tar.gz", md5=md5)
    assert got.read_bytes() == payload.read_bytes()
    assert len(read_source(got, 32).train) == 30
    assert download_cifar10(cache, url=f"{url}/gone.tar.gz", md5=md5) == got  # cached, verified
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(SalalError, match="checksum"):
        download_cifar10(other, url=f"{url}/c.tar.gz", md5="0" * 32)
    assert not (other / "cifar-10-python.tar.gz").exists()


def test_download_without_network_says_to_pass_data(tmp_path: Path) -> None:
    with pytest.raises(SalalError, match="pass --data PATH"):
        download_cifar10(tmp_path, url="http://127.0.0.1:9/cifar-10-python.tar.gz")


# ----------------------------------------------------------------------------- bad input


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(SalalError, match="does not exist"):
        load_dataset(DataConfig(str(tmp_path / "nope"), str(tmp_path / "c")))


def test_truncated_archive(tmp_path: Path, image_folder: Path) -> None:
    whole = tar_folder(image_folder, tmp_path / "pack.tar.gz").read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SalalError, match="truncated or not a tar archive"):
        read_source(cut, 32)


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "notes.tar.gz"
    junk.write_text("hello")
    with pytest.raises(SalalError, match="truncated or not a tar archive"):
        read_source(junk, 32)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "empty" / "train" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "a" / "readme.txt").write_text("no pictures")
    with pytest.raises(SalalError, match="no images found"):
        read_source(tmp_path / "empty", 32)


def test_train_and_test_with_different_classes(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "f", per_class_train=1, per_class_test=1)
    (root / "test" / "red").rename(root / "test" / "crimson")
    with pytest.raises(SalalError, match="same class folders"):
        read_source(root, 32)


def test_archive_member_escaping_its_folder_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, "PNG")
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../../escaped.png")
        info.size = len(buf.getvalue())
        tar.addfile(info, io.BytesIO(buf.getvalue()))
    with pytest.raises(SalalError, match="outside its folder"):
        read_source(evil, 32)
    assert not (tmp_path.parent / "escaped.png").exists()
