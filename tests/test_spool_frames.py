import json
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgshim.spool.frames import LAYOUTS, MAX_PAYLOAD, Frame, build_frame, scan_frames

GOLDEN = json.loads((Path(__file__).parent / "data" / "reddb-golden-vectors.json").read_text())


def golden_frames() -> list[dict]:
    return GOLDEN["frames"]


def layout_of(vector: dict) -> str:
    if vector["version"] in (1, 2):
        return f"v{vector['version']}"
    return "v3-33" if "33" in vector["name"] else "v3-41"


def test_every_golden_frame_parses_and_rebuilds_byte_identically() -> None:
    for vector in golden_frames():
        raw = bytes.fromhex(vector["frame_hex"])
        result = scan_frames(raw)
        assert result.problem is None, vector["name"]
        assert result.consumed == len(raw) == vector["frame_len"]
        (frame,) = result.frames
        assert frame.layout == layout_of(vector)
        assert frame.lsn == vector["lsn"]
        assert frame.timestamp_ms == vector.get("timestamp_ms", 0)
        assert frame.term == vector.get("term", 0)
        assert frame.ownership_epoch == vector.get("ownership_epoch", 0)
        payload = vector.get("payload_hex")
        expected = bytes.fromhex(payload) if payload else vector["payload_json"].encode()
        assert frame.payload == expected
        rebuilt = build_frame(
            frame.layout,
            frame.lsn,
            frame.payload,
            timestamp_ms=frame.timestamp_ms,
            term=frame.term,
            ownership_epoch=frame.ownership_epoch,
        )
        assert rebuilt == raw, vector["name"]


def test_golden_frames_concatenated_are_read_in_order_with_offsets() -> None:
    raws = [bytes.fromhex(v["frame_hex"]) for v in golden_frames()]
    result = scan_frames(b"".join(raws), base_offset=1000)
    assert result.problem is None
    offsets = [1000 + sum(len(r) for r in raws[:i]) for i in range(len(raws))]
    assert [f.offset for f in result.frames] == offsets
    assert [f.size for f in result.frames] == [len(r) for r in raws]


frame_args = st.tuples(
    st.sampled_from(LAYOUTS),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=300),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
)


@given(st.lists(frame_args, min_size=1, max_size=8))
def test_build_then_scan_round_trips_every_layout(specs: list) -> None:
    raws = [
        build_frame(layout, lsn, payload, timestamp_ms=ts, term=term, ownership_epoch=epoch)
        for layout, lsn, payload, ts, term, epoch in specs
    ]
    result = scan_frames(b"".join(raws))
    assert result.problem is None
    assert result.consumed == sum(map(len, raws))
    for frame, (layout, lsn, payload, ts, term, epoch) in zip(result.frames, specs, strict=True):
        assert frame.layout == layout
        assert frame.lsn == lsn
        assert frame.payload == payload
        assert frame.timestamp_ms == (0 if layout == "v1" else ts)
        assert frame.term == (term if layout.startswith("v3") else 0)
        assert frame.ownership_epoch == (epoch if layout == "v3-41" else 0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_torn_tail_at_every_byte_is_not_yet_written(layout: str) -> None:
    first = build_frame(layout, 1, b'{"a":1}', timestamp_ms=5, term=2)
    second = build_frame(layout, 2, b'{"operation":"insert"}', timestamp_ms=6, term=2)
    for cut in range(len(second)):
        result = scan_frames(first + second[:cut])
        assert result.problem is None, cut
        assert [f.lsn for f in result.frames] == [1]
        assert result.consumed == len(first)
    assert [f.lsn for f in scan_frames(first + second).frames] == [1, 2]


@pytest.mark.parametrize("layout", ["v2", "v3-33", "v3-41"])
def test_flipped_byte_is_reported_with_its_offset(layout: str) -> None:
    frames = [build_frame(layout, i, b"payload-%d" % i, timestamp_ms=i) for i in range(3)]
    raw = bytearray(b"".join(frames))
    bad_offset = len(frames[0])
    for position in range(bad_offset + 4, bad_offset + len(frames[1])):
        corrupted = bytearray(raw)
        corrupted[position] ^= 0x40
        result = scan_frames(bytes(corrupted))
        assert [f.lsn for f in result.frames] == [0], position
        assert result.consumed == bad_offset
        if result.problem is None:
            continue  # a corrupted length can make the frame look longer than the file: torn
        assert result.problem.offset == bad_offset
        assert result.problem.reason


def test_crc_mismatch_with_bytes_after_it_is_corruption_not_tail() -> None:
    frames = [build_frame("v3-41", i, b"x" * 10) for i in range(3)]
    raw = bytearray(b"".join(frames))
    raw[len(frames[0]) + len(frames[1]) - 1] ^= 1  # the CRC of the second frame
    result = scan_frames(bytes(raw))
    assert result.problem is not None
    assert result.problem.offset == len(frames[0])
    assert "CRC mismatch" in result.problem.reason
    assert not result.problem.at_tail


def test_crc_mismatch_of_the_last_frame_is_reported_as_at_tail() -> None:
    raw = bytearray(build_frame("v2", 1, b"abc"))
    raw[-1] ^= 1
    result = scan_frames(bytes(raw))
    assert result.problem is not None and result.problem.at_tail
    assert result.problem.offset == 0


def test_bad_magic_and_unknown_version_are_reported() -> None:
    good = build_frame("v2", 1, b"abc")
    result = scan_frames(good + b"XXXX" + good[4:])
    assert result.problem is not None
    assert (result.problem.offset, result.problem.reason) == (len(good), "bad magic")
    bad_version = bytearray(good)
    bad_version[4] = 9
    result = scan_frames(good + bytes(bad_version))
    assert result.problem is not None
    assert result.problem.offset == len(good)
    assert "unknown frame version 9" in result.problem.reason


@pytest.mark.parametrize("layout", LAYOUTS)
def test_payload_over_256_mib_is_corruption(layout: str) -> None:
    header = bytearray(build_frame(layout, 7, b"", timestamp_ms=1))
    length_at = {"v1": 13, "v2": 21, "v3-33": 29, "v3-41": 37}[layout]
    width = 8 if layout == "v1" else 4
    header[length_at : length_at + width] = (MAX_PAYLOAD + 1).to_bytes(width, "little")
    result = scan_frames(bytes(header) + b"\0" * 64)
    assert result.frames == []
    assert result.problem is not None
    assert "256 MiB" in result.problem.reason


def test_payload_of_exactly_256_mib_is_plausible_and_waits_for_bytes() -> None:
    header = build_frame("v2", 1, b"")[:21] + struct.pack("<I", MAX_PAYLOAD)
    result = scan_frames(header + b"\0" * 100)
    assert result.problem is None and result.frames == []


def test_v3_layout_is_chosen_by_crc_when_both_headers_are_plausible() -> None:
    for layout in ("v3-33", "v3-41"):
        raw = build_frame(layout, 42, b"payload", timestamp_ms=99, term=7)
        (frame,) = scan_frames(raw).frames
        assert frame == Frame(layout, 42, 99, 7, 0, b"payload", 0, len(raw))


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError):
        build_frame("v4", 1, b"")
