"""A small pgoutput decoder used by the tests to read what the plugin produced."""

from __future__ import annotations

import struct
from typing import Any


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> Any:
        values = struct.unpack_from(">" + fmt, self.data, self.pos)
        self.pos += struct.calcsize(">" + fmt)
        return values[0] if len(values) == 1 else values

    def byte(self) -> str:
        return chr(self.take("B"))

    def cstring(self) -> str:
        end = self.data.index(b"\x00", self.pos)
        text = self.data[self.pos : end].decode()
        self.pos = end + 1
        return text

    def tuple(self) -> list[tuple[str, bytes | None]]:
        columns = []
        for _ in range(self.take("h")):
            kind = self.byte()
            if kind in ("t", "b"):
                length = self.take("i")
                columns.append((kind, self.data[self.pos : self.pos + length]))
                self.pos += length
            else:
                columns.append((kind, None))
        return columns


def parse(payload: bytes) -> dict[str, Any]:
    reader = _Reader(payload)
    kind = reader.byte()
    message: dict[str, Any] = {"type": kind}
    if kind == "B":
        message.update(zip(("final_lsn", "commit_ts", "xid"), reader.take("QqI"), strict=True))
    elif kind == "C":
        message.update(
            zip(("flags", "commit_lsn", "end_lsn", "commit_ts"), reader.take("BQQq"), strict=True)
        )
    elif kind == "R":
        message["oid"] = reader.take("I")
        message["namespace"] = reader.cstring()
        message["name"] = reader.cstring()
        message["replident"] = reader.byte()
        message["columns"] = [
            (reader.take("B"), reader.cstring(), *reader.take("Ii"))
            for _ in range(reader.take("h"))
        ]
    elif kind in ("I", "U", "D"):
        message["relid"] = reader.take("I")
        while reader.pos < len(payload):
            tuple_kind = reader.byte()
            message[tuple_kind] = reader.tuple()
    elif kind == "T":
        count, message["options"] = reader.take("IB")
        message["relids"] = [reader.take("I") for _ in range(count)]
    else:
        raise ValueError(f"unknown pgoutput message {kind!r}")
    if reader.pos != len(payload):
        raise ValueError(f"{len(payload) - reader.pos} trailing bytes in {kind!r}")
    return message
