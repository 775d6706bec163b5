"""A sparse in-memory index of record → byte offset for seeking by RedDB LSN in O(log n).

Every ``interval``-th record (in file order) is a checkpoint. LSNs may be slightly out of order
and have gaps, so each checkpoint is keyed by the running maximum LSN of the records *before* it:
those keys never decrease, and every record before a checkpoint whose key is <= X has an
LSN <= X. Seeking to "after X" starts at the last such checkpoint and filters lsn > X.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

SEEK_INDEX_INTERVAL = 64  # the same spacing RedDB's own seek index uses


class SpoolIndex:
    def __init__(self, interval: int = SEEK_INDEX_INTERVAL) -> None:
        self.interval = interval
        self.reset()

    def reset(self) -> None:
        # machine integers, not int objects: 16 bytes per checkpoint (10M records: 2.5 MB);
        # keys are stored plus one so that the first, -1, fits an unsigned array
        self._keys = array("Q")
        self._offsets = array("Q")
        self.count = 0  # records indexed
        self.max_lsn = -1  # running maximum LSN of the records indexed
        self.end_offset = 0  # byte offset just past the last record indexed

    def add(self, lsn: int, offset: int, size: int) -> bool:
        """Index one record; records arrive in file order. False if it was already indexed."""
        if offset < self.end_offset:
            return False
        if self.count % self.interval == 0:
            self._keys.append(self.max_lsn + 1)
            self._offsets.append(offset)
        if lsn > self.max_lsn:
            self.max_lsn = lsn
        self.count += 1
        self.end_offset = offset + size
        return True

    def start_offset(self, after_lsn: int) -> int:
        """A byte offset from which scanning (and filtering lsn > after_lsn) finds every such record."""
        if self.max_lsn <= after_lsn:
            return self.end_offset
        i = bisect_right(self._keys, after_lsn + 1) - 1
        return self._offsets[i] if i >= 0 else 0

    @property
    def checkpoints(self) -> int:
        return len(self._keys)

    def entries(self, start: int = 0) -> list[tuple[int, int]]:
        """(key, offset) of the checkpoints from the ``start``-th on (what persisting needs)."""
        return list(zip(self._keys[start:], self._offsets[start:], strict=True))

    def restore(
        self, entries: list[tuple[int, int]], *, count: int, max_lsn: int, end_offset: int
    ) -> None:
        """Take over an index persisted from ``entries`` and the totals it had."""
        self.reset()
        for key, offset in entries:
            self._keys.append(key)
            self._offsets.append(offset)
        self.count, self.max_lsn, self.end_offset = count, max_lsn, end_offset
