"""RDLW frame layouts: v1, v2, v3 with a 33-byte header (v1.8–v1.22), v3 with 41 (v1.23+).

All integers are little-endian; the CRC (zlib.crc32) covers ``frame[4:-4]``. Both v3 layouts
share the version byte, so the 41-byte layout is tried first and the one whose CRC matches wins.
"""

from __future__ import annotations

import gc
import struct
import zlib
from dataclasses import dataclass

from pgshim import speedups

MAGIC = b"RDLW"
MAX_PAYLOAD = 256 * 1024 * 1024  # RedDB's MAX_PLAUSIBLE_PAYLOAD; larger means corruption
LAYOUTS = ("v1", "v2", "v3-33", "v3-41")

_V1 = struct.Struct("<QQ")  # lsn, payload_len (u64)
_V2 = struct.Struct("<QQI")  # lsn, timestamp_ms, payload_len
_V3_33 = struct.Struct("<QQQI")  # term, lsn, timestamp_ms, payload_len
_V3_41 = struct.Struct("<QQQQI")  # term, ownership_epoch, lsn, timestamp_ms, payload_len
_CRC = struct.Struct("<I")
V1_HEADER = 5 + _V1.size  # 21
V2_HEADER = 5 + _V2.size  # 25
V3_33_HEADER = 5 + _V3_33.size  # 33
V3_41_HEADER = 5 + _V3_41.size  # 41
_MAGIC_INT = int.from_bytes(MAGIC, "little")
_HEADER_41 = struct.Struct("<IBQQQQI")  # magic, version, then the v3-41 fields
_HEADER_2 = _V2
# CRC-32 of (data + its little-endian CRC) is this constant for any data.
_CRC_RESIDUE = 0x2144DF1C


@dataclass(slots=True, frozen=True)
class Frame:
    layout: str  # "v1" | "v2" | "v3-33" | "v3-41"
    lsn: int
    timestamp_ms: int  # 0 for v1
    term: int  # 0 for v1/v2
    ownership_epoch: int  # 0 unless v3-41
    payload: bytes
    offset: int  # byte offset of the frame in the file
    size: int  # frame length in bytes


@dataclass(slots=True, frozen=True)
class FrameProblem:
    """A frame that cannot be read: the scan stops there and retries later from ``offset``."""

    offset: int
    reason: str
    at_tail: bool  # nothing follows it yet: it may still be a frame being written


@dataclass(slots=True)
class ScanResult:
    frames: list[Frame]
    consumed: int  # bytes of complete, valid frames from the start of the buffer
    problem: FrameProblem | None  # None: stopped at the end or at a torn (incomplete) tail


def build_frame(
    layout: str,
    lsn: int,
    payload: bytes,
    *,
    timestamp_ms: int = 0,
    term: int = 1,
    ownership_epoch: int = 0,
) -> bytes:
    """The exact bytes RedDB writes for one record in the given layout."""
    size = len(payload)
    if layout == "v1":
        return MAGIC + b"\x01" + _V1.pack(lsn, size) + payload
    if layout == "v2":
        body = b"\x02" + _V2.pack(lsn, timestamp_ms, size) + payload
    elif layout == "v3-33":
        body = b"\x03" + _V3_33.pack(term, lsn, timestamp_ms, size) + payload
    elif layout == "v3-41":
        body = b"\x03" + _V3_41.pack(term, ownership_epoch, lsn, timestamp_ms, size) + payload
    else:
        raise ValueError(f"unknown frame layout {layout!r}")
    return MAGIC + body + _CRC.pack(zlib.crc32(body))


def scan_frames(buf: bytes | bytearray | memoryview, base_offset: int = 0) -> ScanResult:
    """Read every complete frame at the start of ``buf`` (which starts at file offset base_offset).

    Stops at the end, at a torn tail (not yet written: problem is None) or at a bad frame
    (problem says where and why). Never skips over bad bytes. A frame that runs past the end of
    ``buf`` is a torn tail only while no complete frame follows it in ``buf``; otherwise its
    length is damaged and it is a bad frame.
    """
    data = buf if isinstance(buf, bytes) else bytes(buf)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # frames hold no cycles; collecting while building a million of them is waste
    try:
        return _scan(data, base_offset)
    finally:
        if gc_was_enabled:
            gc.enable()


