"""The gRPC client against an in-test server implementing RedDB's documented replication contract
(reddb-logical-wal.md §5); RedDB itself cannot run here."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest
from fake_reddb import ACK, STREAM, FakeRedDb, Principal

from pgshim.reddb.link import messages
from pgshim.reddb.link.client import (
    SERVICE,
    RedDbClient,
    RedDbError,
    parse_pull_reply,
    parse_target,
)


@pytest.fixture
def reddb() -> Iterator[FakeRedDb]:
    server = FakeRedDb()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def secured() -> Iterator[FakeRedDb]:
    server = FakeRedDb(
        principals={
            "rk_main": Principal("pgshim:main"),
            "rk_reader": Principal("reader", {STREAM}),
        }
    )
    server.start()
    yield server
    server.stop()


def _client(server: FakeRedDb, token: str | None = None) -> RedDbClient:
    return RedDbClient(f"grpc://127.0.0.1:{server.port}", token=token, timeout=5)


def test_parse_target() -> None:
    assert parse_target("grpc://db:50051") == ("db:50051", False)
    assert parse_target("grpcs://db:50051") == ("db:50051", True)
    assert parse_target("db:50051") == ("db:50051", False)
    with pytest.raises(ValueError):
        parse_target("http://db:1")


def test_in_test_server_pull_returns_records_after_since(reddb: FakeRedDb) -> None:
    for _ in range(5):
        reddb.append()
    with _client(reddb) as client:
        reply = client.pull_wal_records(since_lsn=2, max_count=2)
    assert [r.lsn for r in reply.records] == [3, 4]
    assert json.loads(reply.records[0].data)["lsn"] == 3
    assert reply.records[0].data == reddb.records[2][1]  # hex-decoded exactly
    assert (reply.current_lsn, reply.oldest_available_lsn) == (5, 1)
    assert reply.needs_rebootstrap is False
    assert reddb.calls[-1] == ("PullWalRecords", {"max_count": 2, "since_lsn": 2})


def test_in_test_server_ack_echoes_and_counts_for_commit_waiter(reddb: FakeRedDb) -> None:
    with _client(reddb) as client:
        reply = client.ack_replica_lsn("pgshim:main", 9, 7)
    assert reply == {
        "applied_lsn": 9, "apply_errors_total": 0, "divergence_total": 0, "durable_lsn": 7,
        "ok": True, "replica_id": "pgshim:main",
    }  # fmt: skip
    assert reddb.commit_acks == {"pgshim:main": 7}
    assert "pgshim:main" not in reddb.replicas  # acks do not register a replica


def test_in_test_server_pull_with_replica_id_registers_slot(reddb: FakeRedDb) -> None:
    reddb.append()
    reddb.append()
    with _client(reddb) as client:
        reply = client.pull_wal_records(since_lsn=0, replica_id="pgshim:main")
        status = client.replication_status()
    # a new slot starts at the current head: history below it is not served to that replica
    assert reply.records == [] and reply.partial_resync is True
    assert status["replica_count"] == 1
    assert status["slots"][0]["id"] == "pgshim:main"
    assert status["slots"][0]["restart_lsn"] == 2
    assert status["current_term"] == 1


def test_in_test_server_sends_bearer_token(secured: FakeRedDb) -> None:
    secured.append()
    with _client(secured, "rk_main") as client:
        assert [r.lsn for r in client.pull_wal_records().records] == [1]
        assert client.ack_replica_lsn("pgshim:main", 1)["durable_lsn"] == 1


def test_in_test_server_unauthenticated_without_token(secured: FakeRedDb) -> None:
    with _client(secured) as client, pytest.raises(RedDbError) as info:
        client.pull_wal_records()
    assert info.value.code == "UNAUTHENTICATED"
    assert info.value.sqlstate == "28000"
    assert not info.value.transient


def test_in_test_server_permission_denied(secured: FakeRedDb) -> None:
    with _client(secured, "rk_main") as client, pytest.raises(RedDbError) as info:
        client.ack_replica_lsn("pgshim:other", 1)  # replica_id is not the principal
    assert info.value.code == "PERMISSION_DENIED"
    assert info.value.sqlstate == "42501"
    with _client(secured, "rk_reader") as client, pytest.raises(RedDbError) as info:
        client.ack_replica_lsn("reader", 1)  # no cluster:replication:ack
    assert info.value.code == "PERMISSION_DENIED"
    assert ACK in info.value.details


def test_in_test_server_term_fence(reddb: FakeRedDb) -> None:
    reddb.term = 3
    with _client(reddb) as client:
        for term, words in ((2, "stale term"), (4, "ahead of primary term")):
            with pytest.raises(RedDbError) as info:
                client.pull_wal_records(term=term)
            assert info.value.code == "FAILED_PRECONDITION"
            assert words in info.value.details
        assert client.pull_wal_records(term=3).current_lsn == 0


def test_in_test_server_not_a_primary(reddb: FakeRedDb) -> None:
    reddb.role = "replica"
    with _client(reddb) as client:
        with pytest.raises(RedDbError) as info:
            client.ack_replica_lsn("x", 1)
        assert info.value.code == "FAILED_PRECONDITION"
        assert "not a replication primary" in info.value.details
        assert client.replication_status() == {"role": "replica"}


def test_in_test_server_invalid_argument_for_bad_payloads(reddb: FakeRedDb) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{reddb.port}")
    pull = channel.unary_unary(
        f"/{SERVICE}/PullWalRecords",
        request_serializer=messages.encode_json_payload_request,
        response_deserializer=messages.decode_payload_reply,
    )
    for payload in ("not json", "[1]", '{"since_lsn":"7"}', '{"max_count":-1}'):
        with pytest.raises(grpc.RpcError) as info:
            pull(messages.JsonPayloadRequest(payload), timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()
    with _client(reddb) as client, pytest.raises(RedDbError) as err:
        client.ack_replica_lsn("", 1)
    assert err.value.code == "INVALID_ARGUMENT"


def test_unreachable_primary_is_a_transient_error() -> None:
    with RedDbClient("grpc://127.0.0.1:1", timeout=2) as client, pytest.raises(RedDbError) as info:
        client.replication_status()
    assert info.value.code == "UNAVAILABLE"
    assert info.value.transient
    assert info.value.sqlstate == "08006"


def test_await_data_long_poll_times_out_empty(reddb: FakeRedDb) -> None:
    with _client(reddb) as client:
        reply = client.pull_wal_records(since_lsn=0, await_data=True, await_timeout_ms=50)
    assert reply.records == []
    assert reddb.calls[-1][1]["await_timeout_ms"] == 50


@pytest.mark.parametrize(
    "payload",
    [{"records": {}}, {"records": [1]}, {"records": [{"lsn": 1}]},
     {"records": [{"lsn": -1, "data": ""}]}, {"records": [{"lsn": 1, "data": "zz"}]},
     {"current_lsn": "5"}, {"current_lsn": 5, "oldest_available_lsn": True}],
)  # fmt: skip
def test_pull_reply_shape_is_checked(payload: dict) -> None:
    with pytest.raises(RedDbError) as info:
        parse_pull_reply(payload)
    assert info.value.code == "INVALID_REPLY"


def test_pull_reply_fields() -> None:
    reply = parse_pull_reply(
        {"records": [], "current_lsn": 9, "oldest_available_lsn": 4, "needs_rebootstrap": True,
         "invalidation_reason": "wal-removed"}
    )  # fmt: skip
    assert (reply.current_lsn, reply.oldest_available_lsn) == (9, 4)
    assert reply.needs_rebootstrap and reply.invalidation_reason == "wal-removed"
