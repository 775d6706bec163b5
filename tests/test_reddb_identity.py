import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pgshim.reddb.identity import IdentityMap


def test_learn_resolve_and_fallback(tmp_path: Path) -> None:
    identity = IdentityMap(sqlite3.connect(tmp_path / "state.db"))
    identity.learn("users", 10, 5)
    identity.learn("users", 11, 5)  # an update: new physical id, same logical id
    assert identity.resolve("users", 10) == 5
    assert identity.resolve("users", 11) == 5
    assert identity.resolve("orders", 10) == 10  # another collection
    assert identity.resolve("users", 99) == 99  # unknown: the physical id


def test_mappings_survive_a_restart_only_after_flush(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = IdentityMap(sqlite3.connect(db))
    first.learn("users", 1, 100)
    first.flush()
    first.learn("users", 2, 200)  # not flushed
    again = IdentityMap(sqlite3.connect(db))
    assert again.resolve("users", 1) == 100
    assert again.resolve("users", 2) == 2


def test_u64_ids_and_forget(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    identity = IdentityMap(sqlite3.connect(db))
    big = 2**64 - 3
    identity.learn("c", big, 2**63)
    identity.flush()
    reopened = IdentityMap(sqlite3.connect(db))
    assert reopened.resolve("c", big) == 2**63
    reopened.forget("c", big)
    reopened.flush()
    assert IdentityMap(sqlite3.connect(db)).resolve("c", big) == big


class WritesEverything(IdentityMap):
    """The map as it was before mappings of an id to itself were left out: every one kept."""

    def learn(self, collection: str, physical_id: int, logical_id: int) -> None:
        self._pending[(collection, physical_id)] = logical_id


ID_VALUES = [0, 1, 2, 3, 5, 8, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 1]
IDS = st.sampled_from(ID_VALUES)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("learn"), st.sampled_from("ab"), IDS, IDS),
        st.tuples(st.just("insert"), st.sampled_from("ab"), IDS),  # physical id = logical id
        st.tuples(st.just("forget"), st.sampled_from("ab"), IDS),
        st.tuples(st.just("flush")),
        st.tuples(st.just("reopen")),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_resolves_like_a_map_that_keeps_every_mapping(ops: list) -> None:
    conns = [sqlite3.connect(":memory:"), sqlite3.connect(":memory:")]
    maps = [IdentityMap(conns[0]), WritesEverything(conns[1])]
    for op in ops:
        for index, identity in enumerate(maps):
            if op[0] == "learn":
                identity.learn(op[1], op[2], op[3])
            elif op[0] == "insert":
                identity.learn(op[1], op[2], op[2])
            elif op[0] == "forget":
                identity.forget(op[1], op[2])
            elif op[0] == "flush":
                identity.flush()
            else:  # a restart: what was not flushed is gone
                maps[index] = type(identity)(conns[index])
        for collection in "ab":
            for physical_id in ID_VALUES:
                assert maps[0].resolve(collection, physical_id) == maps[1].resolve(
                    collection, physical_id
                ), (op, collection, physical_id)


def test_increasing_inserts_write_nothing_and_updates_do(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    identity = IdentityMap(sqlite3.connect(db))
    for physical_id in range(1, 1001):
        identity.learn("users", physical_id, physical_id)
    identity.learn("users", 1001, 7)  # an update of row 7
    identity.learn("users", 1002, 1002)
    identity.flush()
    assert identity._conn.execute("SELECT * FROM identity_map").fetchall() == [("users", 1001, 7)]
    # after a restart the highest stored id is read back: an id at or below it is written
    reopened = IdentityMap(sqlite3.connect(db))
    reopened.learn("users", 1001, 1001)  # the id reused: the old mapping must not stay
    reopened.learn("users", 2**64 - 1, 2**64 - 1)
    reopened.learn("users", 2**64 - 2, 5)  # stored negative
    reopened.flush()
    again = IdentityMap(sqlite3.connect(db))
    assert again.resolve("users", 1001) == 1001
    assert again._highest_stored("users") == 2**64 - 2
    again.learn("users", 2**64 - 3, 2**64 - 3)  # below the highest: written
    assert again.pending == 1
