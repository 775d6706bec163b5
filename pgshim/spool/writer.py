"""Append frames exactly like RedDB does (for tests, the demo and benchmarks).

RedDB opens the spool with create+append, builds each frame in memory, writes it with a single
write and fsyncs before returning. ChangeRecord JSON has sorted keys, no spaces, raw UTF-8.
"""

from __future__ import annotations

import json
import math
import os
import time
from decimal import Decimal

from pgshim.spool.frames import LAYOUTS, build_frame

_I64_MAX = (1 << 63) - 1
_I64_MIN = -(1 << 63)


def encode_change_record(record: dict) -> bytes:
    """ChangeRecord JSON bytes as RedDB serialises them (sorted keys, compact, raw UTF-8)."""
    return _json(record).encode("utf-8")


def _json(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _f64(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0])
        return "{" + ",".join(f"{_json(str(k))}:{_json(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} in a ChangeRecord")


def _f64(value: float) -> str:
    """RedDB's f64 number writer: integral values print as i64, others without an exponent."""
    if not math.isfinite(value):
        raise ValueError("RedDB cannot write NaN or infinity as JSON")
    if value.is_integer():
        return str(max(_I64_MIN, min(_I64_MAX, int(value))))
    return format(Decimal(repr(value)), "f")


class SpoolWriter:
    """Appends frames to a spool file; one write (and optionally one fsync) per frame."""

    def __init__(
        self, path: str | os.PathLike[str], *, layout: str = "v3-41", fsync: bool = True
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown frame layout {layout!r}")
        self.path = os.fspath(path)
        self.layout = layout
        self.fsync = fsync
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size

    def append(
        self,
        payload: bytes,
        *,
        lsn: int,
        timestamp_ms: int | None = None,
        term: int = 1,
        ownership_epoch: int = 0,
    ) -> int:
        """Append one frame; returns its byte offset in the file."""
        if timestamp_ms is None:
            timestamp_ms = time.time_ns() // 1_000_000
        frame = build_frame(
            self.layout,
            lsn,
            payload,
            timestamp_ms=timestamp_ms,
            term=term,
            ownership_epoch=ownership_epoch,
        )
        offset = self._size
        view = memoryview(frame)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)
        self._size += len(frame)
        return offset

    def append_record(self, record: dict, *, timestamp_ms: int | None = None) -> int:
        """Append a ChangeRecord; like RedDB, the frame takes term and epoch from the payload."""
        return self.append(
            encode_change_record(record),
            lsn=record["lsn"],
            timestamp_ms=timestamp_ms,
            term=record.get("term", 1),
            ownership_epoch=record.get("ownership_epoch") or 0,
        )

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SpoolWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
