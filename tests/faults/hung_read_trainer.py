"""The real trainer (``trainers.train``) with one read that never returns in its DataLoader worker.

``python -m hung_read_trainer ...`` with this folder on PYTHONPATH. HUNG_BATCH: the batch (index in the
process's plan) whose loading blocks, in a worker only; HUNG_FIFO: a FIFO that nothing writes, opened for
reading there (past the type check a manifest's audio gets), so the worker's thread waits in the kernel while
the rest of the worker lives on: what a read on a hung network mount does. The main process is untouched, so
what follows is the trainer's own handling.
"""

from __future__ import annotations

import os
import sys

from torch.utils.data import get_worker_info

from trainers import data
from trainers.train import main

HUNG_BATCH = int(os.environ.get("HUNG_BATCH", "-1"))
_load = data.BatchStream.load


def _hung_load(self, k):
    if get_worker_info() is not None and k == HUNG_BATCH:
        with open(os.environ["HUNG_FIFO"], "rb") as fh:  # blocks: no writer ever comes
            fh.read()
    return _load(self, k)


data.BatchStream.load = _hung_load

if __name__ == "__main__":
    sys.exit(main())
