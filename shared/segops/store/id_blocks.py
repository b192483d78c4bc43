"""Global integer ids without a hot counter document.

Control-plane ids are integers (docs/api.md: every `<id>` in a path) and global (a path naming a
segment, connector or export finds the one tenant holding it). One counter document per kind, bumped
by compare-and-swap on every allocation, caps a kind at GCS's ~1 write/s per object and makes
concurrent creators retry each other. So a process reserves a block of `BLOCK_SIZE` ids with one
compare-and-swap and hands them out from memory: the counter is written once per block, blocks never
overlap, and ids stay small enough for JavaScript's exact integers. Ids are unique, not contiguous
or ordered across processes (a block a process did not use up is skipped); what must be ordered uses
a per-object sequence instead (`DocumentRepository.next_id`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from segops.store.base import Store

BLOCK_SIZE = 64


class IdBlocks:
    """The unused rest of each kind's current block, per store (per control plane)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks: weakref.WeakKeyDictionary[Store, dict[str, range]] = weakref.WeakKeyDictionary()

    def take(self, store: Store, kind: str, reserve: Callable[[int], int]) -> int:
        """The next id of `kind`; `reserve(n)` advances the kind's counter by `n` and returns its new
        value (the block is the `n` ids ending there)."""
        with self._lock:
            blocks = self._blocks.setdefault(store, {})
            free = blocks.get(kind)
            if not free:
                end = reserve(BLOCK_SIZE)
                free = range(end - BLOCK_SIZE + 1, end + 1)
            blocks[kind] = free[1:]
            return free[0]


BLOCKS = IdBlocks()
