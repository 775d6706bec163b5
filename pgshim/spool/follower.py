"""Follow RedDB's live logical WAL spool read-only.

The spool belongs to RedDB: it is opened read-only and never truncated, renamed or locked.
A torn tail is "not written yet" (retry from the same offset); a bad frame stops reading at its
offset and is reported through ``status`` and the log, never skipped; a prune (the file renamed
over, or shrunk) is detected and reading resumes after the last delivered record.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from pgshim.spool.frames import Frame, FrameProblem, scan_frames
from pgshim.spool.index import SpoolIndex

log = logging.getLogger("pgshim.spool")

DELIVERED_WINDOW = 65536  # recent LSNs remembered exactly, to tell duplicates after a prune


@dataclass
class SpoolStatus:
    """Live state of the spool, read by the status catalog. Counts describe the current file."""

    path: str
    exists: bool = False
    size: int = 0
    offset: int = 0  # end of the last complete record read
    inode: int | None = None
    layouts_seen: set[str] = field(default_factory=set)
    records: int = 0
    first_lsn: int | None = None  # lowest and highest LSN read from the current file
    last_lsn: int | None = None
    corrupt_offset: int | None = None
    corrupt_reason: str | None = None
    gaps: int = 0  # LSNs missing between the lowest and highest LSN read
    out_of_order: int = 0  # records whose LSN is below an LSN read before them
    prunes: int = 0


class DeliveredLsns:
    """Which LSNs were already delivered: exact for the recent window, a floor below it."""

    def __init__(self, floor: int = 0, window: int = DELIVERED_WINDOW) -> None:
        self._window = window
        self.reset(floor)

    def reset(self, floor: int) -> None:
        self.floor = floor  # every LSN <= floor counts as delivered
        self._recent: set[int] = set()
        self._order: deque[int] = deque()

    def __contains__(self, lsn: int) -> bool:
        return lsn <= self.floor or lsn in self._recent

    def add(self, lsn: int) -> None:
        self._recent.add(lsn)
        self._order.append(lsn)
        if len(self._order) > self._window:
            oldest = self._order.popleft()
            self._recent.discard(oldest)
            self.floor = max(self.floor, oldest)


class SpoolFollower:
    """Reads new complete frames of one spool; not thread-safe (one owner polls it)."""

    def __init__(self, path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> None:
        self.path = os.fspath(path)
        self.chunk_size = chunk_size
        self.status = SpoolStatus(path=self.path)
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._had_file = False
        self._offset = 0  # file offset of the next frame to deliver
        self._pending = b""  # bytes read from _offset that do not form a complete frame yet
        self._index = SpoolIndex()
        self._delivered = DeliveredLsns()
        self._problem: FrameProblem | None = None
        self._logged: set[tuple[int, str]] = set()

    # -- public API ------------------------------------------------------------------------

    def poll(self) -> list[Frame]:
        """New complete frames since the last poll, in file order (never raises on bad bytes)."""
        if not self._refresh():
            return []
        assert self._fd is not None
        if self._problem is not None:
            self._pending = b""  # re-read the bad frame: RedDB may have repaired or rewritten it
        delivered: list[Frame] = []
        while True:
            read_at = self._offset + len(self._pending)
            chunk = os.pread(self._fd, self.chunk_size, read_at)
            if not chunk and self._problem is None:
                break
            data = self._pending + chunk if self._pending else chunk
            result = scan_frames(data, self._offset)
            self._catalog(result.frames)
            is_delivered = self._delivered.__contains__
            mark = self._delivered.add
            for frame in result.frames:
                if not is_delivered(frame.lsn):
                    mark(frame.lsn)
                    delivered.append(frame)
            self._offset += result.consumed
            self._pending = data[result.consumed :]
            self._set_problem(result.problem)
            if result.problem is not None or len(chunk) < self.chunk_size:
                break
        self.status.offset = self._offset
        return delivered

    def seek(self, after_lsn: int) -> None:
        """The next poll() starts at the first record with lsn > after_lsn (O(log n))."""
        if self._refresh():
            self._extend_index()
            self._offset = self._index.start_offset(after_lsn)
        else:
            self._offset = 0
        self._pending = b""
        self._delivered.reset(after_lsn)
        self.status.offset = self._offset

    def iter_from(self, after_lsn: int, limit: int | None = None) -> Iterator[Frame]:
        """Retained records with lsn > after_lsn, in file order, read through their own handle."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            st = os.fstat(fd)
            start = 0
            if self._fd is not None and (st.st_dev, st.st_ino) == self._identity:
                self._extend_index()
                start = self._index.start_offset(after_lsn)
            yielded = 0
            for frame in _read_frames(fd, start, self.chunk_size):
                if frame.lsn > after_lsn:
                    yield frame
                    yielded += 1
                    if limit is not None and yielded >= limit:
                        return
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SpoolFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _refresh(self) -> bool:
        """Open the spool or notice that it was pruned; False while it does not exist."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.status.exists = False
            self.status.size = 0
            self.close()
            return False
        identity = (st.st_dev, st.st_ino)
        if self._fd is not None and (identity != self._identity or st.st_size < self._offset):
            self.close()
        if self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return False
            st = os.fstat(fd)
            self._fd = fd
            self._identity = (st.st_dev, st.st_ino)
            if self._had_file:
                self._on_replaced()
            self._had_file = True
        elif st.st_size < self._offset + len(self._pending):
            self._pending = b""  # the torn tail was cut off; read it again from _offset
        self.status.exists = True
        self.status.size = st.st_size
        self.status.inode = st.st_ino
        return True

    def _on_replaced(self) -> None:
        """A prune (or any replacement) happened: rescan the new file, skipping delivered LSNs."""
        log.info("spool %s was replaced (pruned); rescanning it", self.path)
        self._offset = 0
        self._pending = b""
        self._index.reset()
        self._problem = None
        prunes = self.status.prunes + 1
        self.status = SpoolStatus(path=self.path, prunes=prunes)

    def _catalog(self, frames: list[Frame]) -> None:
        """Index the records read for the first time and count them in the status."""
        status = self.status
        index_add = self._index.add
        for frame in frames:
            if not index_add(frame.lsn, frame.offset, frame.size):
                continue
            lsn = frame.lsn
            status.records += 1
            status.layouts_seen.add(frame.layout)
            if status.last_lsn is None:
                status.first_lsn = status.last_lsn = lsn
                continue
            if lsn > status.last_lsn:
                status.gaps += lsn - status.last_lsn - 1
                status.last_lsn = lsn
            elif lsn < status.last_lsn:
                status.out_of_order += 1
                if lsn < status.first_lsn:  # type: ignore[operator]
                    status.gaps += status.first_lsn - lsn - 1  # type: ignore[operator]
                    status.first_lsn = lsn
                elif status.gaps:
                    status.gaps -= 1  # it fills a hole counted before

    def _extend_index(self) -> None:
        """Index the records between the end of the index and the end of the file."""
        assert self._fd is not None
        frames_read = 0
        for frame in _read_frames(self._fd, self._index.end_offset, self.chunk_size, self):
            self._catalog([frame])
            frames_read += 1
        if frames_read:
            log.debug("indexed %d more records of %s", frames_read, self.path)

    def _set_problem(self, problem: FrameProblem | None) -> None:
        self._problem = problem
        self.status.corrupt_offset = None if problem is None else problem.offset
        self.status.corrupt_reason = None if problem is None else problem.reason
        if problem is None:
            return
        key = (problem.offset, problem.reason)
        if key not in self._logged:
            self._logged.add(key)
            log.warning(
                "spool %s: bad frame at byte offset %d: %s; waiting for RedDB to repair it",
                self.path,
                problem.offset,
                problem.reason,
            )


def _read_frames(
    fd: int, start: int, chunk_size: int, reporter: SpoolFollower | None = None
) -> Iterator[Frame]:
    """Complete frames from ``start`` to the end of the file (stops at a torn tail or bad frame)."""
    offset = start
    pending = b""
    while True:
        chunk = os.pread(fd, chunk_size, offset + len(pending))
        if not chunk:
            return
        data = pending + chunk if pending else chunk
        result = scan_frames(data, offset)
        yield from result.frames
        offset += result.consumed
        pending = data[result.consumed :]
        if result.problem is not None:
            if reporter is not None:
                reporter._set_problem(result.problem)
            return
