"""A labeling session in its own process, for the kill-and-resume tests.

Answers every query from the ground truth as fast as it can, printing `ACK index label` only
after `answer` has returned (that is, once the label is acknowledged as saved). The engine runs
in its own process, as under salal-tui, so a kill lands on the pair of them.

    python tests/label_driver.py PACK CACHE RUN_DIR [--resume]
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from helpers import tiny_config
from salal_core.parallel.worker import EngineProcess
from salal_core.run.factory import open_session


def main() -> int:
    pack, cache, run_dir = (Path(a) for a in sys.argv[1:4])
    resume = "--resume" in sys.argv
    config = (
        None
        if resume
        else tiny_config(
            pack, cache, **{"active.query_size": 6, "active.lookahead": 2, "active.budget": 0.5}
        )
    )
    session = open_session(config, run_dir, oracle="human", resume=resume)
    oracle = session.oracle
    assert oracle is not None
    worker = threading.Thread(target=EngineProcess(session, lambda event: None).run, daemon=True)
    worker.start()
    while worker.is_alive():
        query = oracle.current()
        images = session.images.loaded
        if query is None or images is None:
            time.sleep(0.002)
            continue
        label = int(images.train.labels[query.index])
        oracle.answer(query.index, label)
        print(f"ACK {query.item} {label}", flush=True)
    worker.join()
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
