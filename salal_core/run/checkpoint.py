"""Round checkpoints: one typed payload holding exactly what resume reads, with a version.

A checkpoint is a dict of tensors and plain values (it loads with `weights_only=True`), written
atomically; a torn one is skipped for the one before it. What it holds:

    model, optimizer         the state dicts
    shape                    width, classes, committee members: what the model must be built as
    generator                the loop's generator as the next scoring will use it
    round, curve             where the run is, and the learning curve so far
    stop_items, stop_predictions   the stop set and its last predictions (stability.py)
    items, items_digest      the run's items it was trained beside (the first `items` of them)
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from salal_core.backbones.catalog import ROTNET
from salal_core.config import HeadInput
from salal_core.data.identity import items_digest
from salal_core.errors import SalalError
from salal_core.files import atomic_write_bytes, read_payload_file
from salal_core.learn.model import Net
from salal_core.run.stability import StopSet
from salal_core.run.summary import CurvePoint

# 2: the stop set; a version-1 checkpoint resumes and draws one anew.
# 3: the head's input in the shape; earlier checkpoints' heads all read the last stage.
# 4: the backbone in the shape; earlier checkpoints are all rotnet's.
CHECKPOINT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
ROUND_PREFIX = "round-"


@dataclass(frozen=True)
class ModelShape:
    width: int
    classes: int
    members: int  # linear heads: 1, or a committee for query by committee
    head_input: HeadInput
    backbone: str = ROTNET  # a pretrained backbone's runs checkpoint a head alone


@dataclass(frozen=True)
class RoundCheckpoint:
    round: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    shape: ModelShape
    generator: torch.Tensor
    curve: tuple[CurvePoint, ...]
    items: int
    items_digest: str
    stop_set: StopSet | None  # None: saved before stop sets were kept

    @property
    def name(self) -> str:
        return f"{ROUND_PREFIX}{self.round:04d}"

    def to_payload(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "kind": "round",
            "round": self.round,
            "model": self.model,
            "optimizer": self.optimizer,
            "shape": asdict(self.shape),
            "generator": self.generator,
            "curve": [asdict(p) for p in self.curve],
            "items": self.items,
            "items_digest": self.items_digest,
            "stop_items": list(self.stop_set.items) if self.stop_set else None,
            "stop_predictions": list(self.stop_set.predictions) if self.stop_set else None,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], source: str) -> RoundCheckpoint:
        if payload.get("kind") != "round" or payload.get("version") not in READABLE_VERSIONS:
            raise SalalError(
                f"{source} is a checkpoint of another salal version (found "
                f"{payload.get('version', 'none')}, this one reads {CHECKPOINT_VERSION}); "
                "export the labels with salal-core export and start a new run"
            )
        return cls(
            round=int(payload["round"]),
            model=payload["model"],
            optimizer=payload["optimizer"],
            shape=ModelShape(**{"head_input": "last", **payload["shape"]}),
            generator=payload["generator"],
            curve=tuple(CurvePoint(**p) for p in payload["curve"]),
            items=int(payload["items"]),
            items_digest=str(payload["items_digest"]),
            stop_set=StopSet(
                tuple(int(i) for i in payload["stop_items"]),
                tuple(int(p) for p in payload["stop_predictions"]),
            )
            if payload.get("stop_items") is not None
            else None,
        )

    @property
    def labeled(self) -> int:
        """How many labels the run held when this round trained: its curve point's count."""
        return self.curve[-1].labeled if self.curve else 0

    def lost_labels(self, journaled: int) -> str | None:
        """What to say when the journal holds fewer labels than this round trained on: the
        database lost its newest records (its write-ahead log, salal.db-wal, deleted after a
        kill, or left behind when the run was copied). Those images go back to the pool."""
        if journaled >= self.labeled:
            return None
        return (
            f"{self.labeled - journaled} of the {self.labeled} labels that {self.name} trained "
            f"on are missing from the run's database (only {journaled} are there; was "
            "salal.db-wal deleted, or left behind when the run was copied?): those images go "
            "back to the pool and are asked again"
        )

    def check_items(self, digests: list[str], source: str) -> None:
        """The run's items (in item-id order) must begin with the ones this was trained beside;
        items are only ever appended, so anything else is another run's checkpoint."""
        if len(digests) < self.items or items_digest(digests[: self.items]) != self.items_digest:
            raise SalalError(
                f"{source} belongs to another run's images; start a new run, or restore the "
                "run directory from a backup"
            )


