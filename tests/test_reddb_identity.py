import sqlite3
from pathlib import Path

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
