"""SIGTERM / SIGINT: ask the loop to stop at the next step boundary, with a deadline.

The loop finishes its step, saves a checkpoint, writes ``stopped`` and exits 0.
Should that take longer than ``timeout`` seconds (a hung collective, a
stalled disk), a watchdog calls ``on_timeout`` and ends the process with
exit code 1, so a stop always ends in bounded time.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable


class StopRequest:
    def __init__(self, timeout: float, on_timeout: Callable[[str], None] | None = None):
        self.timeout = timeout
        self.on_timeout = on_timeout
        self.signal_name: str | None = None
        self._event = threading.Event()
        self._previous = {}

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def install(self) -> "StopRequest":
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self._event.is_set():
            return  # the process group gets the signal more than once (launcher + ranks)
        self.signal_name = signal.Signals(signum).name
        self._event.set()
        threading.Thread(target=self._watchdog, name="stop-watchdog", daemon=True).start()

    def _watchdog(self) -> None:
        time.sleep(self.timeout)
        reason = f"did not stop within train.stop_timeout ({self.timeout:g} s) after {self.signal_name}"
        try:
            if self.on_timeout:
                self.on_timeout(reason)
        finally:
            os._exit(1)
