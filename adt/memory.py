"""Peak resident memory of a block of code (the footprint benchmarks and the trimming study's Table 1)."""

from __future__ import annotations

import ctypes
import gc
import os
import threading
from pathlib import Path


class PeakMemory:
    """Peak resident memory (MB) above the start while the block runs (``/proc/self/statm``, 5 ms polls).

    Memory freed before the block is first handed back to the system (``gc.collect``, glibc's
    ``malloc_trim``), so that a block reusing freed memory still counts it.
    """

    def __enter__(self):
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _rss(self) -> int:
        try:
            return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            return 0

    def _poll(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.mb = (self.peak - self.base) / 2 ** 20
