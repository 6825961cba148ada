"""A labeling session in its own process, for the kill-and-resume tests.

Answers every query from the ground truth as fast as it can, printing `ACK index label` only
once the run's private service has acknowledged it (that is, once it is saved). The service and
its engine run as under salal-tui, so a kill lands on all of them.

    python tests/label_driver.py PACK CACHE RUN_DIR [--resume]
"""

from __future__ import annotations

import math
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from helpers import tiny_config
from salal_core.events import ignore
from salal_core.run.factory import open_session
from salal_core.team.client import Refusal, ServiceClient
from salal_core.team.hosted import HostedRun


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
    hosted = HostedRun(session, ignore, lambda line: None, lease_seconds=math.inf)
    client = ServiceClient(run_dir, "tester")  # as salal-tui joins its private service
    client.connect()
    worker = threading.Thread(target=hosted.run, daemon=True)
    worker.start()
    while worker.is_alive():
        queued = client.queued()
        images = session.images.loaded
        if not queued or images is None:
            time.sleep(0.002)
            continue
        label = int(images.train.labels[queued[0].index])
        try:
            client.give([(queued[0].item, label)])
        except Refusal:  # the run finished meanwhile
            break
        print(f"ACK {queued[0].item} {label}", flush=True)
    worker.join()
    client.close()
    hosted.close()
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
