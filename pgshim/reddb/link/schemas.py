"""Column names and types for positional rows, from RedDB's ``GET /collections/{name}/schema``.

Positional rows carry no column names; the collection contract's ``declared_columns`` (each with
``name`` and ``data_type``) is the practical source. Replies are cached in the state database
(table ``schemas``, the raw declared columns as JSON) so a restart does not need RedDB's HTTP
endpoint; ``refresh=True`` re-reads a contract after it changed.

RedDB data types map to PostgreSQL types as follows (case, spaces, underscores and a
``(precision)`` suffix are ignored; ``T[]`` maps to the array of ``T``'s type where PostgreSQL has
one, otherwise to jsonb; anything unknown is text):

=======================================================  ===============================
RedDB data_type                                           PostgreSQL type
=======================================================  ===============================
Boolean, Bool                                             boolean
Integer, Int, Int64, BigInt                               bigint
Int32                                                     integer
SmallInt, Int16, EnumValue, Enum                          smallint
UnsignedInteger, UInt, UInt64                             numeric
Float, Double, Float64, Double Precision, Real*           double precision (*Real, Float32: real)
Decimal, Numeric, Money, DecimalText                      numeric
Text, String, Varchar, Char, Email, Url, Phone, Semver,   text
Color, ColorAlpha, NodeRef, EdgeRef, VectorRef, RowRef,
KeyRef, DocRef, TableRef, Password, AssetCode
Blob, Bytes, Bytea, Binary, Secret                        bytea
Timestamp, TimestampMs, DateTime, TimestampTz             timestamp with time zone
Date                                                      date
Time                                                      time without time zone
Duration, Interval                                        interval
IpAddr, Ip, Ipv4, Ipv6, Inet                              inet
Cidr, Subnet                                              cidr
MacAddr, Mac                                              macaddr
Uuid                                                      uuid
Json, Jsonb, Document, Array                              jsonb
Vector                                                    real[]
Port                                                      integer
Latitude, Longitude                                       double precision
GeoPoint, Point                                           point
Country2, Country3, Lang2, Currency                       character
Lang5                                                     character varying
PageRef                                                   bigint
=======================================================  ===============================
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schemas (
    collection TEXT PRIMARY KEY,
    declared_columns TEXT NOT NULL,
    fetched_at REAL NOT NULL
)
"""

_TEXT = "text"
_PG_TYPE_BY_REDDB: dict[str, str] = {}
for _pg, _names in {
    "boolean": "boolean bool",
    "bigint": "integer int int64 bigint i64 long pageref",
    "integer": "int32 i32 port",
    "smallint": "smallint int16 i16 enumvalue enum",
    "numeric": "unsignedinteger uint uint64 u64 decimal numeric money decimaltext",
    "double precision": "float double float64 f64 doubleprecision latitude longitude",
    "real": "real float32 f32",
    _TEXT: (
        "text string str varchar char email url phone semver color coloralpha noderef edgeref"
        " vectorref rowref keyref docref tableref password assetcode"
    ),
    "bytea": "blob bytes bytea binary secret",
    "timestamp with time zone": "timestamp timestampms datetime timestamptz",
    "date": "date",
    "time without time zone": "time",
    "interval": "duration interval",
    "inet": "ipaddr ip ipv4 ipv6 inet",
    "cidr": "cidr subnet",
    "macaddr": "macaddr mac",
    "uuid": "uuid",
    "jsonb": "json jsonb document array object",
    "real[]": "vector",
    "point": "geopoint point",
    "character": "country2 country3 lang2 currency",
    "character varying": "lang5",
}.items():
    for _name in _names.split():
        _PG_TYPE_BY_REDDB[_name] = _pg
# PostgreSQL has arrays of these element types among the ones above
_ARRAY_TYPES = {
    "boolean": "boolean[]",
    "bigint": "bigint[]",
    "integer": "integer[]",
    "smallint": "smallint[]",
    "numeric": "numeric[]",
    "double precision": "double precision[]",
    "real": "real[]",
    _TEXT: "text[]",
    "bytea": "bytea[]",
    "timestamp with time zone": "timestamp with time zone[]",
    "date": "date[]",
    "uuid": "uuid[]",
    "jsonb": "jsonb[]",
    "inet": "inet[]",
}
_NORMALISE = re.compile(r"[\s_\-]+")
_PRECISION = re.compile(r"\(.*\)\s*$")


