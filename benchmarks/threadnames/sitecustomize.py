"""Imported at startup by a process whose PYTHONPATH starts with this directory (`load.dev_stack(...,
name_threads=True)`): each Python thread gives its OS thread its own name (Linux keeps 15 bytes), so
`/proc/<pid>/task/*/stat` tells the HTTP server's threads (`waitress-N`), the bus deliveries
(`segops-bus-N`) and the warehouse sessions (`segops-chdb-N`) apart from each other and from the
engine's own threads (ClickHouse names those: `QueryPipelineEx`, `MergeMutate`, ...). CPython 3.11
names none of them: without this, every Python thread reads as the process's name. Benchmarks only."""

from __future__ import annotations

import ctypes
import sys
import threading

if sys.platform == "linux":
    _PR_SET_NAME = 15
    _libc = ctypes.CDLL(None, use_errno=True)
    _run = threading.Thread.run

    def _named_run(self: threading.Thread) -> None:
        _libc.prctl(_PR_SET_NAME, self.name.encode()[:15], 0, 0, 0)
        _run(self)

    threading.Thread.run = _named_run  # type: ignore[method-assign]
