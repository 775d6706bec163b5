"""The RedDB link as the server uses it: ack forwarding, a remote source, from the configuration."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pgshim.config import Config
from pgshim.logical.relations import DeclaredColumn
from pgshim.reddb.link.client import RedDbClient
from pgshim.reddb.link.forwarder import AckForwarder
from pgshim.reddb.link.remote import RemoteFollower
from pgshim.reddb.link.schemas import SchemaFetcher
from pgshim.reddb.link.terms import TermHistory
from pgshim.spool.frames import Frame

log = logging.getLogger(__name__)

# extra pgshim_replicas columns: what was last forwarded to RedDB, and the last forwarding error
FORWARD_COLUMNS = [
    ("forwarded_applied_lsn", "int8"),
    ("forwarded_durable_lsn", "int8"),
    ("forwarded_at", "timestamptz"),
    ("forward_error", "text"),
]


@dataclass
class RedDbLink:
    forwarder: AckForwarder | None = None
    source_client: RedDbClient | None = None
    schemas_url: str | None = None
    token: str | None = None
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, config: Config) -> RedDbLink:
        forwarder = None
        if config.reddb_grpc:
            client = RedDbClient(config.reddb_grpc, token=config.reddb_token)
            forwarder = AckForwarder(client, replica_id_format=config.replica_id_format)
        source_client = None
        if config.source:
            source_client = RedDbClient(config.source, token=config.reddb_token)
        return cls(forwarder, source_client, config.reddb_http, config.reddb_token)

    def schema_source(
        self, conn: sqlite3.Connection
    ) -> Callable[[str], list[DeclaredColumn] | None] | None:
        """RedDB's declared columns of a collection (``GET /collections/{name}/schema``), cached
        in the state database; asked once per new collection when ``--reddb-http`` is set."""
        if self.schemas_url is None:
            return None
        fetcher = SchemaFetcher(self.schemas_url, conn, token=self.token)

        def declared(collection: str) -> list[DeclaredColumn] | None:
            columns = fetcher.declared_columns(collection)
            if fetcher.last_error:
                log.warning("RedDB schema of %s: %s", collection, fetcher.last_error)
            return [DeclaredColumn(name, pg_type) for name, pg_type in columns] if columns else None

        return declared

    def follower(self) -> RemoteFollower | None:
        """A follower of the primary's PullWalRecords stream when ``--source grpc://`` is set."""
        return None if self.source_client is None else RemoteFollower(self.source_client)

    def start(self) -> None:
        if self.forwarder is not None:
            self._task = asyncio.get_running_loop().create_task(
                self.forwarder.run(), name="reddb-ack-forwarder"
            )

    async def stop(self) -> None:
        if self.forwarder is not None:
            with contextlib.suppress(Exception):
                await self.forwarder.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def forward_status(self, replica_id: str) -> tuple:
        if self.forwarder is None:
            return (None, None, None, None)
        status = self.forwarder.status(replica_id)
        sent_at = status.last_forwarded_at
        return (
            status.last_forwarded_applied,
            status.last_forwarded_durable,
            None if sent_at is None else datetime.fromtimestamp(sent_at, UTC),
            status.last_error,
        )


class TermObservingFollower:
    """A spool or remote follower whose newly read frames also feed the term history."""

    def __init__(self, follower: object, terms: TermHistory) -> None:
        self._follower = follower
        self._terms = terms

    def poll(self, *args: object, **kwargs: object) -> list[Frame]:
        frames = self._follower.poll(*args, **kwargs)  # type: ignore[attr-defined]
        observe = self._terms.observe_frame
        for frame in frames:
            observe(frame)
        return frames

    @property
    def on_skipped(self) -> object:
        return getattr(self._follower, "on_skipped", None)

    @on_skipped.setter
    def on_skipped(self, callback: object) -> None:
        # frames skipped as delivered are not new to the term history; what a rewind reads
        # again is observed when polled
        self._follower.on_skipped = callback  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._follower, name)