def pg_type_for(reddb_type: str) -> str:
    """The PostgreSQL type (as ``format_type`` prints it) for a declared RedDB data type."""
    name = _PRECISION.sub("", reddb_type.strip())
    if name.endswith("[]"):
        element = pg_type_for(name[:-2])
        return _ARRAY_TYPES.get(element, "jsonb")
    for wrapper in ("array<", "vec<", "list<"):
        if name.lower().startswith(wrapper) and name.endswith(">"):
            return pg_type_for(name[len(wrapper) : -1] + "[]")
    return _PG_TYPE_BY_REDDB.get(_NORMALISE.sub("", name).lower(), _TEXT)


class SchemaError(ValueError):
    """A schema reply that does not hold a usable declared_columns list."""


def declared_columns_of(reply: Any) -> list[dict[str, Any]] | None:
    """The ``declared_columns`` list in a schema reply (top level or inside the contract)."""
    if not isinstance(reply, dict):
        raise SchemaError("schema reply is not a JSON object")
    for holder in (reply, reply.get("contract"), reply.get("schema"), reply.get("result")):
        if isinstance(holder, dict) and "declared_columns" in holder:
            columns = holder["declared_columns"]
            if columns is None:
                return None
            if not isinstance(columns, list):
                raise SchemaError("declared_columns is not an array")
            for column in columns:
                if not (
                    isinstance(column, dict)
                    and isinstance(column.get("name"), str)
                    and isinstance(column.get("data_type", ""), str)
                ):
                    raise SchemaError(f"bad declared column {column!r:.200}")
            return columns
    return None


class SchemaFetcher:
    def __init__(
        self,
        base_url: str,
        conn: sqlite3.Connection,
        *,
        token: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.conn = conn
        self.token = token
        self.timeout = timeout
        self.last_error: str | None = None
        self._missing: set[str] = set()  # collections RedDB has no schema for (this run)
        conn.execute(_SCHEMA)

    def declared_columns(
        self, collection: str, *, refresh: bool = False
    ) -> list[tuple[str, str]] | None:
        """(column name, PostgreSQL type) in declared order, or None when RedDB declares none."""
        raw = None if refresh else self._cached(collection)
        if raw is None:
            if collection in self._missing and not refresh:
                return None
            raw = self._fetch(collection)
            if raw is None:
                return self._fallback(collection)
        if not raw:
            return None
        return [(column["name"], pg_type_for(column.get("data_type") or "")) for column in raw]

    def forget(self, collection: str) -> None:
        self.conn.execute("DELETE FROM schemas WHERE collection = ?", (collection,))
        self._commit()
        self._missing.discard(collection)

    def url_for(self, collection: str) -> str:
        return f"{self.base_url}/collections/{quote(collection, safe='')}/schema"

    def _cached(self, collection: str) -> list[dict[str, Any]] | None:
        row = self.conn.execute(
            "SELECT declared_columns FROM schemas WHERE collection = ?", (collection,)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def _fallback(self, collection: str) -> list[tuple[str, str]] | None:
        raw = self._cached(collection)  # a failed refresh keeps what was known
        if not raw:
            return None
        return [(column["name"], pg_type_for(column.get("data_type") or "")) for column in raw]

    def _fetch(self, collection: str) -> list[dict[str, Any]] | None:
        request = urllib.request.Request(self.url_for(collection), headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
            columns = declared_columns_of(json.loads(body))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                self._missing.add(collection)
                self.last_error = None
                return None
            return self._failed(collection, f"HTTP {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError) as exc:
            return self._failed(collection, str(getattr(exc, "reason", exc)))
        except (ValueError, SchemaError) as exc:
            return self._failed(collection, f"bad schema reply: {exc}")
        if columns is None:
            self._missing.add(collection)
            return None
        self.conn.execute(
            "INSERT OR REPLACE INTO schemas (collection, declared_columns, fetched_at)"
            " VALUES (?, ?, ?)",
            (collection, json.dumps(columns, sort_keys=True), time.time()),
        )
        self._commit()
        self._missing.discard(collection)
        self.last_error = None
        return columns

    def _failed(self, collection: str, error: str) -> None:
        self.last_error = f"{self.url_for(collection)}: {error}"
        log.warning("RedDB schema for %s unavailable: %s", collection, self.last_error)
        return None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.commit()
