from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgshim.errors import PgError
from pgshim.wire import messages as msg
from pgshim.wire.buffer import ReceiveBuffer

LIMIT = 1 << 20


def _drain(buffer: ReceiveBuffer) -> list[tuple[bytes, bytes]]:
    out = []
    while (message := buffer.next_message(LIMIT)) is not None:
        out.append(message)
    return out


def test_split_message_waits_for_the_rest() -> None:
    data = msg.build_frontend(b"Q", sql="SELECT 1")
    buffer = ReceiveBuffer()
    buffer.feed(data[:3])
    assert buffer.next_message(LIMIT) is None
    buffer.feed(data[3:7])
    assert buffer.next_message(LIMIT) is None
    buffer.feed(data[7:])
    assert buffer.next_message(LIMIT) == (b"Q", b"SELECT 1\x00")
    assert len(buffer) == 0


def test_coalesced_messages_come_out_in_order() -> None:
    data = msg.build_frontend(b"Q", sql="a") + msg.build_frontend(b"S") + msg.build_frontend(b"X")
    buffer = ReceiveBuffer()
    buffer.feed(data)
    assert _drain(buffer) == [(b"Q", b"a\x00"), (b"S", b""), (b"X", b"")]


def test_oversized_and_short_lengths_are_rejected() -> None:
    buffer = ReceiveBuffer()
    buffer.feed(b"Q\x7f\xff\xff\xff")
    with pytest.raises(PgError) as err:
        buffer.next_message(LIMIT)
    assert err.value.sqlstate == "08P01"
    short = ReceiveBuffer()
    short.feed(b"Q\x00\x00\x00\x02")
    with pytest.raises(PgError):
        short.next_message(LIMIT)


def test_startup_packet_length_limits() -> None:
    buffer = ReceiveBuffer()
    buffer.feed((20000).to_bytes(4, "big"))
    with pytest.raises(PgError) as err:
        buffer.next_startup_packet(10000)
    assert err.value.message == "invalid length of startup packet"


messages = st.lists(
    st.tuples(st.sampled_from([b"Q", b"d", b"S", b"p"]), st.binary(max_size=300)), max_size=20
)


@given(messages, st.lists(st.integers(1, 97), min_size=1, max_size=30))
def test_any_chunking_yields_the_same_messages(
    items: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(tag + (len(body) + 4).to_bytes(4, "big") + body for tag, body in items)
    buffer = ReceiveBuffer()
    got: list[tuple[bytes, bytes]] = []
    position = 0
    index = 0
    while position < len(stream):
        size = cuts[index % len(cuts)]
        buffer.feed(stream[position : position + size])
        position += size
        index += 1
        got.extend(_drain(buffer))
    assert got == items


def test_compaction_keeps_unread_bytes() -> None:
    buffer = ReceiveBuffer()
    big = msg.build_frontend(b"d", data=b"x" * 70000)
    buffer.feed(big + big[:10])
    assert buffer.next_message(LIMIT) == (b"d", b"x" * 70000)
    buffer.feed(big[10:])  # triggers compaction of the consumed first message
    assert buffer.next_message(LIMIT) == (b"d", b"x" * 70000)
