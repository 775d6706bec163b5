"""psycopg2 consuming pgoutput (decode=False): our own parser and an independent one from PyPI."""

from __future__ import annotations

import select
import time

import psycopg2
import psycopg2.extras
import pytest
from pgoutput_parser import parse

pytestmark = pytest.mark.timeout(60)


def read_payloads(cur, count: int, timeout: float = 15.0) -> list:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        msg = cur.read_message()
        if msg is not None:
            out.append(msg)
            continue
        assert time.monotonic() < deadline, f"got {len(out)} of {count}"
        select.select([cur], [], [], 0.5)
    return out


def test_pgoutput_stream_parses_with_two_decoders(spool, pgshim) -> None:
    spool.insert("items", label="seed", qty=0)
    server = pgshim(spool.path)
    plain = psycopg2.connect(server.dsn())
    plain.autocommit = True
    plain.cursor().execute("CREATE PUBLICATION items_pub FOR TABLE items")
    conn = psycopg2.connect(
        server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    cur = conn.cursor()
    cur.create_replication_slot("pgo", output_plugin="pgoutput")
    lsn_i, rid = spool.insert("items", label="box", qty=2)
    lsn_u = spool.update("items", rid, qty=5)
    lsn_d = spool.delete("items", rid)
    spool.insert("ignored", label="not published")
    cur.start_replication(
        slot_name="pgo",
        decode=False,
        options={"proto_version": "1", "publication_names": "items_pub"},
    )
    msgs = read_payloads(cur, 10)
    parsed = [parse(m.payload) for m in msgs]
    assert [p["type"] for p in parsed] == ["B", "R", "I", "C", "B", "U", "C", "B", "D", "C"]
    begin, relation, insert, commit = parsed[:4]
    assert begin["final_lsn"] == commit["commit_lsn"] == (lsn_i << 8) | 0xFE
    assert commit["end_lsn"] == msgs[3].data_start == (lsn_i << 8) | 0xFF
    assert msgs[1].data_start == 0  # Relation messages carry 0/0, as in PostgreSQL
    assert (relation["namespace"], relation["name"], relation["replident"]) == (
        "public", "items", "d",
    )  # fmt: skip
    assert [(flags, name) for flags, name, _, _ in relation["columns"]] == [
        (1, "rid"), (0, "label"), (0, "qty"),
    ]  # fmt: skip
    assert insert["N"] == [("t", str(rid).encode()), ("t", b"box"), ("t", b"2")]
    assert parsed[5]["N"] == [("t", str(rid).encode()), ("t", b"box"), ("t", b"5")]
    assert parsed[8]["K"] == [("t", str(rid).encode()), ("n", None), ("n", None)]
    assert parsed[6]["end_lsn"] == (lsn_u << 8) | 0xFF
    assert parsed[9]["end_lsn"] == (lsn_d << 8) | 0xFF

    # an independent decoder (pypgoutput). Its Begin decoder reads the 4-byte xid as 8 bytes,
    # so only the other messages go through it.
    decoders = pytest.importorskip("pypgoutput.decoders", reason="pypgoutput is not installed")
    rel = decoders.Relation(msgs[1].payload)
    assert (rel.namespace, rel.relation_name) == ("public", "items")
    assert [c.name for c in rel.columns] == ["rid", "label", "qty"]
    assert [c.part_of_pkey for c in rel.columns] == [1, 0, 0]
    ins = decoders.Insert(msgs[2].payload)
    assert [c.col_data for c in ins.new_tuple.column_data] == [str(rid), "box", "2"]
    com = decoders.Commit(msgs[3].payload)
    assert (com.lsn_commit, com.lsn) == ((lsn_i << 8) | 0xFE, (lsn_i << 8) | 0xFF)
    upd = decoders.Update(msgs[5].payload)
    assert [c.col_data for c in upd.new_tuple.column_data] == [str(rid), "box", "5"]
    dele = decoders.Delete(msgs[8].payload)
    assert dele.message_type == "K"
    conn.close()
    plain.close()
