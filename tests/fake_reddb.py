"""An in-test RedDB primary: the replication RPCs of ``reddb.v1.RedDb`` as RedDB documents them.

RedDB itself cannot run in the test environment, so tests talk to this server instead. It keeps to
the documented contract (reddb-logical-wal.md §5) of a v1.13+ primary and nothing more:

* PullWalRecords: since_lsn (exclusive), max_count, replica_id (registers the replica, creates or
  touches its slot, plans the resume: ``needs_rebootstrap`` when ``oldest_available_lsn >
  max(restart_lsn, since_lsn) + 1``, otherwise serves from ``max(since_lsn, restart_lsn)`` with
  ``partial_resync``), await_data / await_timeout_ms (clamped to 1..30000), term (fenced).
* AckReplicaLsn: replica_id and applied_lsn required, durable_lsn defaults to applied, counters;
  updates a registered replica (monotonic max), advances its slot, and always records the durable
  ack for the commit waiter.
* ReplicationStatus: role, current_lsn, replica_count, oldest_available_lsn, current_term,
  replicas[], slots[].
* Errors: UNAUTHENTICATED without a known token when auth is on, PERMISSION_DENIED without the
  policy action or when an ack's replica_id is not the principal, FAILED_PRECONDITION when not a
  primary or on a term fence, INVALID_ARGUMENT for a bad payload.
"""

from __future__ import annotations

import json
import threading
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc

from pgshim.reddb.link import messages
from pgshim.reddb.link.client import SERVICE, encode_json

STREAM = "cluster:replication:stream"
ACK = "cluster:replication:ack"


@dataclass
class FakeReplica:
    id: str
    last_acked_lsn: int = 0
    last_sent_lsn: int = 0
    last_durable_lsn: int = 0
    apply_error_count: int = 0
    divergence_count: int = 0


@dataclass
class FakeSlot:
    replica_id: str
    restart_lsn: int
    confirmed_lsn: int = 0
    invalidation_reason: str | None = None


