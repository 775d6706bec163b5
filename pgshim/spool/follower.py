"""Follow RedDB's live logical WAL spool read-only.

The spool belongs to RedDB: it is opened read-only and never truncated, renamed or locked.
A torn tail is "not written yet" (retry from the same offset); a bad frame stops reading at its
offset and is reported through ``status`` and the log, never skipped; a prune (the file renamed
over, or shrunk) is detected and reading resumes after the last delivered record.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain

from pgshim.errors import PgError
from pgshim.spool.frames import Frame, FrameProblem, scan_frames
from pgshim.spool.index import SpoolIndex

log = logging.getLogger("pgshim.spool")

DELIVERED_WINDOW = 65536  # recent LSNs remembered exactly, to tell duplicates after a prune
HEAD_BYTES = 4096  # a persisted index names its file by identity and by these first bytes
FIRST_READ_BYTES = 64 << 10  # the first read of a catch-up iteration; later ones double
INDEX_BATCH = 4096  # frames indexed at a time when the index catches up with the file
# a file modified this recently may be modified again without its mtime changing (file times
# have the kernel clock's coarse granularity): its stat does not prove it unchanged
RACY_NS = 2_000_000_000


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


@dataclass(frozen=True, slots=True)
class IndexSnapshot:
    """A spool file's seek index and counts, to persist between runs (``entries`` may be the
    checkpoints after the first ``checkpoints - len(entries)`` only)."""

    device: int
    inode: int
    head: bytes  # the file's first bytes, up to HEAD_BYTES
    count: int
    max_lsn: int
    end_offset: int
    checkpoints: int
    entries: list[tuple[int, int]]
    records: int
    first_lsn: int | None
    last_lsn: int | None
    gaps: int
    out_of_order: int
    layouts: list[str]


class DeliveredLsns:
    """Which LSNs were delivered: the recent ones exactly, a floor below them.

    Recording is cheap (one list per poll); the set is only built when a prune or a seek makes
    filtering necessary, and filtering stops once the records are past everything delivered.
    """

    def __init__(self, window: int = DELIVERED_WINDOW) -> None:
        self._window = window
        self._batches: deque[list[int]] = deque()
        self._count = 0
        self.floor = -1  # every LSN <= floor counts as delivered while filtering
        self._seen: set[int] = set()
        self._seen_max = -1
        self.filtering = False

    def record(self, lsns: list[int]) -> None:
        if not lsns:
            return
        self._batches.append(lsns)
        self._count += len(lsns)
        while self._count - len(self._batches[0]) >= self._window:
            oldest = self._batches.popleft()
            self._count -= len(oldest)
            self.floor = max(self.floor, max(oldest))

    def start_filtering(self) -> None:
        """After a prune: skip everything delivered before it."""
        self._seen = set(chain.from_iterable(self._batches))
        self._seen_max = max(self._seen, default=self.floor)
        self._seen_max = max(self._seen_max, self.floor)
        self.filtering = True

    def reset(self, floor: int) -> None:
        """After a seek: deliver only LSNs above floor."""
        self._batches.clear()
        self._count = 0
        self.floor = floor
        self._seen = set()
        self._seen_max = floor
        self.filtering = True

    def __contains__(self, lsn: int) -> bool:
        return lsn <= self.floor or lsn in self._seen or any(lsn in b for b in self._batches)

    def select(self, frames: list[Frame]) -> list[Frame]:
        """The frames not delivered yet."""
        if not self.filtering or not frames:
            return frames
        floor, seen = self.floor, self._seen
        fresh = [f for f in frames if f.lsn > floor and f.lsn not in seen]
        if len(fresh) == len(frames) and min(f.lsn for f in frames) > self._seen_max:
            self.filtering = False
            self._seen = set()
        return fresh


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
        self._stat: tuple[int, int, int] | None = None  # size, mtime, ctime at the last refresh
        self._read_stat: tuple[int, int, int] | None = None  # ... when the last read ended
        self._index = SpoolIndex()
        self._delivered = DeliveredLsns()
        self._problem: FrameProblem | None = None
        self._logged: set[tuple[int, str]] = set()
        # told the frames a prune rescan or a seek skipped as delivered, so that whoever knows
        # what was delivered can tell a re-read from a rewrite or a late record
        self.on_skipped: Callable[[list[Frame]], None] | None = None

    # -- public API ------------------------------------------------------------------------

    def poll(self, max_bytes: int | None = None) -> list[Frame]:
        """New complete frames since the last poll, in file order (never raises on bad bytes).

        max_bytes bounds the bytes consumed by one call (at chunk granularity); the rest waits
        for the next poll.
        """
        if not self._refresh():
            return []
        gc_was_enabled = gc.isenabled()
        gc.disable()  # frames hold no cycles; collecting while reading many of them is waste
        try:
            return self._read_new(max_bytes)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _read_new(self, max_bytes: int | None) -> list[Frame]:
        assert self._fd is not None
        stop_at = None if max_bytes is None else self._offset + max_bytes
        if self._pending or self._problem is not None:
            unchanged = self._stat == self._read_stat and not self._racy()
            at_tail = self._stat is not None and self._offset + len(self._pending) >= self._stat[0]
            if unchanged and (at_tail or self._problem is not None):
                return []  # stopped at a torn tail or a bad frame, and the file is as it was
            if not unchanged:
                # read it again from the file: RedDB may have finished, repaired or rewritten
                # the bytes read before, in place (bytes kept from then may be stale)
                self._pending = b""
            # (unchanged bytes short of the end: a frame a read bounded by max_bytes cut; go on)
        self._read_stat = self._stat
        delivered: list[Frame] = []
        while True:
            read_at = self._offset + len(self._pending)
            chunk = os.pread(self._fd, self.chunk_size, read_at)
            if not chunk and self._problem is None:
                break
            data = self._pending + chunk if self._pending else chunk
            result = scan_frames(data, self._offset)
            self._catalog(result.frames)
            fresh = self._delivered.select(result.frames)
            if len(fresh) != len(result.frames) and self.on_skipped is not None:
                kept = {id(frame) for frame in fresh}
                self.on_skipped([f for f in result.frames if id(f) not in kept])
            self._delivered.record([f.lsn for f in fresh])
            delivered.extend(fresh)
            self._offset += result.consumed
            self._pending = data[result.consumed :]
            self._set_problem(result.problem)
            if result.problem is not None or len(chunk) < self.chunk_size:
                break
            if stop_at is not None and self._offset >= stop_at:
                break
        self.status.offset = self._offset
        return delivered

    def seek(self, after_lsn: int, *, new_from: tuple[int | None, int] | None = None) -> None:
        """The next poll() starts at the first record with lsn > after_lsn (O(log n)), or at
        ``new_from`` = (inode, offset) when that is this file and earlier: what was appended
        there after it was last read is read too (records at lower LSNs are skipped, and told)."""
        if self._refresh():
            self._extend_index()
            self._offset = self._index.start_offset(after_lsn)
            if new_from is not None and new_from[0] == self.status.inode:
                self._offset = min(self._offset, new_from[1])
        else:
            self._offset = 0
        self._pending = b""
        self._delivered.reset(after_lsn)
        self.status.offset = self._offset

    def iter_from(self, after_lsn: int, limit: int | None = None) -> Iterator[Frame]:
        """Retained records with lsn > after_lsn, in file order, read through their own handle.
        A bad frame with bytes after it (not one still being written) raises XX001: what
        follows it cannot be read, and must not look like the end of the spool."""
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
            # catch-up reads often stop after a chunk of transactions: the first read is small
            frames = _read_frames(
                fd, start, self.chunk_size, first_size=FIRST_READ_BYTES, damage=self._damaged
            )
            for frame in frames:
                if frame.lsn > after_lsn:
                    yield frame
                    yielded += 1
                    if limit is not None and yielded >= limit:
                        return
        finally:
            os.close(fd)

    def index_snapshot(self, entries_from: int = 0) -> IndexSnapshot | None:
        """The index of the open file with its checkpoints from ``entries_from`` on; None when
        no file is open."""
        if self._fd is None or self._identity is None:
            return None
        index, status = self._index, self.status
        return IndexSnapshot(
            *self._identity,
            head=os.pread(self._fd, min(HEAD_BYTES, index.end_offset), 0),
            count=index.count,
            max_lsn=index.max_lsn,
            end_offset=index.end_offset,
            checkpoints=index.checkpoints,
            entries=index.entries(entries_from),
            records=status.records,
            first_lsn=status.first_lsn,
            last_lsn=status.last_lsn,
            gaps=status.gaps,
            out_of_order=status.out_of_order,
            layouts=sorted(status.layouts_seen),
        )

    def restore_index(self, snapshot: IndexSnapshot) -> bool:
        """Take over a persisted index (call before reading) when it describes the file there
        now: same file, same first bytes, and its last records still end where it ended. False,
        and nothing changed, otherwise: the file is indexed by reading it, as always."""
        if not self._refresh() or self._index.count or snapshot.count == 0:
            return False
        assert self._fd is not None
        if (snapshot.device, snapshot.inode) != self._identity:
            return False
        if os.fstat(self._fd).st_size < snapshot.end_offset:
            return False
        if os.pread(self._fd, len(snapshot.head), 0) != snapshot.head:
            return False
        if len(snapshot.entries) != snapshot.checkpoints:
            return False
        end = start = snapshot.entries[-1][1] if snapshot.entries else 0
        for frame in _read_frames(self._fd, start, self.chunk_size):
            if frame.offset >= snapshot.end_offset:
                break
            end = frame.offset + frame.size
        if end != snapshot.end_offset:
            return False
        self._index.restore(snapshot.entries, count=snapshot.count, max_lsn=snapshot.max_lsn,
                            end_offset=snapshot.end_offset)  # fmt: skip
        status = self.status
        status.records, status.gaps, status.out_of_order = (
            snapshot.records, snapshot.gaps, snapshot.out_of_order
        )  # fmt: skip
        status.first_lsn, status.last_lsn = snapshot.first_lsn, snapshot.last_lsn
        status.layouts_seen = set(snapshot.layouts)
        log.info("spool %s: seek index of %d records taken over", self.path, snapshot.count)
        return True

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
        self._stat = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        self.status.exists = True
        self.status.size = st.st_size
        self.status.inode = st.st_ino
        return True

    def _racy(self) -> bool:
        """Whether the file was modified too recently for its stat to prove it unchanged."""
        return self._stat is None or time.time_ns() - self._stat[1] < RACY_NS

    def _on_replaced(self) -> None:
        """A prune (or any replacement) happened: rescan the new file, skipping delivered LSNs."""
        log.info("spool %s was replaced (pruned); rescanning it", self.path)
        self._offset = 0
        self._pending = b""
        self._index.reset()
        self._delivered.start_filtering()
        self._problem = None
        prunes = self.status.prunes + 1
        self.status = SpoolStatus(path=self.path, prunes=prunes)

    def _catalog(self, frames: list[Frame]) -> None:
        """Index the records read for the first time and count them in the status."""
        status = self.status
        index_add = self._index.add
        layouts = status.layouts_seen
        first, last = status.first_lsn, status.last_lsn
        records = status.records
        gaps = status.gaps
        out_of_order = status.out_of_order
        for frame in frames:
            lsn = frame.lsn
            if not index_add(lsn, frame.offset, frame.size):
                continue
            records += 1
            if frame.layout not in layouts:
                layouts.add(frame.layout)
            if last is None or first is None:
                first = last = lsn
            elif lsn > last:
                gaps += lsn - last - 1
                last = lsn
            elif lsn < last:
                out_of_order += 1
                if lsn < first:
                    gaps += first - lsn - 1
                    first = lsn
                elif gaps:
                    gaps -= 1  # it fills a hole counted before
        status.records = records
        status.first_lsn, status.last_lsn = first, last
        status.gaps = gaps
        status.out_of_order = out_of_order

    def _extend_index(self) -> None:
        """Index the records between the end of the index and the end of the file."""
        assert self._fd is not None
        frames_read = 0
        batch: list[Frame] = []
        for frame in _read_frames(self._fd, self._index.end_offset, self.chunk_size, self):
            batch.append(frame)
            if len(batch) >= INDEX_BATCH:
                self._catalog(batch)
                frames_read += len(batch)
                batch.clear()
        self._catalog(batch)
        frames_read += len(batch)
        if frames_read:
            log.debug("indexed %d more records of %s", frames_read, self.path)

    def _damaged(self, problem: FrameProblem) -> PgError:
        if (problem.offset, problem.reason) not in self._logged:
            self._logged.add((problem.offset, problem.reason))
            log.warning("spool %s: bad frame at byte offset %d: %s; reads of the records after "
                        "it fail", self.path, problem.offset, problem.reason)  # fmt: skip
        return PgError(
            "XX001",
            f'invalid page in RedDB spool "{self.path}" at byte offset {problem.offset}: '
            f"{problem.reason}",
            hint="RedDB repairs its spool when it next opens it.",
        )

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
    fd: int,
    start: int,
    chunk_size: int,
    reporter: SpoolFollower | None = None,
    first_size: int | None = None,
    damage: Callable[[FrameProblem], Exception] | None = None,
) -> Iterator[Frame]:
    """Complete frames from ``start`` to the end of the file (stops at a torn tail or bad frame);
    reads of ``first_size`` bytes, doubling up to ``chunk_size``. ``damage``: the error raised
    for a bad frame that bytes follow (one at the end may still be being written)."""
    offset = start
    pending = b""
    size = chunk_size if first_size is None else min(first_size, chunk_size)
    while True:
        asked, size = size, min(size * 2, chunk_size)
        chunk = os.pread(fd, asked, offset + len(pending))
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
            elif damage is not None and (not result.problem.at_tail or len(chunk) == asked):
                raise damage(result.problem)
            return