HeadChange = Literal["same", "rebuild head"]


def compare_shape(saved: ModelShape, wanted: ModelShape, source: str) -> HeadChange:
    """Whether the checkpoint's model loads as it is, or its backbone under a new head (the
    committee size changed with --acquisition, or the head reads other stages); another width
    or class count cannot load."""
    if saved.backbone != wanted.backbone:
        raise SalalError(
            f"{source} holds a model on {saved.backbone} features, but this run uses "
            f"{wanted.backbone}; start a new run"
        )
    if (saved.width, saved.classes) != (wanted.width, wanted.classes):
        raise SalalError(
            f"{source} holds a model of width {saved.width} with {saved.classes} classes, but "
            f"this run needs width {wanted.width} with {wanted.classes}; start a new run"
        )
    same_head = (saved.members, saved.head_input) == (wanted.members, wanted.head_input)
    return "same" if same_head else "rebuild head"


@dataclass(frozen=True)
class Resumed:
    """Where a run picks up from its newest round checkpoint."""

    start_round: int
    curve: tuple[CurvePoint, ...]
    optimizer: dict[str, Any] | None  # None: a fresh optimizer (no checkpoint, or a new head)
    notices: tuple[str, ...] = ()  # what the run's log should say about how it picked up
    stop_set: StopSet | None = None


def restore_model(
    model: Net, generator: torch.Generator, checkpoint: RoundCheckpoint, wanted: ModelShape
) -> Resumed:
    """Load the checkpoint into `model` and `generator`. With another head (--acquisition
    switched between one head and a committee, or a head that reads other stages), only the
    backbone loads: the new head is trained from scratch on every label, so that round is run
    again and its curve point dropped. A generator saved on another kind of device (--device
    changed) cannot load: the random stream restarts, and the log says so."""
    notices = []
    try:
        generator.set_state(checkpoint.generator)
    except RuntimeError:
        notices.append("this run moved to another kind of device: its random stream restarts")
    if compare_shape(checkpoint.shape, wanted, checkpoint.name) == "same":
        model.load_state_dict(checkpoint.model)
        return Resumed(
            checkpoint.round + 1,
            checkpoint.curve,
            checkpoint.optimizer,
            tuple(notices),
            checkpoint.stop_set,
        )
    model.load_backbone(checkpoint.model)
    saved = checkpoint.shape
    notices.append(
        f"this run needs {wanted.members} head(s) reading {wanted.head_input} and "
        f"{checkpoint.name} has {saved.members} reading {saved.head_input}: the head is "
        "rebuilt on the checkpoint's backbone and trained on every label"
    )
    return Resumed(checkpoint.round, checkpoint.curve[:-1], None, tuple(notices), None)


def save(folder: Path, name: str, payload: dict[str, Any]) -> Path:
    """Write one checkpoint atomically. torch.save goes to memory first: it reports a failed
    write (a full disk) as a RuntimeError from its zip writer, while a plain write raises
    OSError, which the caller turns into its one line."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = folder / f"{name}.pt"
    atomic_write_bytes(path, buffer.getbuffer())
    return path


def load_newest(folder: Path, prefix: str) -> tuple[dict[str, Any], Path] | None:
    """The newest readable checkpoint whose name starts with `prefix`; a torn or unreadable one
    is skipped in favour of the one before it."""
    for path in sorted(folder.glob(f"{prefix}*.pt"), reverse=True):
        try:
            return read_payload_file(path), path
        except Exception:  # torn write, bad zip, unpickling refusal: all mean "try older"
            continue
    return None


def newest_round(folder: Path) -> RoundCheckpoint | None:
    """The newest readable round checkpoint in `folder`, typed and version-checked; None
    before the first round."""
    found = load_newest(folder, ROUND_PREFIX)
    return None if found is None else RoundCheckpoint.from_payload(found[0], found[1].name)
