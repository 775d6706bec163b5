"""The asyncio shell: sockets, TLS, flow control, cancel requests and shutdown.

Protocol decisions live in ``pgshim.wire``; statements are answered by a SessionHandler that the
server receives as a factory. This module only moves bytes and awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

from pgshim.config import Config, is_loopback_host, validate_security
from pgshim.errors import PgError
from pgshim.sql.privileges import walsender_permission_error
from pgshim.sql.results import CopyBothStream
from pgshim.versions import ServerVersion
from pgshim.wire import events as ev
from pgshim.wire import messages as msg
from pgshim.wire.auth import Authenticator, CredentialStore, TrustAuthenticator
from pgshim.wire.connection import NEED_DATA, ServerConnection
from pgshim.wire.handler import ConnectionInfo, HandlerFactory, SessionHandler
from pgshim.wire.query import ExtendedQuery, write_result

log = logging.getLogger("pgshim.server")

WRITE_HIGH_WATER = 256 * 1024
WRITE_LOW_WATER = 64 * 1024
READ_HIGH_WATER = 1024 * 1024
READ_CHUNK = 256 * 1024  # the most one socket read takes
FLUSH_THRESHOLD = 256 * 1024
# how long a stream whose client went away may take to apply what it received before it is
# cancelled
STREAM_END_GRACE = 5.0

ShutdownHook = Callable[[], Awaitable[None] | None]


_is_loopback = is_loopback_host


def no_hba_entry(host: str | None, request: ev.StartupRequest, encrypted: bool) -> PgError:
    """PostgreSQL's refusal when no pg_hba.conf line matches the connection."""
    encryption = "SSL encryption" if encrypted else "no encryption"
    if request.replication == "true":
        message = (
            f'no pg_hba.conf entry for replication connection from host "{host}", '
            f'user "{request.user}", {encryption}'
        )
    else:
        message = (
            f'no pg_hba.conf entry for host "{host}", user "{request.user}", '
            f'database "{request.database}", {encryption}'
        )
    return PgError("28000", message, severity="FATAL")


def _too_many_clients() -> PgError:
    return PgError("53300", "sorry, too many clients already", severity="FATAL")


