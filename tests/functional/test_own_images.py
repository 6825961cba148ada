"""Label your own images: a generated folder with no labels, read as people's folders are,
labeled end to end in salal-tui by key presses, then exported and predicted."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from helpers import (
    CLASSES,
    SIZE,
    TRAINING_WAIT,
    class_from_name,
    journal,
    photo_archive,
    summary_text,
    tiny_cli,
    tiny_config,
    wait_for,
    write_unlabeled_folder,
)
from salal_core.cli.main import main as core_main
from salal_core.data import load_dataset
from salal_core.data.load import read_source
from salal_core.data.skipped import SkippedFile, skip_counts
from salal_core.run.factory import open_session
from salal_core.run.plan import read_round
from salal_tui.app import SalalApp
from salal_tui.launch import label_alone
from salal_tui.originals import load_original
from salal_tui.screens import SummaryScreen


def test_an_unlabeled_folder_is_read_recursively_skipping_what_it_must(tmp_path: Path) -> None:
    pool = write_unlabeled_folder(tmp_path / "photos", per_class=5)
    images = read_source(pool, 32)
    assert len(images.train) == 20 and len(images.test) == 0
    assert images.class_names == [] and (images.train.labels == -1).all()
    assert skip_counts(images.skipped) == {"unreadable": 1, "duplicate": 1, "too small": 1}
    assert SkippedFile("tiny-red.png", "too small") in images.skipped
    assert {Path(i).suffix for i in images.train.ids} == {".png", ".jpg", ".webp", ".bmp", ".gif"}
    assert any("/deep/" in i for i in images.train.ids)  # nested folders are searched
    assert images.train.images.shape == (20, 32, 32, 3)
    big = next(i for i, s in enumerate(images.train.ids) if "0002-" in s)  # drawn at 64x64
    assert images.original_path(big) == pool / images.train.ids[big]
    assert load_original(images.original_path(big), 60, 60).shape == (60, 60, 3)


def test_image_size_sets_what_the_model_sees(tmp_path: Path) -> None:
    pool = write_unlabeled_folder(tmp_path / "photos", per_class=2)
    config = tiny_config(pool, tmp_path / "c", **{"data.image_size": 48})
    assert load_dataset(config.data).train.images.shape[1:] == (48, 48, 3)


def test_a_folder_without_classes_needs_them_named(tmp_path: Path, capsys) -> None:
    pool = write_unlabeled_folder(tmp_path / "photos", per_class=2)

    def run(out: str, *extra: str) -> str:
        assert core_main(tiny_cli("run", pool, tmp_path / out, tmp_path / "c", *extra)) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert "skipped files in photos: 1 too small, 1 unreadable, 1 duplicate" in err
        return err.strip().splitlines()[-1]

    assert (
        "photos has no class folders (train/<class>/, or <class>/ with every image one folder "
        "deep); name the classes with --classes"
    ) in run("run")
    last = run("run2", "--classes", ",".join(CLASSES))
    assert "has no ground-truth labels to answer from" in last
    assert "--auto-oracle" not in last  # a flag of salal-tui's, which `run` does not take
    assert f"salal-tui --data {pool} --classes {','.join(CLASSES)}" in last


async def test_label_a_folder_end_to_end_with_key_presses(tmp_path: Path) -> None:
    pool = write_unlabeled_folder(tmp_path / "photos", per_class=50)  # 200 images
    out = tmp_path / "run"
    config = tiny_config(
        pool,
        tmp_path / "c",
        **{"active.query_size": 10, "active.lookahead": 2, "active.budget": 0.25},
    )
    session = open_session(config, out, oracle="human", class_names=CLASSES)
    app = label_alone(session, "tester")
    typed = {}
    async with app.run_test(size=SIZE) as pilot:
        screen = app.label_screen
        while not isinstance(app.screen, SummaryScreen):
            await wait_for(
                pilot, lambda: screen.shown is not None or isinstance(app.screen, SummaryScreen)
            )
            if screen.shown is None:
                break
            images = session.images.loaded
            assert images is not None
            shown = screen.shown
            label = class_from_name(images.train.ids[shown.index])
            await pilot.press(screen.query_one("ClassList").keys[label])
            typed[shown.item] = label
        text = await summary_text(pilot, app)
        await pilot.press("q")
    summary = app.return_value
    assert summary is not None
    assert journal(out) == typed and len(typed) == 50  # a quarter of the pool, all by keys
    assert summary.accuracy_source == "held-out" and "held-out" in text
    assert summary.final_accuracy is not None and 0.0 <= summary.final_accuracy <= 1.0
    assert summary.human_agreement is None  # there is no ground truth

    export = tmp_path / "labels.csv"
    assert core_main(["export", str(out), "--output", str(export)]) == 0
    rows = list(csv.DictReader(export.open()))
    assert len(rows) == 50
    for row in rows:  # path to the file, and the class typed for it
        assert Path(row["source"]).is_file() and Path(row["source"]).is_relative_to(pool)
        assert row["class"] == CLASSES[typed[int(row["index"])]]

    predictions = tmp_path / "predictions.csv"
    assert core_main(["predict", str(out), "--out", str(predictions), "--device", "cpu"]) == 0
    rows = list(csv.DictReader(predictions.open()))
    assert len(rows) == 150 and not {int(r["index"]) for r in rows} & set(typed)
    assert all(Path(r["source"]).is_file() and r["class"] in CLASSES for r in rows)
    confidence = np.array([float(r["confidence"]) for r in rows])
    assert ((confidence >= 1 / len(CLASSES) - 1e-6) & (confidence <= 1)).all()


async def test_a_person_labels_while_the_backbone_pretrains(tmp_path: Path) -> None:
    """From zero labels the first images come at once, a seeded sample, and more keep coming
    as they are answered until the backbone exists; every answer given before the first
    round is one of round 0's labels."""
    pool = write_unlabeled_folder(tmp_path / "photos", per_class=25)  # 100 images
    out = tmp_path / "run"
    config = tiny_config(
        pool,
        tmp_path / "c",
        **{
            "pretrain.epochs": 20,
            "pretrain.optim.min_steps": 150,
            "active.query_size": 6,
            "active.budget": 0.6,
        },
    )
    session = open_session(config, out, oracle="human", class_names=CLASSES)
    app = label_alone(session, "tester")
    pretrained = out / "checkpoints" / "pretrain.pt"
    before_backbone = answered = 0
    async with app.run_test(size=SIZE) as pilot:
        screen = app.label_screen
        done = lambda: isinstance(app.screen, SummaryScreen)  # noqa: E731
        while True:  # round 0: the seeded images, until the first trained round asks
            await wait_for(pilot, lambda: screen.shown is not None or done(), TRAINING_WAIT)
            if done() or screen.shown is None or screen.shown.round >= 1:
                break
            if not pretrained.exists():
                info = str(screen.query_one("#query").render())
                assert "asked while the backbone pretrains" in info
                before_backbone += 1
            await pilot.press("1")
            answered += 1
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: app.return_code is not None)
    assert before_backbone > 6, "labeling stopped at the first seeded batch"
    assert answered <= 60  # seeded images never go past the budget (60% of 100)
    assert pretrained.exists() and len(journal(out)) >= answered
    rounds = [r.round for r in labels_of(out)]
    assert rounds.count(0) == answered  # every answer before the first round is round 0's


