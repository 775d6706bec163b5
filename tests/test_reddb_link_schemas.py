"""SchemaFetcher against an in-test HTTP server serving RedDB's documented
``GET /collections/{name}/schema`` (declared_columns); RedDB itself cannot run here."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from fake_reddb import SchemaServer

from pgshim import pgtypes
from pgshim.reddb.link.schemas import SchemaFetcher, pg_type_for

USERS = {
    "ok": True,
    "contract": {
        "name": "users",
        "declared_columns": [
            {"name": "id", "data_type": "Integer", "not_null": True, "default": None},
            {"name": "name", "data_type": "Text", "not_null": False, "default": None},
            {"name": "price", "data_type": "DECIMAL(10,2)", "decimal_precision": 2},
            {"name": "tags", "data_type": "TEXT[]"},
            {"name": "seen", "data_type": "timestamp_ms"},
        ],
    },
}


@pytest.fixture
def http() -> Iterator[SchemaServer]:
    server = SchemaServer()
    yield server
    server.stop()


def test_in_test_server_declared_columns_are_fetched_and_cached(
    http: SchemaServer, tmp_path: Any
) -> None:
    http.contracts["/collections/users/schema"] = USERS
    conn = sqlite3.connect(tmp_path / "state.db")
    fetcher = SchemaFetcher(http.url + "/", conn, token="rk_secret")
    expected = [
        ("id", "bigint"), ("name", "text"), ("price", "numeric"), ("tags", "text[]"),
        ("seen", "timestamp with time zone"),
    ]  # fmt: skip
    assert fetcher.declared_columns("users") == expected
    assert http.requests == [("/collections/users/schema", "Bearer rk_secret")]
    http.stop()  # the cache answers from now on, also in a new fetcher on the same state
    assert fetcher.declared_columns("users") == expected
    assert (
        SchemaFetcher(http.url, sqlite3.connect(tmp_path / "state.db")).declared_columns("users")
        == expected
    )
    assert len(http.requests) == 1


def test_in_test_server_refresh_rereads_and_failure_keeps_the_cache(
    http: SchemaServer,
) -> None:
    http.contracts["/collections/users/schema"] = USERS
    fetcher = SchemaFetcher(http.url, sqlite3.connect(":memory:"))
    fetcher.declared_columns("users")
    http.contracts["/collections/users/schema"] = {
        "declared_columns": [{"name": "id", "data_type": "Uuid"}]
    }
    assert fetcher.declared_columns("users", refresh=True) == [("id", "uuid")]
    http.contracts["/collections/users/schema"] = 500
    assert fetcher.declared_columns("users", refresh=True) == [("id", "uuid")]
    assert "HTTP 500" in (fetcher.last_error or "")


def test_in_test_server_unknown_collection_is_none(http: SchemaServer) -> None:
    fetcher = SchemaFetcher(http.url, sqlite3.connect(":memory:"))
    assert fetcher.declared_columns("a b/c") is None
    assert fetcher.declared_columns("a b/c") is None  # remembered: asked once
    assert http.requests == [("/collections/a%20b%2Fc/schema", None)]
    assert fetcher.last_error is None


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"declared_columns": {}}', b'{"declared_columns": [{"name": 1}]}'],
)
def test_in_test_server_bad_reply_is_an_error_not_a_schema(http: SchemaServer, body: bytes) -> None:
    http.contracts["/collections/users/schema"] = body
    fetcher = SchemaFetcher(http.url, sqlite3.connect(":memory:"))
    assert fetcher.declared_columns("users") is None
    assert "bad schema reply" in (fetcher.last_error or "")


def test_unreachable_http_endpoint_is_reported() -> None:
    fetcher = SchemaFetcher("http://127.0.0.1:1", sqlite3.connect(":memory:"), timeout=2)
    assert fetcher.declared_columns("users") is None
    assert fetcher.last_error is not None


@pytest.mark.parametrize(
    ("reddb_type", "pg_type"),
    [("Boolean", "boolean"), ("UnsignedInteger", "numeric"), ("unsigned_integer", "numeric"),
     ("Float", "double precision"), ("Blob", "bytea"), ("Duration", "interval"),
     ("IpAddr", "inet"), ("Cidr", "cidr"), ("MacAddr", "macaddr"), ("Vector", "real[]"),
     ("Json", "jsonb"), ("Date", "date"), ("Time", "time without time zone"),
     ("VARCHAR(255)", "text"), ("Country2", "character"), ("Lang5", "character varying"),
     ("Port", "integer"), ("EnumValue", "smallint"), ("GeoPoint", "point"),
     ("Array<Integer>", "bigint[]"), ("Email[]", "text[]"), ("Point[]", "jsonb"),
     ("SomethingNew", "text")],
)  # fmt: skip
def test_reddb_types_map_to_postgresql_types(reddb_type: str, pg_type: str) -> None:
    assert pg_type_for(reddb_type) == pg_type
    pgtypes.lookup(pg_type)  # every mapped name is a type pgshim knows


def test_every_mapping_target_is_a_known_postgresql_type() -> None:
    from pgshim.reddb.link import schemas

    targets = set(schemas._PG_TYPE_BY_REDDB.values()) | set(schemas._ARRAY_TYPES.values())
    for name in targets:
        assert pgtypes.lookup(name).sql_name == name
