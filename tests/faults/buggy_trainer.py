"""The real trainer (``trainers.train``) with one bug injected into its DataLoader workers.

``accelerate launch -m buggy_trainer ...`` with this folder on PYTHONPATH. BUGGY_ID: the
utterance whose loading raises ``RuntimeError`` in a worker; BUGGY_WHERE: ``row`` (while
its row is prepared, the default) or ``stream`` (in the worker's batch iteration, outside any
row). The main process is untouched, so what follows the bug is the trainer's own handling.
"""

from __future__ import annotations

import os
import sys

from torch.utils.data import get_worker_info

from trainers import data
from trainers.train import main

BUGGY_ID = os.environ.get("BUGGY_ID", "")
WHERE = os.environ.get("BUGGY_WHERE", "row")
_prepare, _load = data.BatchStream._prepare, data.BatchStream.load


def _buggy_prepare(self, i, *args, **kwargs):
    if WHERE == "row" and get_worker_info() is not None and self.rows[i].id == BUGGY_ID:
        raise RuntimeError("an injected bug")
    return _prepare(self, i, *args, **kwargs)


def _buggy_load(self, k):
    if WHERE == "stream" and get_worker_info() is not None and any(self.rows[i].id == BUGGY_ID
                                                                   for i in self.batches[k]):
        raise RuntimeError("an injected bug outside any row")
    return _load(self, k)


data.BatchStream._prepare, data.BatchStream.load = _buggy_prepare, _buggy_load

if __name__ == "__main__":
    sys.exit(main())