class Channel(asyncio.BufferedProtocol):
    """One client socket: feeds the sans-IO connection, batches writes, applies back-pressure.

    Reads go into the server's scratch buffer, at most what the connection's phase allows to be
    held (before authentication: one startup packet or one password message), so a peer that
    has not authenticated never makes the server buffer more than that.

    It is also the StreamIO a CopyBoth stream receives.
    """

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self.conn = ServerConnection(server.config.max_message_size)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str | None, int | None] = (None, None)
        self._out: list[bytes] = []
        self._out_size = 0
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._reading_paused = False
        self._waiting = False
        self._closed = False
        self.tls_handshake = False
        self.saw_copy_done = False
        self.saw_terminate = False
        self.session: Session | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = (peer[0], peer[1])
        if self.session is None:
            self.session = self.server.open_session(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        scratch = self.server.read_scratch
        limit = self.conn.receive_limit
        if limit is None:
            return scratch
        # never empty: a transport treats that as a fatal error (reading is paused at the limit)
        return scratch[: max(1, min(len(scratch), limit - self.conn.buffered))]

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.server.read_scratch[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        self.conn.receive_data(data)
        self._readable.set()
        if self._reading_paused or self.transport is None:
            return
        limit = self.conn.receive_limit
        if (
            self.conn.buffered >= limit
            if limit is not None
            else not self._waiting and self.conn.buffered > READ_HIGH_WATER
        ):
            self.transport.pause_reading()
            self._reading_paused = True

    def eof_received(self) -> bool | None:
        self.conn.receive_data(b"")
        self._readable.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.conn.receive_data(b"")
        self._readable.set()
        self._writable.set()
        if self.session is not None:
            self.session.connection_lost()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- StreamIO

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def tls_in_use(self) -> bool:
        return (
            self.transport is not None and self.transport.get_extra_info("sslcontext") is not None
        )

    def write(self, data: bytes) -> None:
        if not self._closed:
            self._out.append(data)
            self._out_size += len(data)

    def flush(self) -> bool:
        out = self._out
        if out and not self._closed and self.transport is not None:
            # one system call for the lot either way (uvloop writes the pieces with writev)
            if len(out) == 1:
                self.transport.write(out[0])
            else:
                self.transport.writelines(out)
        self._out = []
        self._out_size = 0
        return self._writable.is_set() or self._closed

    async def drain(self) -> None:
        self.flush()
        if not self._writable.is_set() and not self._closed:
            await self._writable.wait()

    async def write_large(self, data: bytes) -> None:
        """write() and drain() whenever a batch is big enough (long results)."""
        self.write(data)
        if self._out_size >= FLUSH_THRESHOLD:
            await self.drain()

    async def next_event(self) -> Any:
        """The next event from the client; None at EOF. Raises PgError on violations."""
        while True:
            event = self.conn.next_event()
            if event is not NEED_DATA:
                return event
            if self.conn.eof:
                return None
            if self._reading_paused and self.transport is not None:
                self.transport.resume_reading()
                self._reading_paused = False
            self._readable.clear()
            self._waiting = True
            try:
                await self._readable.wait()
            finally:
                self._waiting = False

    async def read_message(self) -> ev.FrontendEvent | None:
        self.flush()
        event = await self.next_event()
        self._note(event)
        return event

    def pending_messages(self) -> list[ev.FrontendEvent]:
        events = []
        while (event := self.conn.next_event()) is not NEED_DATA:
            self._note(event)
            events.append(event)
        return events

    def _note(self, event: Any) -> None:
        if isinstance(event, ev.CopyDone):
            self.saw_copy_done = True
        elif isinstance(event, ev.Terminate):
            self.saw_terminate = True

    async def start_tls(self, context: ssl.SSLContext) -> None:
        self.flush()
        loop = asyncio.get_running_loop()
        assert self.transport is not None
        self.tls_handshake = True
        try:
            transport = await loop.start_tls(self.transport, self, context, server_side=True)
        finally:
            self.tls_handshake = False
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        self._reading_paused = False  # the TLS transport starts reading

    def close(self) -> None:
        self.flush()
        if self.transport is not None and not self._closed:
            self.transport.close()
        self._closed = True


class Session:
    """The life of one connection: startup, authentication, then queries until the end."""

    def __init__(self, server: PgServer, channel: Channel) -> None:
        self.server = server
        self.channel = channel
        self.config = server.config
        self.pid = 0
        self.secret = 0
        self.info: ConnectionInfo | None = None
        self.handler: SessionHandler | None = None
        self.task: asyncio.Task | None = None
        self._running: asyncio.Task | None = None
        self._cancel_requested = False
        self._terminating = False
        self._streaming = False
        self._over_limit = False
        self.started = False  # the StartupMessage arrived

    # -- control from outside

    def cancel(self) -> None:
        """A CancelRequest for this session: stop the running query or stream."""
        if self.handler is not None:
            self.handler.cancel()
        if self._running is not None and not self._running.done():
            self._cancel_requested = True
            self._running.cancel()

    def connection_lost(self) -> None:
        running = self._running
        if running is None or running.done():
            return
        if self._streaming:
            # PostgreSQL applies every message received before the disconnect (a final standby
            # status update among them): the stream reads the buffered ones, then None, and ends.
            # Cancelling is only the fallback for a stream that does not.
            loop = asyncio.get_running_loop()
            loop.call_later(STREAM_END_GRACE, self._cancel_running, running)
            return
        self._cancel_running(running)

    def _cancel_running(self, running: asyncio.Task) -> None:
        if running.done():
            return
        if self.handler is not None:
            self.handler.cancel()
        running.cancel()

    def terminate(self, error: PgError) -> None:
        """Administrator shutdown: tell the client, close, let the task clean up."""
        self._terminating = True
        self.channel.write(msg.error_response(error))
        self.channel.close()
        if self.task is not None:
            self.task.cancel()

    def evict(self) -> None:
        """Give this connection's unauthenticated slot to a newer one: it has not sent its
        startup packet. It gets 53300, like a connection turned away."""
        self._terminating = True
        if not self.channel.tls_handshake:  # no plaintext in the middle of a TLS handshake
            self.channel.write(msg.error_response(_too_many_clients()))
        self.channel.close()
        if self.task is not None:
            self.task.cancel()

    # -- main flow

    async def run(self) -> None:
        try:
            admitted = self.server.admit_unauthenticated(self)
            if admitted is None:
                raise _too_many_clients()
            self._over_limit = not admitted
            try:
                async with asyncio.timeout(self.config.auth_timeout):
                    started = await self._startup()
            except TimeoutError:
                # PostgreSQL closes without a word when authentication_timeout expires
                what = "authentication" if self.started else "startup packet"
                log.info("%s timeout for connection from %s", what, self.channel.peer[0])
                return
            self.server.authenticated(self)
            if started:
                await self._serve()
        except PgError as err:
            log.debug(
                "session %d from %s ended: %s %s", self.pid, self.channel.peer[0], err.sqlstate,
                err.message,
            )  # fmt: skip
            if not self.channel.closed:
                self.channel.write(msg.error_response(err))
        except asyncio.CancelledError:
            if not (self._terminating or self.channel.closed):
                raise
        except (ConnectionError, OSError) as exc:
            log.debug("connection error: %s", exc)
        except Exception:
            log.exception("unexpected error in session %d", self.pid)
            if not self.channel.closed:
                self.channel.write(
                    msg.error_response(PgError("XX000", "internal error", severity="FATAL"))
                )
        finally:
            await self._finish()

    async def _finish(self) -> None:
        self.channel.close()
        self.server.close_session(self)
        if self.handler is not None:
            handler, self.handler = self.handler, None
            try:
                await handler.close()
            except Exception:
                log.exception("error closing session %d", self.pid)

    async def _startup(self) -> bool:
        # the startup packet has a deadline of its own: a client sends it at once, an idle
        # socket must not hold an unauthenticated slot for the whole auth_timeout
        async with asyncio.timeout(self.config.startup_timeout):
            request = await self._startup_packet()
        if request is None:
            return False
        self.started = True
        self.server.started(self)
        await self._authenticate(request)
        return True

    async def _startup_packet(self) -> ev.StartupRequest | None:
        """SSL/GSS negotiation up to the StartupMessage; None at EOF or after a CancelRequest."""
        channel = self.channel
        while True:
            event = await channel.next_event()
            if event is None:
                return None
            if isinstance(event, ev.SSLRequest):
                if channel.conn.buffered:
                    raise PgError(
                        "08P01", "received unencrypted data after SSL request", severity="FATAL"
                    )
                if self.server.tls_context is not None:
                    channel.write(b"S")
                    await channel.start_tls(self.server.tls_context)
                else:
                    channel.write(b"N")
                    channel.flush()
            elif isinstance(event, ev.GSSENCRequest):
                channel.write(b"N")
                channel.flush()
            elif isinstance(event, ev.CancelRequest):
                self.server.cancel(event.pid, event.secret)
                return None
            else:
                assert isinstance(event, ev.StartupRequest)
                return event

    async def _authenticate(self, request: ev.StartupRequest) -> None:
        channel = self.channel
        if request.protocol_minor > 0 or request.unrecognized:
            channel.write(msg.negotiate_protocol_version(0, request.unrecognized))
        if self._over_limit:
            raise _too_many_clients()  # turned away when it connected (logged then)
        if not self.server.register(self):
            raise _too_many_clients()
        authenticator = await self._authenticator(request)
        if authenticator.sasl:
            channel.conn.expect_sasl()
        channel.write(authenticator.start())
        while not authenticator.done:
            channel.flush()
            # the connection refuses anything but a small 'p' message (08P01) by itself
            event = await channel.next_event()
            if event is None:
                raise ConnectionResetError("client closed during authentication")
            assert isinstance(event, ev.PasswordMessage)
            if authenticator.expensive:  # a key derivation: off the event loop
                reply = await asyncio.to_thread(authenticator.receive, event.data)
            else:
                reply = authenticator.receive(event.data)
            channel.write(reply)
        channel.conn.authenticated()
        log.debug(
            "user %s authenticated (%s) from %s, tls %s", request.user,
            type(authenticator).__name__, channel.peer[0], channel.tls_in_use,
        )  # fmt: skip
        user_config = self.config.users.get(request.user)
        if (
            request.replication != "false"
            and user_config is not None
            and not user_config.replication
        ):
            raise walsender_permission_error(self.config.server_version)
        if request.replication != "true" and request.database != self.config.database:
            # PostgreSQL's own databases are there for status (psql -l, tools that connect to
            # "postgres" or "template1" first): the same read-only catalog; logical replication
            # connections go to the configured database only, template0 takes no connections
            builtin = request.database in ("postgres", "template1", "template0")
            if request.replication != "false" or not builtin:
                raise PgError(
                    "3D000", f'database "{request.database}" does not exist', severity="FATAL"
                )
            if request.database == "template0":
                raise PgError(
                    "55000",
                    'database "template0" is not currently accepting connections',
                    severity="FATAL",
                )
        host, port = channel.peer
        self.info = ConnectionInfo(
            pid=self.pid,
            secret=self.secret,
            user=request.user,
            database=request.database,
            application_name=request.application_name,
            replication=request.replication,
            client_addr=host,
            client_port=port,
            backend_start=datetime.now(UTC),
            startup_params=dict(request.params),
            options=dict(request.options),
            is_superuser=not self.config.users or bool(user_config and user_config.superuser),
            tls=channel.tls_in_use,
        )
        self.handler = self.server.handler_factory(self.info)
        channel.write(msg.auth_ok())
        for name, value in self._initial_parameters(self.info):
            channel.write(msg.parameter_status(name, value))
        channel.write(msg.backend_key_data(self.pid, self.secret))
        channel.write(msg.ready_for_query(self.handler.tx_status))
        channel.flush()

    async def _authenticator(self, request: ev.StartupRequest) -> Authenticator:
        host = self.channel.peer[0]
        tls = self.channel.tls_in_use
        user = self.config.users.get(request.user)
        if not tls and (self.config.require_tls or (user is not None and user.require_tls)):
            raise no_hba_entry(host, request, tls)  # a `hostssl` line only
        credentials = self.server.credentials
        if user is None and self.config.users:
            # the exchange known password users get, failing at the end like PostgreSQL's mock
            # authentication: same messages, same work, a stable salt per name
            return credentials.mock(request.user).authenticator(request.user)
        method = user.method if user is not None else "trust"
        if method == "trust":
            if not (is_loopback_host(host) or self.config.allow_trust_remote):
                raise no_hba_entry(host, request, tls)
            return TrustAuthenticator()
        assert user is not None
        credential = credentials.cached(request.user, user)
        if credential is None:  # settings changed since the server started: derive once
            credential = await asyncio.to_thread(credentials.compute, request.user, user)
        return credential.authenticator(request.user)

    def _initial_parameters(self, info: ConnectionInfo) -> list[tuple[str, str]]:
        return [
            ("application_name", info.application_name),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("default_transaction_read_only", "off"),
            ("in_hot_standby", "off"),
            ("integer_datetimes", "on"),
            ("IntervalStyle", "postgres"),
            ("is_superuser", "on" if info.is_superuser else "off"),
            ("server_encoding", "UTF8"),
            ("server_version", ServerVersion(self.config.server_version).setting),
            ("session_authorization", info.user),
            ("standard_conforming_strings", "on"),
            ("TimeZone", "Etc/UTC"),
        ]

    async def _serve(self) -> None:
        assert self.handler is not None and self.info is not None
        channel = self.channel
        extended = ExtendedQuery(self.handler, channel, replication=self.info.replication)
        while True:
            try:
                event = await channel.next_event()
            except PgError as err:
                if err.severity == "FATAL":
                    raise
                channel.write(msg.error_response(err))
                extended.fail()
                continue
            if event is None or isinstance(event, ev.Terminate):
                return
            if isinstance(event, ev.Query):
                if extended.skipping:
                    continue
                if not await self._simple_query(event.sql):
                    return
                extended.forget_unnamed_portal()
            elif isinstance(event, ev.Sync):
                extended.sync()
                self._report_changes()
                channel.write(msg.ready_for_query(self.handler.tx_status))
                channel.flush()
            elif isinstance(event, ev.Flush):
                channel.flush()
            elif isinstance(event, ev.EXTENDED_EVENTS):
                try:
                    await self._run(extended.handle(event))
                except PgError as err:
                    if err.severity == "FATAL":
                        raise
                    self.handler.failed()
                    channel.write(msg.error_response(err))
                    extended.fail()
            elif isinstance(event, ev.CopyData | ev.CopyDone | ev.CopyFail):
                continue  # PostgreSQL drops copy messages outside COPY mode
            else:
                raise PgError(
                    "08P01",
                    f"invalid frontend message type {type(event).__name__}",
                    severity="FATAL",
                )

    async def _run(self, awaitable: Awaitable[Any]) -> Any:
        """Await a handler call as a task that a CancelRequest can stop."""
        self._cancel_requested = False
        self._running = asyncio.ensure_future(awaitable)
        try:
            return await self._running
        except asyncio.CancelledError:
            if self._cancel_requested and not self._terminating:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                raise PgError("57014", "canceling statement due to user request") from None
            raise
        finally:
            self._running = None
            self._cancel_requested = False

    async def _simple_query(self, sql: str) -> bool:
        """Run a Query message; False when the connection must end."""
        assert self.handler is not None
        channel = self.channel
        try:
            statements = self.handler.split(sql)
            if not statements:
                channel.write(msg.empty_query_response())
            for statement in statements:
                stream = await self._run(self._statement(statement))
                if stream is not None and not await self._copy_both(stream):
                    return False
                self._report_changes()
                await asyncio.sleep(0)  # a message of many statements lets others run between them
        except PgError as err:
            if err.severity == "FATAL":
                raise
            self.handler.failed()
            channel.write(msg.error_response(err))
        self._report_changes()
        channel.write(msg.ready_for_query(self.handler.tx_status))
        channel.flush()
        return True

    async def _statement(self, statement: Any) -> CopyBothStream | None:
        """Run one statement and send its result (rows may still be produced while they are
        sent: one task, so that a CancelRequest stops either); a CopyBoth stream is returned
        for the caller to run."""
        result = await self.handler.simple(statement)
        if isinstance(result, CopyBothStream):
            return result
        await write_result(self.channel, result)
        return None

    async def _copy_both(self, stream: CopyBothStream) -> bool:
        channel = self.channel
        channel.saw_copy_done = False
        channel.flush()
        self._streaming = True
        try:
            await self._run(stream.run(channel))
        finally:
            self._streaming = False
        if channel.closed or channel.saw_terminate:
            return False
        if not channel.saw_copy_done:
            return False  # the stream ended on its own (timeout): PostgreSQL closes too
        channel.write(msg.copy_done())
        for tag in getattr(stream, "completion_tags", CopyBothStream.completion_tags):
            channel.write(msg.command_complete(tag))
        return True

    def _report_changes(self) -> None:
        if self.handler is None:
            return
        for name, value in self.handler.reported_changes():
            self.channel.write(msg.parameter_status(name, value))


class PgServer:
    def __init__(
        self,
        config: Config,
        handler_factory: HandlerFactory,
        on_shutdown: ShutdownHook | None = None,
    ) -> None:
        self.config = config
        self.handler_factory = handler_factory
        self.on_shutdown = on_shutdown
        self.tls_context = self._tls_context(config)
        self.sessions: dict[int, Session] = {}  # registered (past the startup packet)
        self._all: set[Session] = set()
        # connections admitted before authentication, oldest first: those still without a
        # StartupMessage, those past it, and how many of them each client address has
        self._awaiting_startup: dict[Session, None] = {}
        self._authenticating: set[Session] = set()
        self._per_address: dict[str | None, int] = {}
        self._turned_away: set[Session] = set()
        self.credentials = CredentialStore()
        # where every socket read lands before the connection copies it (one loop, one reader
        # at a time)
        self.read_scratch = memoryview(bytearray(READ_CHUNK))
        self._server: asyncio.Server | None = None
        self._next_pid = 1000 + secrets.randbelow(20000)
        self._stopped = asyncio.Event()
        self.shutting_down = False

    @staticmethod
    def _tls_context(config: Config) -> ssl.SSLContext | None:
        if not config.tls_cert or not config.tls_key:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(config.tls_cert, config.tls_key)
        return context

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        validate_security(self.config)
        # SCRAM keys of plaintext passwords, derived once instead of on every login
        await asyncio.to_thread(self.credentials.load, self.config.users)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Channel(self), self.config.host, self.config.port, reuse_address=True
        )
        log.info("listening on %s:%d", self.config.host, self.port)

    async def serve_forever(self) -> None:
        await self._stopped.wait()

    # -- sessions

    def open_session(self, channel: Channel) -> Session:
        session = Session(self, channel)
        self._all.add(session)
        session.task = asyncio.get_running_loop().create_task(session.run())
        return session

    def admit_unauthenticated(self, session: Session) -> bool | None:
        """Count a new connection in the startup/authentication phase.

        At most `max_unauthenticated` connections, and `max_unauthenticated_per_address` from
        one client address, are admitted at once. When a limit is reached, the oldest admitted
        connection (of that address) that has not sent its StartupMessage yet makes room: a real
        client sends it within a round trip, so idle sockets cannot lock others out.

        True: admitted. False: no room (every admitted connection is past its startup packet);
        like PostgreSQL's dead-end backends it may finish the SSL exchange and send its startup
        packet, then gets 53300 without any authentication work. None: as many are already
        being turned away: close at once.
        """
        host = session.channel.peer[0]
        if self._per_address.get(host, 0) >= self.config.max_unauthenticated_per_address:
            victim = next((s for s in self._awaiting_startup if s.channel.peer[0] == host), None)
            if victim is None:
                return self._turn_away(session)
            self._evict(victim)
        if (
            len(self._awaiting_startup) + len(self._authenticating)
            >= self.config.max_unauthenticated
        ):
            victim = next(iter(self._awaiting_startup), None)
            if victim is None:
                return self._turn_away(session)
            self._evict(victim)
        self._awaiting_startup[session] = None
        self._per_address[host] = self._per_address.get(host, 0) + 1
        return True

    def _turn_away(self, session: Session) -> bool | None:
        log.warning(
            "connection from %s turned away: %d connections already authenticating",
            session.channel.peer[0],
            len(self._awaiting_startup) + len(self._authenticating),
        )
        if len(self._turned_away) < self.config.max_unauthenticated:
            self._turned_away.add(session)
            return False
        return None

    def _evict(self, victim: Session) -> None:
        log.debug(
            "closed connection from %s that sent no startup packet, to admit a newer one",
            victim.channel.peer[0],
        )
        self.authenticated(victim)
        victim.evict()

    def started(self, session: Session) -> None:
        """The session's StartupMessage arrived: it can no longer be evicted."""
        if session in self._awaiting_startup:
            del self._awaiting_startup[session]
            self._authenticating.add(session)

    def authenticated(self, session: Session) -> None:
        """The session left the startup/authentication phase (or the connection ended)."""
        if session in self._awaiting_startup:
            del self._awaiting_startup[session]
        elif session in self._authenticating:
            self._authenticating.discard(session)
        else:
            self._turned_away.discard(session)
            return
        host = session.channel.peer[0]
        left = self._per_address[host] - 1
        if left:
            self._per_address[host] = left
        else:
            del self._per_address[host]

    def register(self, session: Session) -> bool:
        """Give the session a pid and secret unless the connection limit is reached."""
        if len(self.sessions) >= self.config.max_connections:
            return False
        while self._next_pid in self.sessions:
            self._next_pid += 1
        session.pid = self._next_pid
        self._next_pid = self._next_pid + 1 if self._next_pid < 2**31 - 2 else 1000
        session.secret = secrets.randbits(32) - 2**31
        self.sessions[session.pid] = session
        return True

    def close_session(self, session: Session) -> None:
        self._all.discard(session)
        self.authenticated(session)
        if self.sessions.get(session.pid) is session:
            del self.sessions[session.pid]

    def cancel(self, pid: int, secret: int) -> None:
        session = self.sessions.get(pid)
        if session is not None and secrets.compare_digest(
            session.secret.to_bytes(4, "big", signed=True), secret.to_bytes(4, "big", signed=True)
        ):
            session.cancel()

    # -- shutdown

    async def shutdown(self) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        if self._server is not None:
            self._server.close()
        error = PgError(
            "57P01", "terminating connection due to administrator command", severity="FATAL"
        )
        sessions = list(self._all)
        for session in sessions:
            session.terminate(error)
        tasks = [s.task for s in sessions if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self.on_shutdown is not None:
            result = self.on_shutdown()
            if result is not None:
                await result
        self._stopped.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(self.shutdown()))


async def serve(
    config: Config, handler_factory: HandlerFactory, on_shutdown: ShutdownHook | None = None
) -> None:
    """Run until SIGTERM/SIGINT; then every session gets 57P01 and `on_shutdown` runs."""
    server = PgServer(config, handler_factory, on_shutdown)
    await server.start()
    server.install_signal_handlers()
    await server.serve_forever()


def run(
    config: Config, handler_factory: HandlerFactory, on_shutdown: ShutdownHook | None = None
) -> int:
    """Blocking entry point for the command line; returns the exit status (0)."""
    runner: Callable[..., Any] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(serve(config, handler_factory, on_shutdown))
    return 0
