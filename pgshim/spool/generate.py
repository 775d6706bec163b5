"""A realistic, deterministic RedDB workload written as a spool (demo, tests, benchmarks).

Several collections get inserts, updates and deletes like RedDB emits them: an update installs a
new physical id and keeps the logical id (xmin = the writer's xid), a delete carries only the
physical id of the current version. Batches insert positional rows sharing one xid; some LSNs
are skipped (as KV watch events do) and some adjacent records are appended out of order.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from pgshim.reddb.entity import Entity, Field, encode_entity
from pgshim.reddb.values import TypedValue, array_json, value_type
from pgshim.spool.writer import SpoolWriter

START_MS = 1_700_000_000_000

# Column name → value type byte, per collection.
USERS = {
    "id": 2,
    "name": 5,
    "email": 19,
    "active": 1,
    "signed_up": 7,
    "balance": 51,
    "profile": 12,
    "tags": 28,
    "country": 37,
    "last_ip": 9,
    "homepage": 20,
    "phone": 21,
}
ORDERS = {  # positional rows: the declared column order
    "order_id": 2,
    "user_id": 2,
    "amount": 26,
    "currency": 41,
    "placed_at": 29,
    "status": 27,
    "note": 5,
    "ref": 13,
}
SENSORS = {
    "sensor_id": 2,
    "reading": 4,
    "location": 36,
    "lat": 34,
    "lon": 35,
    "mac": 10,
    "ip": 30,
    "measured_at": 29,
    "samples": 11,
    "firmware": 22,
    "raw": 6,
}
EVENTS = {
    "event_id": 43,
    "took": 8,
    "day": 24,
    "at": 25,
    "peer": 31,
    "network": 23,
    "subnet": 32,
    "port": 33,
    "color": 18,
    "overlay": 42,
    "lang": 39,
    "locale": 40,
    "country3": 38,
    "counter": 3,
    "secret": 48,
    "password": 49,
    "asset": 50,
    "key": 44,
    "doc": 45,
    "table_ref": 46,
    "page": 47,
    "node": 14,
    "edge": 15,
    "vector_ref": 16,
    "row_ref": 17,
    "exact": 52,
    "nothing": 0,
}
COLLECTIONS: dict[str, dict[str, int]] = {
    "users": USERS,
    "orders": ORDERS,
    "sensors": SENSORS,
    "events": EVENTS,
}
POSITIONAL = frozenset({"orders"})
REFRESHED_VIEW = "mv_order_totals"

_WORDS = ["alpha", "bravo", "café", "delta", "echo", "ñandú", "golf", "hotel", "índigo", "juliet"]


def sample_value(code: int, rng: random.Random) -> TypedValue:
    """A plausible value of RedDB type ``code`` (drawn from ``rng``)."""
    oid = value_type(code).oid
    native: object = None
    value: object
    if code == 0:
        value = None
    elif code == 1:
        value = rng.random() < 0.5
    elif code in (2, 43):
        value = rng.randint(-(10**12), 10**12)
    elif code == 3:
        value = Decimal(rng.randint(0, 2**64 - 1))
    elif code == 4:
        value = round(rng.uniform(-1000, 1000), 3)
    elif code == 5:
        value = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 6)))
        if rng.random() < 0.01:  # long enough to be zstd-compressed (0x85)
            value = (value + " ") * 400
    elif code in (6, 48):
        value = rng.randbytes(rng.randint(0, 24))
    elif code == 7:
        value = dt.datetime.fromtimestamp(rng.randint(1_500_000_000, 1_800_000_000), dt.UTC)
    elif code == 8:
        value = dt.timedelta(milliseconds=rng.randint(0, 10**9))
    elif code == 9:
        value = ipaddress.ip_interface(ipaddress.IPv4Address(rng.getrandbits(32)))
    elif code == 10:
        value = ":".join(f"{b:02x}" for b in rng.randbytes(6))
    elif code == 11:
        value = [float(rng.randint(-1000, 1000)) / 8 for _ in range(rng.randint(1, 8))]
    elif code == 12:
        value = f'{{"plan":"{rng.choice(["free", "pro", "team"])}","seats":{rng.randint(1, 50)}}}'
    elif code == 13:
        value = uuid.UUID(int=rng.getrandbits(128))
    elif code in (14, 15, 46):
        value = f"{rng.choice(_WORDS)}-{rng.randint(1, 999)}"
    elif code in (16, 17, 45):
        native = (rng.choice(["users", "orders", "docs"]), rng.randint(1, 10**6))
        value = f"{native[0]}:{native[1]}"
    elif code == 18:
        value = "#" + rng.randbytes(3).hex().upper()
    elif code == 19:
        value = f"{rng.choice(['ana', 'bo', 'chen', 'dev'])}{rng.randint(1, 999)}@example.com"
    elif code == 20:
        value = f"https://example.com/{rng.choice(_WORDS)}"
    elif code == 21:
        value = f"+{rng.randint(10**9, 10**12)}"
    elif code == 22:
        value = f"{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}"
    elif code == 23:
        prefix = rng.randint(8, 32)
        network = ipaddress.IPv4Network((rng.getrandbits(32), prefix), strict=False)
        native = (int(network.network_address), prefix)
        value = network
    elif code == 24:
        value = dt.date(2020, 1, 1) + dt.timedelta(days=rng.randint(0, 3000))
    elif code == 25:
        millis = rng.randint(0, 86_399_999)
        value = dt.time(millis // 3_600_000, millis // 60_000 % 60, millis // 1000 % 60)
    elif code == 26:
        value = Decimal(rng.randint(0, 10**9)).scaleb(-4)
    elif code == 27:
        value = rng.randint(0, 4)
    elif code == 28:
        items = [sample_value(rng.choice([2, 5, 1, 4]), rng) for _ in range(rng.randint(0, 4))]
        native = tuple(items)
        value = array_json(items)
    elif code == 29:
        value = dt.datetime.fromtimestamp(
            rng.randint(1_500_000_000_000, 1_800_000_000_000) / 1000, dt.UTC
        )
    elif code == 30:
        value = ipaddress.IPv4Interface(rng.getrandbits(32))
    elif code == 31:
        value = ipaddress.IPv6Interface(rng.getrandbits(128))
    elif code == 32:
        prefix = rng.randint(8, 32)
        network = ipaddress.IPv4Network((rng.getrandbits(32), prefix), strict=False)
        native = (int(network.network_address), int(network.netmask))
        value = network
    elif code == 33:
        value = rng.randint(1, 65535)
    elif code in (34, 35):
        value = rng.randint(-90_000_000, 90_000_000) / 1e6
    elif code == 36:
        value = (
            rng.randint(-180_000_000, 180_000_000) / 1e6,
            rng.randint(-90_000_000, 90_000_000) / 1e6,
        )
    elif code in (37, 39):
        value = (
            rng.choice(["DE", "BR", "JP", "US", "PT"])
            if code == 37
            else rng.choice(["de", "pt", "ja"])
        )
    elif code == 38:
        value = rng.choice(["DEU", "BRA", "JPN"])
    elif code == 40:
        value = rng.choice(["pt-BR", "en-US", "ja-JP"])
    elif code == 41:
        value = rng.choice(["EUR", "USD", "BRL"])
    elif code == 42:
        value = "#" + rng.randbytes(4).hex().upper()
    elif code == 44:
        native = (rng.choice(["cache", "flags"]), f"key:{rng.randint(1, 99)}")
        value = f"{native[0]}:{native[1]}"
    elif code == 47:
        value = rng.randint(0, 2**32 - 1)
    elif code == 49:
        value = "$argon2id$v=19$m=65536,t=3,p=4$" + rng.randbytes(12).hex()
    elif code == 50:
        value = rng.choice(["BTC", "ETH", "XAU"])
    elif code == 51:
        native = (rng.choice(["USD", "EUR"]), 2, rng.randint(0, 10**7))
        value = Decimal(native[2]).scaleb(-2)
    elif code == 52:
        native = f"{rng.randint(0, 10**6)}.{rng.randint(0, 10**6):06d}"
        value = Decimal(native)
    else:
        raise ValueError(f"no sample for value type {code}")
    return TypedValue(code, oid, value, native)


@dataclass
class _Row:
    logical_id: int
    physical_id: int
    row_id: int
    values: dict[str, TypedValue]


@dataclass
class _State:
    next_entity_id: int = 1
    next_xid: int = 1
    next_row_id: dict[str, int] = field(default_factory=dict)
    live: dict[str, _LiveRows] = field(default_factory=dict)


class _LiveRows:
    """Rows not deleted yet; O(1) random pick and removal."""

    def __init__(self) -> None:
        self._rows: list[_Row] = []
        self._position: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[int]:  # logical ids
        return iter(self._position)

    def add(self, row: _Row) -> None:
        self._position[row.logical_id] = len(self._rows)
        self._rows.append(row)

    def pick(self, rng: random.Random) -> _Row:
        return self._rows[rng.randrange(len(self._rows))]

    def remove(self, row: _Row) -> None:
        index = self._position.pop(row.logical_id)
        last = self._rows.pop()
        if last is not row:
            self._rows[index] = last
            self._position[last.logical_id] = index


class Workload:
    """Deterministic ChangeRecords (as dicts) for a seed; ``version`` 2 omits the term key."""

    def __init__(self, *, seed: int = 0, version: int = 3, start_lsn: int = 1) -> None:
        self.rng = random.Random(seed)
        self.version = version
        self.lsn = start_lsn - 1
        self.clock_ms = START_MS
        self.state = _State()

    def records(self, count: int) -> Iterator[dict]:
        """``count`` records in spool order: LSN gaps and adjacent swaps included."""
        produced = 0
        held: dict | None = None
        while produced < count:
            for record in self._step():
                if produced >= count:
                    break
                if held is not None:
                    yield record
                    yield held
                    produced += 2
                    held = None
                elif produced + 2 <= count and self.rng.random() < 0.01:
                    held = record  # appended after the next one: an out-of-order pair
                else:
                    yield record
                    produced += 1
        if held is not None:
            yield held

    def _next_lsn(self) -> int:
        self.lsn += 2 if self.rng.random() < 0.02 else 1  # a skipped LSN (KV watch event)
        return self.lsn

    def _record(self, operation: str, collection: str, rid: int, entity: Entity | None) -> dict:
        self.clock_ms += self.rng.randint(0, 40)
        record: dict = {
            "collection": collection,
            "kind": "item" if operation == "refresh" else "row",
            "lsn": self._next_lsn(),
            "operation": operation,
            "rid": rid,
            "timestamp": self.clock_ms,
        }
        if entity is not None:
            record["entity_bytes_hex"] = encode_entity(entity).hex()
        if self.version >= 3:
            record["term"] = 1
        if operation != "delete" and self.rng.random() < 0.05:
            record["metadata"] = {"_expires_at": self.clock_ms + 3_600_000, "source": "api"}
        return record

    def _entity(self, collection: str, row: _Row, xid: int) -> Entity:
        seconds = self.clock_ms // 1000
        columns = COLLECTIONS[collection]
        if collection in POSITIONAL:
            fields = [Field(None, row.values[name]) for name in columns]
            data_kind = "row"
        else:
            fields = [Field(name, row.values[name]) for name in sorted(columns)]
            data_kind = "named_row"
        return Entity(
            id=row.physical_id,
            kind="table_row",
            kind_fields={"table": collection, "row_id": row.row_id},
            data_kind=data_kind,
            fields=fields,
            created_at=seconds,
            updated_at=seconds,
            logical_id=row.logical_id,
            xmin=xid,
            xmax=0,
        )

    def _new_row(self, collection: str) -> _Row:
        st = self.state
        physical = st.next_entity_id
        st.next_entity_id += 1
        row_id = st.next_row_id.get(collection, 1)
        st.next_row_id[collection] = row_id + 1
        values = {
            name: sample_value(code, self.rng) for name, code in COLLECTIONS[collection].items()
        }
        first = next(iter(COLLECTIONS[collection]))
        values[first] = TypedValue(values[first].type_code, values[first].type_oid, row_id)
        row = _Row(physical, physical, row_id, values)
        st.live.setdefault(collection, _LiveRows()).add(row)
        return row

    def _xid(self) -> int:
        xid = self.state.next_xid
        self.state.next_xid += 1
        return xid

    def _step(self) -> list[dict]:
        rng = self.rng
        roll = rng.random()
        collection = rng.choice(list(COLLECTIONS))
        live = self.state.live.setdefault(collection, _LiveRows())
        if roll < 0.002:
            return [self._refresh()]
        if roll < 0.10 and collection == "orders":
            xid = self._xid()  # a multi-row INSERT: positional rows sharing one xid
            rows = [self._new_row(collection) for _ in range(rng.randint(2, 6))]
            return [
                self._record("insert", collection, r.physical_id, self._entity(collection, r, xid))
                for r in rows
            ]
        if roll < 0.55 or len(live) < 3:
            row = self._new_row(collection)
            entity = self._entity(collection, row, self._xid())
            return [self._record("insert", collection, row.physical_id, entity)]
        row = live.pick(rng)
        if roll < 0.85:
            name = rng.choice(list(COLLECTIONS[collection])[1:])
            row.values[name] = sample_value(COLLECTIONS[collection][name], rng)
            row.physical_id = self.state.next_entity_id  # an UPDATE installs a new version
            self.state.next_entity_id += 1
            entity = self._entity(collection, row, self._xid())
            return [self._record("update", collection, row.physical_id, entity)]
        live.remove(row)
        return [self._record("delete", collection, row.physical_id, None)]

    def _refresh(self) -> dict:
        record = self._record("refresh", REFRESHED_VIEW, 0, None)
        rows = []
        for i, user_id in enumerate(sorted(self.state.live.get("users", ()))[:5], start=1):
            total = TypedValue(26, 1700, Decimal(self.rng.randint(0, 10**8)).scaleb(-4))
            entity = Entity(
                id=10_000_000 + i,
                kind="table_row",
                kind_fields={"table": REFRESHED_VIEW, "row_id": i},
                data_kind="named_row",
                fields=[Field("total", total), Field("user_id", TypedValue(2, 20, user_id))],
                created_at=self.clock_ms // 1000,
                updated_at=self.clock_ms // 1000,
                logical_id=10_000_000 + i,
                xmin=0,
                xmax=0,
            )
            raw = encode_entity(entity)
            wrapped = b"RER1" + len(raw).to_bytes(4, "little") + raw + b"\x00\x00\x00\x00"
            rows.append(wrapped.hex())
        record["refresh_records_hex"] = rows
        return record


def write_workload(
    path: str,
    count: int,
    *,
    seed: int = 0,
    layout: str = "v3-41",
    rate: float | None = None,
    fsync: bool = False,
    start_lsn: int = 1,
) -> int:
    """Append ``count`` workload records to the spool at ``path``; ``rate`` is records/s."""
    version = 2 if layout in ("v1", "v2") else 3
    workload = Workload(seed=seed, version=version, start_lsn=start_lsn)
    started = time.monotonic()
    written = 0
    with SpoolWriter(path, layout=layout, fsync=fsync) as writer:
        for record in workload.records(count):
            writer.append_record(record, timestamp_ms=record["timestamp"] + 1)
            written += 1
            if rate:
                delay = started + written / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
    return written