def _scan(data: bytes, base_offset: int) -> ScanResult:
    mv = memoryview(data)
    end = len(data)
    pos = 0
    frames: list[Frame] = []
    fast = None if speedups.core is None else speedups.core.scan_fast
    append = frames.append
    crc32 = zlib.crc32
    header41 = _HEADER_41.unpack_from
    header2 = _HEADER_2.unpack_from
    new = object.__new__
    set_layout, set_lsn, set_ts, set_term, set_epoch, set_payload, set_offset, set_size = (
        _FRAME_SETTERS
    )
    problem: FrameProblem | None = None
    while True:
        if fast is not None:  # the compiled core reads what the fast paths below read
            pos = fast(data, pos, base_offset, frames)
        remaining = end - pos
        if remaining >= V3_41_HEADER + 4:
            # Fast paths for v3-41 and v2; anything unusual goes to the careful path.
            magic, version, term, epoch, lsn, ts, size = header41(mv, pos)
            if magic == _MAGIC_INT and version == 3 and size <= MAX_PAYLOAD:
                total = V3_41_HEADER + size + 4
                if total <= remaining and crc32(mv[pos + 4 : pos + total]) == _CRC_RESIDUE:
                    frame = new(Frame)
                    set_layout(frame, "v3-41")
                    set_lsn(frame, lsn)
                    set_ts(frame, ts)
                    set_term(frame, term)
                    set_epoch(frame, epoch)
                    set_payload(frame, data[pos + V3_41_HEADER : pos + total - 4])
                    set_offset(frame, base_offset + pos)
                    set_size(frame, total)
                    append(frame)
                    pos += total
                    continue
            elif magic == _MAGIC_INT and version == 2:
                lsn, ts, size = header2(mv, pos + 5)
                total = V2_HEADER + size + 4
                if (
                    size <= MAX_PAYLOAD
                    and total <= remaining
                    and crc32(mv[pos + 4 : pos + total]) == _CRC_RESIDUE
                ):
                    frame = new(Frame)
                    set_layout(frame, "v2")
                    set_lsn(frame, lsn)
                    set_ts(frame, ts)
                    set_term(frame, 0)
                    set_epoch(frame, 0)
                    set_payload(frame, data[pos + V2_HEADER : pos + total - 4])
                    set_offset(frame, base_offset + pos)
                    set_size(frame, total)
                    append(frame)
                    pos += total
                    continue
        elif remaining < 5:
            if remaining and data[pos : pos + 4] != MAGIC[:remaining]:
                problem = FrameProblem(base_offset + pos, "bad magic", True)
            break
        if data[pos : pos + 4] != MAGIC:
            problem = FrameProblem(base_offset + pos, "bad magic", False)
            break
        outcome = _read_frame_carefully(mv, pos, remaining, base_offset)
        if isinstance(outcome, Frame):
            append(outcome)
            pos += outcome.size
            continue
        problem = outcome
        if problem is None:
            problem = _damaged_not_torn(data, mv, pos, base_offset)
        break
    return ScanResult(frames, pos, problem)


def _damaged_not_torn(
    data: bytes, mv: memoryview, pos: int, base_offset: int
) -> FrameProblem | None:
    """The frame at ``pos`` runs past the end of the data. RedDB appends a frame with a single
    write, so while a frame is being written nothing follows it: a complete frame after it
    (its CRC good, or a v1 frame holding a JSON object) means its length field is damaged,
    not that it is still being written. None when nothing valid follows: a torn tail."""
    end = len(data)
    at = data.find(MAGIC, pos + 1)
    while at != -1:
        if _valid_frame_at(mv, at, end - at):
            declared = _declared_length(mv, pos, end - pos)
            return FrameProblem(
                base_offset + pos,
                f"{declared} runs past the end of the spool, but a complete frame follows at "
                f"byte offset {base_offset + at}",
                False,
            )
        at = data.find(MAGIC, at + 1)
    return None


def _valid_frame_at(mv: memoryview, pos: int, remaining: int) -> bool:
    if remaining < 5:
        return False
    outcome = _read_frame_carefully(mv, pos, remaining, 0)
    if not isinstance(outcome, Frame):
        return False
    if outcome.layout != "v1":
        return True
    payload = outcome.payload  # v1 has no CRC: only a JSON object counts
    return payload[:1] == b"{" and payload[-1:] == b"}"