@dataclass
class Principal:
    name: str
    actions: set[str] = field(default_factory=lambda: {STREAM, ACK})


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class FakeRedDb:
    def __init__(self, *, principals: dict[str, Principal] | None = None, term: int = 1) -> None:
        """``principals`` maps token -> principal; None means auth is disabled (anonymous allowed)."""
        self.principals = principals
        self.term = term
        self.role = "primary"
        self.records: list[tuple[int, bytes]] = []  # (lsn, ChangeRecord JSON), in file order
        self.current_lsn = 0
        self.replicas: dict[str, FakeReplica] = {}
        self.slots: dict[str, FakeSlot] = {}
        self.commit_acks: dict[str, int] = {}  # the commit waiter: durable LSN per replica id
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()
        self._server: grpc.Server | None = None
        self.port = 0

    # -- the primary's data --------------------------------------------------------------------

    def append(self, collection: str = "users", *, lsn: int | None = None, **extra: Any) -> int:
        """Append one ChangeRecord (a delete unless ``extra`` says otherwise); returns its LSN."""
        with self._cond:
            lsn = self.current_lsn + 1 if lsn is None else lsn
            record = {
                "collection": collection,
                "kind": "row",
                "lsn": lsn,
                "operation": "delete",
                "rid": lsn,
                "term": self.term,
                "timestamp": 1_700_000_000_000 + lsn,
            }
            record.update(extra)
            self.records.append((lsn, encode_json(record).encode()))
            self.current_lsn = max(self.current_lsn, lsn)
            self._cond.notify_all()
        return lsn

    def prune_through(self, upto: int) -> None:
        with self._cond:
            self.records = [(lsn, data) for lsn, data in self.records if lsn > upto]

    def oldest_available_lsn(self) -> int | None:
        return min((lsn for lsn, _ in self.records), default=None)

    # -- server --------------------------------------------------------------------------------

    def start(self) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handlers = {
            "ReplicationStatus": grpc.unary_unary_rpc_method_handler(
                self._wrap("ReplicationStatus", self._status),
                request_deserializer=messages.decode_empty,
                response_serializer=messages.encode_payload_reply,
            ),
            "PullWalRecords": grpc.unary_unary_rpc_method_handler(
                self._wrap("PullWalRecords", self._pull),
                request_deserializer=messages.decode_json_payload_request,
                response_serializer=messages.encode_payload_reply,
            ),
            "AckReplicaLsn": grpc.unary_unary_rpc_method_handler(
                self._wrap("AckReplicaLsn", self._ack),
                request_deserializer=messages.decode_json_payload_request,
                response_serializer=messages.encode_payload_reply,
            ),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return f"grpc://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    def _wrap(self, method: str, handler: Any) -> Any:
        def call(request: Any, context: grpc.ServicerContext) -> messages.PayloadReply:
            try:
                principal = self._authenticate(dict(context.invocation_metadata()))
                if isinstance(request, messages.JsonPayloadRequest):
                    body = _parse_object(request.payload_json)
                else:
                    body = {}
                self.calls.append((method, body))
                reply = handler(body, principal)
            except _Abort as abort:
                context.abort(abort.code, abort.details)
            return messages.PayloadReply(True, encode_json(reply))

        return call

    def _authenticate(self, metadata: dict[str, str]) -> Principal | None:
        if self.principals is None:
            return None
        token = metadata.get("x-reddb-token")
        auth = metadata.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            token = auth[7:]
        principal = self.principals.get(token or "")
        if principal is None:
            raise _Abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid credentials")
        return principal

    def _require(self, principal: Principal | None, action: str) -> None:
        if principal is not None and action not in principal.actions:
            raise _Abort(grpc.StatusCode.PERMISSION_DENIED, f"policy denies {action}")

    def _require_primary(self) -> None:
        if self.role != "primary":
            raise _Abort(
                grpc.StatusCode.FAILED_PRECONDITION, "this instance is not a replication primary"
            )

    # -- RPCs ----------------------------------------------------------------------------------

    def _status(self, _body: dict[str, Any], _principal: Principal | None) -> dict[str, Any]:
        if self.role != "primary":
            return {"role": self.role}
        with self._cond:
            status: dict[str, Any] = {
                "role": "primary",
                "current_lsn": self.current_lsn,
                "replica_count": len(self.replicas),
                "current_term": self.term,
                "replicas": [
                    {
                        "id": r.id,
                        "last_acked_lsn": r.last_acked_lsn,
                        "last_sent_lsn": r.last_sent_lsn,
                    }
                    for r in self.replicas.values()
                ],
                "slots": [
                    {
                        "id": s.replica_id,
                        "restart_lsn": s.restart_lsn,
                        "confirmed_lsn": s.confirmed_lsn,
                        "invalidated": s.invalidation_reason is not None,
                        "invalidation_reason": s.invalidation_reason,
                    }
                    for s in self.slots.values()
                ],
            }
            oldest = self.oldest_available_lsn()
            if oldest is not None:
                status["oldest_available_lsn"] = oldest
            return status

    def _pull(self, body: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
        self._require_primary()
        self._require(principal, STREAM)
        since = _int_field(body, "since_lsn", 0)
        max_count = _int_field(body, "max_count", 1000)
        await_data = body.get("await_data", False)
        if not isinstance(await_data, bool):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "await_data must be a boolean")
        wait_ms = min(max(_int_field(body, "await_timeout_ms", 30_000), 1), 30_000)
        term = _int_field(body, "term", 1)
        replica_id = body.get("replica_id")
        if replica_id is not None and (not isinstance(replica_id, str) or not replica_id):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "replica_id must be a non-empty string")
        if term < self.term:
            raise _Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"stale term {term}: primary is at term {self.term}",
            )
        if term > self.term:
            raise _Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"term {term} is ahead of primary term {self.term}",
            )
        with self._cond:
            reply: dict[str, Any] = {"needs_rebootstrap": False}
            start = since
            if replica_id is not None:
                self.replicas.setdefault(replica_id, FakeReplica(replica_id))
                slot = self.slots.setdefault(replica_id, FakeSlot(replica_id, self.current_lsn))
                oldest = self.oldest_available_lsn()
                if oldest is not None and oldest > max(slot.restart_lsn, since) + 1:
                    slot.invalidation_reason = slot.invalidation_reason or "wal-removed"
                if slot.invalidation_reason is not None:
                    return self._framed(
                        {
                            "records": [],
                            "needs_rebootstrap": True,
                            "invalidation_reason": slot.invalidation_reason,
                        }
                    )
                start = max(since, slot.restart_lsn)
                reply["partial_resync"] = True
            if await_data:
                self._cond.wait_for(lambda: self.current_lsn > since, timeout=wait_ms / 1000)
            served = [(lsn, data) for lsn, data in self.records if lsn > start][:max_count]
            reply["records"] = [{"data": data.hex(), "lsn": lsn} for lsn, data in served]
            if replica_id is not None and served:
                replica = self.replicas[replica_id]
                replica.last_sent_lsn = max(replica.last_sent_lsn, max(lsn for lsn, _ in served))
            return self._framed(reply)

    def _framed(self, reply: dict[str, Any]) -> dict[str, Any]:
        reply["current_lsn"] = self.current_lsn
        oldest = self.oldest_available_lsn()
        if oldest is not None:
            reply["oldest_available_lsn"] = oldest
        return reply

    def _ack(self, body: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
        self._require_primary()
        self._require(principal, ACK)
        replica_id = body.get("replica_id")
        if not isinstance(replica_id, str) or not replica_id:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "replica_id is required")
        if "applied_lsn" not in body:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "applied_lsn is required")
        applied = _int_field(body, "applied_lsn", 0)
        durable = _int_field(body, "durable_lsn", applied)
        errors = _int_field(body, "apply_errors_total", 0)
        divergence = _int_field(body, "divergence_total", 0)
        if principal is not None and replica_id != principal.name:
            raise _Abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"replica_id {replica_id!r} does not match the authenticated principal",
            )
        with self._cond:
            replica = self.replicas.get(replica_id)
            if replica is not None:
                replica.last_acked_lsn = max(replica.last_acked_lsn, applied)
                replica.last_durable_lsn = max(replica.last_durable_lsn, durable)
                replica.apply_error_count = max(replica.apply_error_count, errors)
                replica.divergence_count = max(replica.divergence_count, divergence)
            slot = self.slots.get(replica_id)
            if slot is not None and slot.invalidation_reason is None:
                slot.restart_lsn = max(slot.restart_lsn, durable)
                slot.confirmed_lsn = max(slot.confirmed_lsn, applied, durable)
            self.commit_acks[replica_id] = max(self.commit_acks.get(replica_id, 0), durable)
        return {
            "applied_lsn": applied,
            "apply_errors_total": errors,
            "divergence_total": divergence,
            "durable_lsn": durable,
            "ok": True,
            "replica_id": replica_id,
        }


def _parse_object(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text) if text else {}
    except ValueError as exc:
        raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid JSON payload: {exc}") from None
    if not isinstance(body, dict):
        raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "payload must be a JSON object")
    return body


def _int_field(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{key} must be a non-negative integer")
    return value


# -- RedDB's HTTP side: GET /collections/{name}/schema ---------------------------------------------


class SchemaServer:
    """Serves ``contracts`` (path -> reply body, or an HTTP status) and records each request."""

    def __init__(self) -> None:
        self.contracts: dict[str, Any] = {}  # path -> reply body (dict) or an int status
        self.requests: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                owner.requests.append((self.path, self.headers.get("Authorization")))
                reply = owner.contracts.get(self.path, 404)
                if isinstance(reply, int):
                    body, status = b'{"ok":false,"error":"not found"}', reply
                else:
                    body = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                    status = 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
