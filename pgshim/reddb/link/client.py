"""A synchronous gRPC client for the replication calls of RedDB's ``reddb.v1.RedDb`` service.

Every request and reply is JSON inside a protobuf string field (``proto/reddb.proto``). Calls are
made by method path with the codec in ``messages.py``; the channel is thread-safe, so one client
serves the ack forwarder and the remote follower's puller thread. Credentials go in the
``authorization: Bearer <token>`` metadata RedDB reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pgshim.errors import PgError
from pgshim.reddb.link import messages

if TYPE_CHECKING:
    import grpc

SERVICE = "reddb.v1.RedDb"
DEFAULT_MAX_COUNT = 1000
MAX_AWAIT_TIMEOUT_MS = 30_000  # RedDB clamps await_timeout_ms to 1..30000

# gRPC status -> the SQLSTATE a PostgreSQL client sees when a call's failure reaches it
_SQLSTATE_BY_CODE = {
    "UNAUTHENTICATED": "28000",  # invalid_authorization_specification
    "PERMISSION_DENIED": "42501",  # insufficient_privilege
    "INVALID_ARGUMENT": "22023",  # invalid_parameter_value
    "FAILED_PRECONDITION": "55000",  # object_not_in_prerequisite_state
    "UNAVAILABLE": "08006",  # connection_failure
    "DEADLINE_EXCEEDED": "57014",  # query_canceled
}
_TRANSIENT_CODES = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL", "UNKNOWN"}
)


class RedDbError(PgError):
    """A RedDB call that failed: ``code`` is the gRPC status name (or INVALID_REPLY)."""

    def __init__(self, code: str, details: str, *, method: str = "") -> None:
        where = f"RedDB {method}" if method else "RedDB"
        super().__init__(_SQLSTATE_BY_CODE.get(code, "XX000"), f"{where}: {code}: {details}")
        self.code = code
        self.details = details
        self.method = method

    @property
    def transient(self) -> bool:
        """Whether the same call may succeed later without anything being changed."""
        return self.code in _TRANSIENT_CODES


@dataclass(slots=True, frozen=True)
class WalRecord:
    lsn: int
    data: bytes  # the ChangeRecord JSON bytes (hex-decoded)


@dataclass(slots=True)
class PullReply:
    records: list[WalRecord]
    current_lsn: int
    oldest_available_lsn: int | None
    partial_resync: bool = False
    needs_rebootstrap: bool = False
    invalidation_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def parse_target(url: str) -> tuple[str, bool]:
    """``grpc://host:port`` (plain), ``grpcs://host:port`` (TLS) or ``host:port`` -> (target, tls)."""
    if "://" not in url:
        return url, False
    parts = urlsplit(url)
    if parts.scheme not in ("grpc", "grpcs") or not parts.netloc:
        raise ValueError(f"not a gRPC address: {url!r} (expected grpc://HOST:PORT)")
    return parts.netloc, parts.scheme == "grpcs"