def _declared_length(mv: memoryview, pos: int, remaining: int) -> str:
    """What the header at ``pos`` says of its payload length, as far as it is there."""
    version = mv[pos + 4] if remaining > 4 else None
    if version == 1 and remaining >= V1_HEADER:
        return f"payload length {_V1.unpack_from(mv, pos + 5)[1]}"
    if version == 2 and remaining >= V2_HEADER:
        return f"payload length {_CRC.unpack_from(mv, pos + V2_HEADER - 4)[0]}"
    if version == 3:
        sizes = [
            f"{_CRC.unpack_from(mv, pos + header - 4)[0]} ({layout})"
            for layout, header in (("v3-41", V3_41_HEADER), ("v3-33", V3_33_HEADER))
            if remaining >= header
        ]
        if sizes:
            return "payload length " + " / ".join(sizes)
    return "a frame header"


def _read_frame_carefully(
    mv: memoryview, pos: int, remaining: int, base_offset: int
) -> Frame | FrameProblem | None:
    """One frame of any layout: the Frame, a FrameProblem, or None for a torn tail."""
    offset = base_offset + pos
    version = mv[pos + 4]
    if version == 1:
        if remaining < V1_HEADER:
            return None
        lsn, size = _V1.unpack_from(mv, pos + 5)
        if size > MAX_PAYLOAD:
            return FrameProblem(offset, f"payload length {size} exceeds 256 MiB", False)
        total = V1_HEADER + size
        if total > remaining:
            return None
        payload = bytes(mv[pos + V1_HEADER : pos + total])
        return Frame("v1", lsn, 0, 0, 0, payload, offset, total)
    if version == 2:
        return _checked(mv, pos, remaining, offset, (("v2", V2_HEADER),))
    if version == 3:
        return _checked(
            mv, pos, remaining, offset, (("v3-41", V3_41_HEADER), ("v3-33", V3_33_HEADER))
        )
    return FrameProblem(offset, f"unknown frame version {version}", False)


def _checked(
    mv: memoryview, pos: int, remaining: int, offset: int, layouts: tuple[tuple[str, int], ...]
) -> Frame | FrameProblem | None:
    incomplete = False
    mismatch_at_tail = False
    reasons = []
    for layout, header in layouts:
        if remaining < header:
            incomplete = True
            continue
        size = _CRC.unpack_from(mv, pos + header - 4)[0]
        if size > MAX_PAYLOAD:
            reasons.append(f"payload length {size} exceeds 256 MiB")
            continue
        total = header + size + 4
        if total > remaining:
            incomplete = True
            continue
        body_end = pos + header + size
        if zlib.crc32(mv[pos + 4 : body_end]) == _CRC.unpack_from(mv, body_end)[0]:
            return _frame(layout, mv, pos, header, size, offset, total)
        reasons.append("CRC mismatch")
        mismatch_at_tail = mismatch_at_tail or total == remaining
    if incomplete:
        # Some reading of the header still needs more bytes: a torn tail, not corruption yet.
        return None
    reason = " / ".join(dict.fromkeys(reasons))
    if mismatch_at_tail:
        return FrameProblem(offset, f"{reason} at the tail (frame may still be written)", True)
    return FrameProblem(offset, reason, False)


def _frame(
    layout: str, mv: memoryview, pos: int, header: int, size: int, offset: int, total: int
) -> Frame:
    payload = bytes(mv[pos + header : pos + header + size])
    if layout == "v2":
        lsn, ts, _ = _V2.unpack_from(mv, pos + 5)
        return Frame("v2", lsn, ts, 0, 0, payload, offset, total)
    if layout == "v3-33":
        term, lsn, ts, _ = _V3_33.unpack_from(mv, pos + 5)
        return Frame("v3-33", lsn, ts, term, 0, payload, offset, total)
    term, epoch, lsn, ts, _ = _V3_41.unpack_from(mv, pos + 5)
    return Frame("v3-41", lsn, ts, term, epoch, payload, offset, total)


# Frame is frozen; building it through its slot descriptors skips the frozen __init__'s
# per-field object.__setattr__ calls, which dominate the cost of reading a frame.
_FRAME_SETTERS = tuple(
    Frame.__dict__[name].__set__
    for name in (
        "layout",
        "lsn",
        "timestamp_ms",
        "term",
        "ownership_epoch",
        "payload",
        "offset",
        "size",
    )
)


if speedups.core is not None:
    speedups.core.setup_frames(Frame, MAX_PAYLOAD)
