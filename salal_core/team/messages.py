"""What travels between the service and its clients, one frozen dataclass per message.

A client says `Hello` and gets `Welcome`; the service leases it images (`Leased`), takes them
back when the lease lapses (`Revoked`), and forwards the engine's events (`Forwarded`). Every
answer carries a client-chosen id, so a re-send after a dropped connection is acknowledged
again and never counted twice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from salal_core import config, events
from salal_core.run import agreement, review, summary
from salal_core.team.frames import Codec

GivenBy = Literal["human", "accepted"]  # a key typed, or the model's guess accepted in the grid


# ---------------------------------------------------------------- client to service
@dataclass(frozen=True)
class Hello:
    name: str  # the labeler's name in the journal


@dataclass(frozen=True)
class Given:
    item: int  # the run's id of the image, never its position
    label: int  # -1: skipped


@dataclass(frozen=True)
class Give:
    """Answers, one journal write: one key, or the grid's enter on many tiles."""

    client_id: str
    answers: tuple[Given, ...]
    oracle: GivenBy = "human"


@dataclass(frozen=True)
class TakeBack:
    """Undo this labeler's last answer (all of it, when it was several at once)."""

    client_id: str


@dataclass(frozen=True)
class WantImage:
    item: int


@dataclass(frozen=True)
class WantReview:
    """The run's labels, the most doubtful first (run/review.py); `only`: one labeler's."""

    client_id: str
    only: str = ""


@dataclass(frozen=True)
class Correct:
    """A label corrected in review: journaled as a new answer of this labeler's."""

    client_id: str
    item: int
    label: int


@dataclass(frozen=True)
class Leave:
    """The labeler quits: their leases return to the queue now."""


# ---------------------------------------------------------------- service to client
@dataclass(frozen=True)
class Welcome:
    labeler: str
    run_dir: str
    class_names: tuple[str, ...]
    overlap: int
    lease_seconds: float
    config: config.RunConfig  # what the labeling screen shows: the target, the acquisition


@dataclass(frozen=True)
class Leased:
    """Images for this labeler alone (unless overlap asks for more than one answer)."""

    queries: tuple[events.Query, ...]


@dataclass(frozen=True)
class Revoked:
    """Leases that lapsed (idle past --lease): these images went back to the queue."""

    items: tuple[int, ...]


@dataclass(frozen=True)
class Acknowledged:
    """The answers of `client_id` are in the journal."""

    client_id: str


@dataclass(frozen=True)
class TakenBack:
    client_id: str
    queries: tuple[events.Query, ...]  # back in front of this labeler's queue, in order
    labels: tuple[int, ...]  # what each had been given


@dataclass(frozen=True)
class Refused:
    """A request the service could not carry out, in one line (nothing was written)."""

    client_id: str
    reason: str


@dataclass(frozen=True)
class NotJournaled:
    """The journal could not take a request's writes (a full disk): nothing was written, the
    images stay this labeler's, and the same request may be sent again once there is room."""

    client_id: str
    reason: str


@dataclass(frozen=True)
class ImageBytes:
    item: int
    suffix: str  # ".png", ".jpg": how to read `data`
    data: str  # base64


@dataclass(frozen=True)
class ReviewReady:
    client_id: str
    class_names: tuple[str, ...]
    doubts: tuple[review.Doubt, ...]


@dataclass(frozen=True)
class Forwarded:
    event: events.Event


@dataclass(frozen=True)
class Problem:
    """A frame the service could not read: what was wrong with it."""

    reason: str


ToService = Hello | Give | TakeBack | WantImage | WantReview | Correct | Leave
ToClient = (
    Welcome
    | Leased
    | Revoked
    | Acknowledged
    | TakenBack
    | Refused
    | NotJournaled
    | ImageBytes
    | ReviewReady
    | Forwarded
    | Problem
)


def _dataclasses_of(module: object) -> list[type[object]]:
    found = [getattr(module, name) for name in dir(module)]
    return [c for c in found if isinstance(c, type) and dataclasses.is_dataclass(c)]


CODEC = Codec(
    [
        Hello, Given, Give, TakeBack, WantImage, WantReview, Correct, Leave,
        Welcome, Leased, Revoked, Acknowledged, TakenBack, Refused, NotJournaled, ImageBytes,
        ReviewReady,
        Forwarded, Problem, review.Doubt,
        *_dataclasses_of(events),  # the engine's events, with their summary and config
        *_dataclasses_of(summary),
        *_dataclasses_of(agreement),
        *_dataclasses_of(config),
    ]
)  # fmt: skip