async def wait_summary_or_next(pilot, app: SalalApp) -> str:
    """Wait until the engine has trained on the first answers: the next batch is asked."""
    screen = app.label_screen
    await wait_for(
        pilot, lambda: screen.shown is not None and screen.shown.round >= 1, TRAINING_WAIT
    )
    return str(screen.query_one("#query").render())


def labels_of(run: Path) -> list:
    from salal_core.run.store import RunStore

    store = RunStore(run, create=False, lock=False)
    try:
        return list(store.labels().values())
    finally:
        store.close()


async def test_a_person_on_a_300_image_folder_gets_a_first_round_and_the_next_batch(
    shared_slice: Path, tmp_path: Path
) -> None:
    """salal-tui on 300 CIFAR images with the cpu recipe, from zero labels: the person labels
    the first 24 seeded images (more keep coming while pretraining runs), round 0 trains on
    that first batch without a stop, and the next batch the model chose is asked."""
    out = tmp_path / "run"
    config = tiny_config(
        shared_slice,
        tmp_path / "c",
        **{
            "model.width": 8,
            "pretrain.epochs": 2,
            "pretrain.optim.min_steps": 20,
            "active.initial_fraction": 0.0,
            "active.query_size": 24,
            "active.budget": 0.5,
        },
    )
    config = type(config)(**{**config.__dict__, "preset": "cpu"})
    session = open_session(config, out, oracle="human")
    app = label_alone(session, "tester")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.label_screen
        labeled = 0
        round_0 = out / "checkpoints" / "round-0000.pt"
        while True:
            await wait_for(pilot, lambda: screen.shown is not None, TRAINING_WAIT)
            assert screen.shown is not None
            if screen.shown.round >= 1:
                break
            if labeled >= 24:
                # Pilot types far faster than pretraining runs, and seeded images keep coming
                # until it is done: past the first batch, a person's pace, so that the budget
                # is not spent on seeded images before round 0 has trained.
                await wait_for(pilot, round_0.exists, TRAINING_WAIT)
            await pilot.press("1")
            labeled += 1
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: app.return_code is not None)
    first = read_round(out / "checkpoints" / "round-0000.pt")
    assert first.curve[-1].labeled == 24  # round 0 trained on the first seeded batch
    assert len(labels_of(out)) >= 24


def test_an_archive_member_is_drawn_from_its_own_bytes(tmp_path: Path) -> None:
    """Not from the model's 32x32 copy: the member is read by seeking into the archive (a
    gzip'd one decompressed once into the cache folder), at the size the view asks for."""
    from PIL import Image

    from salal_core.data.originals import ArchiveMembers, plain_tar
    from salal_tui.originals import Originals

    folder, archive = photo_archive(tmp_path)
    cache = tmp_path / "cache"
    plain = plain_tar(archive, cache)
    assert plain.parent == cache / "originals" and plain_tar(archive, cache) == plain  # once
    assert plain_tar(plain, cache) == plain  # a plain tar is read in place
    assert ArchiveMembers(plain).read("photos/1.png") == (folder / "1.png").read_bytes()
    assert ArchiveMembers(plain).read("photos/none.png") is None

    images = read_source(archive, 32)
    originals = Originals(images, cache)
    assert originals.indexed.wait(30) and originals.members is not None
    index = images.train.ids.index("photos/1.png")
    drawn = originals.pixels(index)(400, 400)
    assert drawn.shape == (120, 160, 3)  # the member's own pixels, not 32x32
    assert (drawn == np.asarray(Image.open(folder / "1.png"))).all()
