"""What salal exports, salal imports: every source (a folder, an archive, CIFAR pickles) by
every format (csv, imagefolder) by either way in (--labels on a new run, import-labels on an
existing one). Each label lands on the image it was given for, known by its content."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import ROUNDS, tar_folder, tiny_cli, write_cifar_batches, write_image_folder
from salal_core.cli.main import main
from salal_core.run.store import RunStore


def labels_by_digest(run: Path, oracle: str | None = None) -> dict[str, int]:
    store = RunStore(run, create=False, lock=False)
    try:
        digest = {s.item: s.digest for s in store.items()}
        return {digest[i]: r.label for i, r in store.labels().items() if oracle in (None, r.oracle)}
    finally:
        store.close()


def make_source(kind: str, root: Path) -> Path:
    if kind == "folder":
        return write_image_folder(root / "photos", per_class_train=15, per_class_test=4)
    if kind == "archive":
        folder = write_image_folder(
            root / "photos", per_class_train=15, per_class_test=4, fmt="jpg"
        )
        return tar_folder(folder, root / "photos.tar.gz")
    write_cifar_batches(root / "cifar-10-batches-py", per_batch=12)
    return root / "cifar-10-batches-py"


@pytest.mark.parametrize("kind", ["folder", "archive", "cifar"])
def test_every_export_imports_back_both_ways(kind: str, tmp_path: Path) -> None:
    source = make_source(kind, tmp_path)
    cache = tmp_path / "c"
    run = tmp_path / "run"
    assert main(tiny_cli("run", source, run, cache, *ROUNDS, "--budget", "0.4")) == 0
    given = labels_by_digest(run)
    assert len(given) >= 20
    # An existing run on the same source, with labels of its own (the initial fraction).
    target = tmp_path / "target"
    assert main(tiny_cli("run", source, target, cache, *ROUNDS, "--budget", "0.3")) == 0
    for fmt in ("csv", "imagefolder"):
        exported = tmp_path / f"export-{fmt}"
        out = str(exported) + (".csv" if fmt == "csv" else "")
        assert main(["export", str(run), "--format", fmt, "-o", out]) == 0
        fresh = tmp_path / f"fresh-{fmt}"
        args = [*ROUNDS, "--budget", "0.4", "--initial-fraction", "0", "--labels", out]
        assert main(tiny_cli("run", source, fresh, cache, *args)) == 0
        assert labels_by_digest(fresh, "imported") == given, (kind, fmt, "--labels")
        assert main(["import-labels", str(target), out]) == 0
        assert labels_by_digest(target, "imported") == given, (kind, fmt, "import-labels")


def test_an_archive_exports_its_members_own_bytes(tmp_path: Path) -> None:
    """Not a 32x32 re-encoding: the JPEG as it sits in the archive."""
    source = make_source("archive", tmp_path)
    run = tmp_path / "run"
    assert main(tiny_cli("run", source, run, tmp_path / "c", *ROUNDS, "--budget", "0.3")) == 0
    out = tmp_path / "out"
    assert main(["export", str(run), "--format", "imagefolder", "-o", str(out)]) == 0
    files = sorted(out.glob("*/*"))
    originals = {p.read_bytes() for p in (tmp_path / "photos").rglob("*.jpg")}
    assert files and all(f.suffix == ".jpg" for f in files)
    assert all(f.read_bytes() in originals for f in files)