def encode_json(payload: dict[str, Any]) -> str:
    """Compact JSON with sorted keys, the form RedDB itself writes."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class RedDbClient:
    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        tls: bool | None = None,
        channel_credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        import grpc  # loaded with the first client: a server reading a spool file never needs it

        address, url_tls = parse_target(target)
        self.target = target
        self.timeout = timeout
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        if channel_credentials is not None or (url_tls if tls is None else tls):
            creds = channel_credentials or grpc.ssl_channel_credentials()
            self._channel = grpc.secure_channel(address, creds, options=list(options))
        else:
            self._channel = grpc.insecure_channel(address, options=list(options))
        self._rpc_error = grpc.RpcError
        self._status = self._method("ReplicationStatus", messages.encode_empty)
        self._pull = self._method("PullWalRecords", messages.encode_json_payload_request)
        self._ack = self._method("AckReplicaLsn", messages.encode_json_payload_request)

    def _method(self, name: str, serializer: Any) -> grpc.UnaryUnaryMultiCallable:
        return self._channel.unary_unary(
            f"/{SERVICE}/{name}",
            request_serializer=serializer,
            response_deserializer=messages.decode_payload_reply,
        )

    def _call(
        self, name: str, stub: grpc.UnaryUnaryMultiCallable, request: object, timeout: float
    ) -> dict[str, Any]:
        try:
            reply: messages.PayloadReply = stub(request, timeout=timeout, metadata=self._metadata)
        except self._rpc_error as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise RedDbError(
                code.name if code is not None else "UNKNOWN", details or "", method=name
            ) from None
        try:
            payload = json.loads(reply.payload) if reply.payload else {}
        except ValueError as exc:
            raise RedDbError("INVALID_REPLY", f"reply is not JSON: {exc}", method=name) from None
        if not isinstance(payload, dict):
            raise RedDbError("INVALID_REPLY", "reply is not a JSON object", method=name)
        return payload

    def replication_status(self) -> dict[str, Any]:
        return self._call("ReplicationStatus", self._status, None, self.timeout)

    def pull_wal_records(
        self,
        *,
        since_lsn: int = 0,
        max_count: int = DEFAULT_MAX_COUNT,
        replica_id: str | None = None,
        await_data: bool = False,
        await_timeout_ms: int | None = None,
        term: int | None = None,
    ) -> PullReply:
        request: dict[str, Any] = {"since_lsn": since_lsn, "max_count": max_count}
        if replica_id is not None:
            request["replica_id"] = replica_id
        if term is not None:
            request["term"] = term
        timeout = self.timeout
        if await_data:
            wait_ms = min(max(await_timeout_ms or MAX_AWAIT_TIMEOUT_MS, 1), MAX_AWAIT_TIMEOUT_MS)
            request["await_data"] = True
            request["await_timeout_ms"] = wait_ms
            timeout += wait_ms / 1000
        body = messages.JsonPayloadRequest(encode_json(request))
        return parse_pull_reply(self._call("PullWalRecords", self._pull, body, timeout))

    def ack_replica_lsn(
        self,
        replica_id: str,
        applied_lsn: int,
        durable_lsn: int | None = None,
        *,
        apply_errors_total: int = 0,
        divergence_total: int = 0,
    ) -> dict[str, Any]:
        request = {
            "replica_id": replica_id,
            "applied_lsn": applied_lsn,
            "durable_lsn": applied_lsn if durable_lsn is None else durable_lsn,
            "apply_errors_total": apply_errors_total,
            "divergence_total": divergence_total,
        }
        body = messages.JsonPayloadRequest(encode_json(request))
        return self._call("AckReplicaLsn", self._ack, body, self.timeout)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RedDbClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_pull_reply(payload: dict[str, Any]) -> PullReply:
    """The PullWalRecords reply JSON; RedDbError(INVALID_REPLY) when it breaks the documented shape."""

    def bad(why: str) -> RedDbError:
        return RedDbError("INVALID_REPLY", why, method="PullWalRecords")

    items = payload.get("records", [])
    if not isinstance(items, list):
        raise bad("records is not an array")
    records = []
    for item in items:
        if not isinstance(item, dict):
            raise bad("a record is not an object")
        lsn, data = item.get("lsn"), item.get("data")
        if not _is_lsn(lsn) or not isinstance(data, str):
            raise bad(f"a record lacks an integer lsn or a hex data string: {item!r:.200}")
        try:
            records.append(WalRecord(lsn, bytes.fromhex(data)))
        except ValueError:
            raise bad(f"record {lsn}: data is not hex") from None
    current = payload.get("current_lsn", 0)
    oldest = payload.get("oldest_available_lsn")
    if not _is_lsn(current) or (oldest is not None and not _is_lsn(oldest)):
        raise bad("current_lsn / oldest_available_lsn are not LSNs")
    reason = payload.get("invalidation_reason")
    return PullReply(
        records=records,
        current_lsn=current,
        oldest_available_lsn=oldest,
        partial_resync=bool(payload.get("partial_resync", False)),
        needs_rebootstrap=bool(payload.get("needs_rebootstrap", False)),
        invalidation_reason=reason if isinstance(reason, str) else None,
        raw=payload,
    )


def _is_lsn(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
