"""The real trainer (``trainers.train``) on a disk that fills up after FULL_AFTER checkpoints.

``accelerate launch -m full_disk_trainer ...`` with this folder on PYTHONPATH. Before the
checkpoint after FULL_AFTER (3) good ones, the process's file size limit (RLIMIT_FSIZE) drops
to FULL_BYTES (8 KiB): from then on the kernel fails every write past that size with EFBIG, in
Python, torch's C++ writer and safetensors' alike, which is what a full disk does to a run
(ENOSPC) without root or a small filesystem. SIGXFSZ is ignored so a write fails instead of
killing the process. Small files (status.json) can still be written, as on a real disk once the
failed checkpoint's temp folder is removed.
"""

from __future__ import annotations

import os
import resource
import signal
import sys

from trainers import checkpoint
from trainers.train import main

FULL_AFTER = int(os.environ.get("FULL_AFTER", "3"))
FULL_BYTES = int(os.environ.get("FULL_BYTES", "8192"))
_save, _saved = checkpoint.save_checkpoint, []


def _save_on_a_filling_disk(accelerator, root, name, state):
    if len(_saved) == FULL_AFTER:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (FULL_BYTES, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    out = _save(accelerator, root, name, state)
    _saved.append(name)
    return out


checkpoint.save_checkpoint = _save_on_a_filling_disk

if __name__ == "__main__":
    sys.exit(main())
