import sqlite3

import pytest

from pgshim.errors import PgError
from pgshim.logical.publications import PublicationStore
from pgshim.logical.transactions import Column, Relation

USERS = Relation(16384, "public", "users", [Column("rid", 20, is_key=True), Column("name", 25)])
ORDERS = Relation(16385, "public", "orders", [Column("rid", 20, is_key=True)])


def test_create_alter_drop_and_persist() -> None:
    conn = sqlite3.connect(":memory:")
    store = PublicationStore(conn)
    store.create("p", tables=["users"], publish="insert, delete")
    pub_filter = store.resolve(["p"])
    assert pub_filter.includes(USERS, "I") and pub_filter.includes(USERS, "D")
    assert not pub_filter.includes(USERS, "U") and not pub_filter.includes(ORDERS, "I")

    store.alter("p", add_tables=["public.orders"], publish="update")
    reopened = PublicationStore(conn)
    assert reopened.resolve(["p"]).includes(ORDERS, "U")
    assert not reopened.resolve(["p"]).includes(ORDERS, "I")
    assert reopened.publication_rows() == [("p", False, False, True, False, False)]
    assert reopened.publication_table_rows([USERS, ORDERS]) == [
        ("p", "public", "users", ["rid", "name"], None),
        ("p", "public", "orders", ["rid"], None),
    ]
    store.drop("p")
    with pytest.raises(PgError) as error:
        store.resolve(["p"])
    assert (error.value.sqlstate, error.value.message) == (
        "42704",
        'publication "p" does not exist',
    )
    store.drop("p", if_exists=True)


def test_default_publication_and_errors() -> None:
    store = PublicationStore(sqlite3.connect(":memory:"), default_publication="pgshim")
    assert store.resolve(["pgshim"]).includes(ORDERS, "T")
    with pytest.raises(PgError) as duplicate:
        store.create("pgshim")
    assert duplicate.value.sqlstate == "42710"
    with pytest.raises(PgError) as all_tables:
        store.alter("pgshim", add_tables=["users"])
    assert all_tables.value.sqlstate == "55000"
    with pytest.raises(PgError) as bad_publish:
        store.create("x", publish="insert, upsert")
    assert bad_publish.value.sqlstate == "22023"


def test_tables_in_schema_cover_later_tables_and_ignore_named_filters() -> None:
    from pgshim.logical.publications import TableOptions

    conn = sqlite3.connect(":memory:")
    store = PublicationStore(conn)
    store.create("p", schemas=["public"], tables=[("public.users", TableOptions(None, "rid > 1"))])
    later = Relation(16390, "public", "later", [Column("rid", 20, is_key=True)])
    elsewhere = Relation(16391, "other", "later", [Column("rid", 20, is_key=True)])
    pub_filter = PublicationStore(conn).resolve(["p"])  # kept across a restart
    assert pub_filter.includes(later, "I") and not pub_filter.includes(elsewhere, "I")
    # PostgreSQL 15 ignores a named table's row filter where its schema is published
    assert pub_filter.row_filters(USERS, "U") is None
    assert [row[2] for row in store.publication_table_rows([USERS, later, elsewhere])] == [
        "users", "later",
    ]  # fmt: skip
    with pytest.raises(PgError) as again:
        store.alter("p", add_schemas=["public"])
    assert (again.value.sqlstate, again.value.message) == (
        "42710", 'schema "public" is already member of publication "p"',
    )  # fmt: skip
    store.alter("p", drop_schemas=["public"])
    assert not store.resolve(["p"]).includes(later, "I")
    assert store.resolve(["p"]).row_filters(USERS, "U") == ["rid > 1"]
    with pytest.raises(PgError) as missing:
        store.alter("p", drop_schemas=["public"])
    assert missing.value.sqlstate == "42704"
