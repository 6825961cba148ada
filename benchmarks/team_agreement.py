"""Two scripted labelers on one served run with --overlap 2, disagreeing on a known set of
images; the run's agreement figures against a hand computation from their own tallies.

`salal-core serve` holds a new run over a folder of drawn images (class folders, so the
scripts know each image's class); two labelers join it over the socket as `salal-tui --join`
does. `ana` answers every image with its class; `ben` does too, except on the images whose
digest puts them in the disagreeing share, which he gives the next class. Once the run ends,
`salal-core agreement` reads the journal; its observed agreement must equal 1 - the share
they disagreed on, and its Cohen's and Fleiss' kappa the same formulas applied by hand to the
confusion matrix of what the scripts sent. It also times each answer's round trip: sent,
journaled (an SQLite commit that waits for the disk), acknowledged.

    python benchmarks/team_agreement.py --images 240 --disagree 0.2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from salal_core.cli.commands.agreement import run_agreement
from salal_core.events import Event, RunFinished
from salal_core.run.store import RunStore
from salal_core.team.client import Refusal, ServiceClient
from salal_core.team.endpoint import socket_path

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (40, 60, 220),
    "gold": (230, 220, 40),
}


def drawn_folder(root: Path, per_class: int, seed: int = 0) -> Path:
    """train/<class>/*.png and a small test split: each class a colour under noise."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class), ("test", max(2, per_class // 5))):
        for name, colour in COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = np.array(colour) + rng.normal(0, 30, (32, 32, 3))
                Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


def disagreed(item: int, share: float) -> bool:
    """The known set: an item whose digest falls in the first `share` of the range."""
    digest = hashlib.sha256(f"salal-team-{item}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


class Scripted(threading.Thread):
    def __init__(self, run: Path, name: str, answer: dict[int, int]) -> None:
        super().__init__(daemon=True)
        self.run_dir, self.labeler = run, name
        self.answer = answer  # item -> the class this labeler gives it
        self.sent: dict[int, int] = {}  # what the service acknowledged
        self.round_trips: list[float] = []  # seconds from sending an answer to its ack
        self.finished = threading.Event()

    def _event(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self.finished.set()

    def run(self) -> None:
        client = ServiceClient(self.run_dir, self.labeler, self._event)
        client.connect()
        while not self.finished.is_set():
            queued = client.wait_for_queries(0.2)
            if not queued:
                continue
            item = queued[0].item
            sent = time.perf_counter()
            try:
                client.give([(item, self.answer[item])])
                self.round_trips.append(time.perf_counter() - sent)
            except Refusal:
                continue  # the run ended, or it was answered twice already
            self.sent[item] = self.answer[item]
        client.close()


@dataclass(frozen=True)
class ByHand:
    images: int
    disagreed: int
    observed: float
    cohen: float
    fleiss: float


def by_hand(ana: dict[int, int], ben: dict[int, int], classes: int) -> ByHand:
    """Observed agreement, Cohen's and Fleiss' kappa from the 2-rater confusion matrix."""
    both = sorted(set(ana) & set(ben))
    matrix = np.zeros((classes, classes), dtype=np.int64)
    for item in both:
        matrix[ana[item], ben[item]] += 1
    n = int(matrix.sum())
    observed = np.trace(matrix) / n
    rows, cols = matrix.sum(1) / n, matrix.sum(0) / n
    cohen_chance = float(np.dot(rows, cols))
    shares = (matrix.sum(1) + matrix.sum(0)) / (2 * n)
    fleiss_chance = float(np.sum(shares**2))
    return ByHand(
        n,
        n - int(np.trace(matrix)),
        float(observed),
        (observed - cohen_chance) / (1 - cohen_chance),
        (observed - fleiss_chance) / (1 - fleiss_chance),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=240, help="training images in all")
    parser.add_argument("--disagree", type=float, default=0.2, help="the share ben changes")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    folder = drawn_folder(work / "drawn", args.images // len(COLOURS))
    run = work / "run"
    flags = "--preset tiny --device cpu --pretrain-epochs 1 --epochs-per-round 1 --width 8"
    command = [sys.executable, "-m", "salal_core.cli", "serve", "--data", str(folder)]
    command += [*flags.split(), "--query-size", "24", "--budget", "1.0", "--overlap", "2"]
    started = time.perf_counter()
    service = subprocess.Popen([*command, "--out", str(run)], stderr=subprocess.DEVNULL)
    while not socket_path(run).is_socket():
        if service.poll() is not None:
            raise SystemExit("salal-core serve did not start")
        time.sleep(0.05)
    store = RunStore(run, create=False, lock=False)
    while not store.items():
        time.sleep(0.05)
    names = sorted(COLOURS)
    truth = {i: names.index(Path(s).parent.name) for i, s in store.sources().items()}
    store.close()
    ana_answers = dict(truth)
    ben_answers = {
        i: (c + 1) % len(names) if disagreed(i, args.disagree) else c for i, c in truth.items()
    }
    labelers = [Scripted(run, "ana", ana_answers), Scripted(run, "ben", ben_answers)]
    for labeler in labelers:
        labeler.start()
    for labeler in labelers:
        labeler.join()
    service.wait(120)
    agreement, _, _ = run_agreement(run)
    ana, ben = labelers[0].sent, labelers[1].sent
    hand = by_hand(ana, ben, len(names))
    trips = [t for labeler in labelers for t in labeler.round_trips]
    known_share = sum(disagreed(i, args.disagree) for i in set(ana) & set(ben)) / hand.images
    result = {
        "images_answered_twice": agreement.overlapping,
        "disagreeing_share": known_share,
        "observed": agreement.observed,
        "one_minus_disagreeing_share": 1 - known_share,
        "observed_equal": agreement.observed == (hand.images - hand.disagreed) / hand.images,
        "cohen": agreement.pairs[0].kappa,
        "cohen_by_hand": hand.cohen,
        "cohen_difference": abs(agreement.pairs[0].kappa - hand.cohen),
        "fleiss": agreement.fleiss,
        "fleiss_by_hand": hand.fleiss,
        "fleiss_difference": abs(agreement.fleiss - hand.fleiss),
        "answer_round_trip_ms_p50": round(1000 * float(np.median(trips)), 3),
        "answer_round_trip_ms_p95": round(1000 * float(np.quantile(trips, 0.95)), 3),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=1))
    ok = (
        agreement.overlapping == hand.images
        and result["observed_equal"]
        and result["cohen_difference"] <= 1e-9
        and result["fleiss_difference"] <= 1e-9
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
