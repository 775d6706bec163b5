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
