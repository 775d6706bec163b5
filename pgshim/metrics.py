"""Prometheus metrics over HTTP, read lazily from the running application on every scrape.

The HTTP server runs in a thread (prometheus-client's); a scrape copies the few numbers it needs
from the application's in-memory state (:func:`read_state`), then turns that snapshot into metric
families (:func:`metric_families`), which is pure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pgshim.logical.positions import lsn_of

SNAPSHOT_ATTEMPTS = 5  # the server thread may change a dict while a scrape copies it


@dataclass(slots=True)
class SlotSnapshot:
    name: str
    plugin: str
    active: bool
    confirmed_flush: int  # PostgreSQL position
    lag_records: int  # RedDB LSNs after the confirmed position
    lag_seconds: float  # age of the oldest change the consumer has not confirmed
    held_here: bool = False  # a session of this instance streams from it


@dataclass(slots=True)
class StreamSnapshot:
    pid: int
    slot: str
    application_name: str
    sent: int  # PostgreSQL positions
    flush: int


@dataclass(slots=True)
class ReplicaSnapshot:
    replica_id: str
    slot: str
    lag_records: int
    lag_seconds: float
    connected: bool


@dataclass(slots=True)
class StateSnapshot:
    started_at: float  # unix seconds
    spool_exists: bool
    spool_bytes: int
    spool_records: int
    spool_first_lsn: int | None
    spool_last_lsn: int | None
    spool_gaps: int
    spool_out_of_order: int
    spool_prunes: int
    spool_corrupt: bool
    end_position: int
    transactions: int
    decode_errors: int
    sessions: dict[str, int]  # kind -> count: sql, replication, streaming
    slots: list[SlotSnapshot] = field(default_factory=list)
    streams: list[StreamSnapshot] = field(default_factory=list)
    replicas: list[ReplicaSnapshot] = field(default_factory=list)
    slot_invalidations: int = 0  # slots invalidated since the process started
    instance: str = ""  # this instance's name among those sharing the state database
    state_backend: str = "sqlite"  # where slots live: sqlite (state_dir) or postgresql
    state_writable: bool = True  # the last slot positions and leases were written


def read_state(app: Any, now: float | None = None) -> StateSnapshot:
    """Copy what the metrics need from a running :class:`pgshim.app.Application`."""
    for attempt in range(SNAPSHOT_ATTEMPTS):
        try:
            return _read_state(app, time.time() if now is None else now)
        except (RuntimeError, KeyError, IndexError):
            if attempt == SNAPSHOT_ATTEMPTS - 1:
                raise
            time.sleep(0.001)
    raise AssertionError("unreachable")


def _read_state(app: Any, now: float) -> StateSnapshot:
    source, status = app.source, app.follower.status
    last_lsn = source.last_lsn
    sessions = list(app.sessions.values())
    instance = app.slots.instance
    slots = app.slots.list()
    # by this process's sessions: not by name, which two instances may share by mistake
    held = {slot.name for slot in slots if slot.active_pid is not None and not slot.held_elsewhere}
    slot_of_pid = {slot.active_pid: slot.name for slot in slots if slot.name in held}
    kinds = {"sql": 0, "replication": 0, "streaming": 0}
    streams: list[StreamSnapshot] = []
    for session in sessions:
        stream = session.stream
        if stream is not None:
            kinds["streaming"] += 1
            info = session.info
            streams.append(
                StreamSnapshot(
                    pid=info.pid,
                    slot=slot_of_pid.get(info.pid, ""),
                    application_name=info.application_name or "",
                    sent=stream.state.sent,
                    flush=stream.state.feedback.flush,
                )
            )
        elif session.info.replication != "false":
            kinds["replication"] += 1
        else:
            kinds["sql"] += 1
    return StateSnapshot(
        started_at=app.started_at.timestamp(),
        spool_exists=status.exists,
        spool_bytes=status.size,
        spool_records=status.records,
        spool_first_lsn=status.first_lsn,
        spool_last_lsn=status.last_lsn,
        spool_gaps=status.gaps,
        spool_out_of_order=status.out_of_order,
        spool_prunes=status.prunes,
        slot_invalidations=app.slots.invalidations,
        spool_corrupt=status.corrupt_reason is not None,
        end_position=source.end_pos,
        transactions=source.transactions,
        decode_errors=source.decode_errors,
        sessions=kinds,
        slots=[
            SlotSnapshot(
                name=slot.name,
                plugin=slot.plugin,
                active=slot.active,
                confirmed_flush=slot.confirmed_flush,
                lag_records=max(0, last_lsn - lsn_of(slot.confirmed_flush)),
                lag_seconds=_unconfirmed_age(source, slot.confirmed_flush, now),
                held_here=slot.name in held,
            )
            for slot in slots
        ],
        instance=instance,
        state_backend=getattr(app.shared, "backend", "sqlite"),
        state_writable=app.slots.flush_error is None and app.slots.lease_error is None,
        streams=streams,
        replicas=[
            ReplicaSnapshot(
                replica_id=row[0],
                slot=row[1],
                lag_records=row[10],
                lag_seconds=row[11],
                connected=bool(row[13]),
            )
            for row in app.replicas.rows(current_lsn=last_lsn)
        ],  # fmt: skip
    )


def _unconfirmed_age(source: Any, confirmed_flush: int, now: float) -> float:
    """Seconds since the commit of the first transaction after ``confirmed_flush``; 0 if none.

    Reads the source's ring of recent transactions; a slot further behind than the ring reaches
    is reported with the age of the oldest transaction the ring still holds (a lower bound).
    """
    pending = source.read(confirmed_flush, 1)
    if not pending:
        return 0.0
    return max(0.0, now - pending[0].commit_time.timestamp())


def metric_families(state: StateSnapshot) -> list[Metric]:
    families: list[Metric] = []

    def gauge(name: str, doc: str, value: float) -> None:
        families.append(GaugeMetricFamily(name, doc, value=value))

    gauge("pgshim_start_time_seconds", "When this pgshim process started (unix time).",
          state.started_at)  # fmt: skip
    info = GaugeMetricFamily("pgshim_instance_info", "This instance's name and where its slots "
                             "are kept (sqlite: its state directory; postgresql: state_url).",
                             labels=["instance", "state_backend"])  # fmt: skip
    info.add_metric([state.instance, state.state_backend], 1)
    families.append(info)
    gauge("pgshim_state_writable", "1 when the last slot positions and leases could be written.",
          int(state.state_writable))  # fmt: skip
    gauge("pgshim_spool_exists", "1 when the spool file exists.", int(state.spool_exists))
    gauge("pgshim_spool_bytes", "Size of the spool file in bytes.", state.spool_bytes)
    gauge("pgshim_spool_records", "Change records read from the current spool file.",
          state.spool_records)  # fmt: skip
    if state.spool_first_lsn is not None:
        gauge("pgshim_spool_first_lsn", "Lowest RedDB LSN in the spool.", state.spool_first_lsn)
    if state.spool_last_lsn is not None:
        gauge("pgshim_spool_last_lsn", "Highest RedDB LSN in the spool.", state.spool_last_lsn)
    gauge("pgshim_spool_gaps", "RedDB LSNs missing between the lowest and the highest.",
          state.spool_gaps)  # fmt: skip
    gauge("pgshim_spool_out_of_order", "Records whose LSN was below one read before them.",
          state.spool_out_of_order)  # fmt: skip
    gauge("pgshim_spool_prunes", "Times RedDB pruned (rewrote) the spool under pgshim.",
          state.spool_prunes)  # fmt: skip
    gauge("pgshim_spool_corrupt", "1 when reading stopped at a corrupt frame.",
          int(state.spool_corrupt))  # fmt: skip
    gauge("pgshim_end_position", "End position of the last transaction served (PostgreSQL LSN).",
          state.end_position)  # fmt: skip
    families.append(CounterMetricFamily(
        "pgshim_transactions", "Transactions decoded from the spool.", value=state.transactions
    ))  # fmt: skip
    families.append(CounterMetricFamily(
        "pgshim_slot_invalidations",
        "Replication slots invalidated (wal_status 'lost': changes they needed are gone).",
        value=state.slot_invalidations,
    ))  # fmt: skip
    families.append(CounterMetricFamily(
        "pgshim_decode_errors", "Records or values pgshim could not decode.",
        value=state.decode_errors,
    ))  # fmt: skip

    sessions = GaugeMetricFamily("pgshim_sessions", "Client connections by kind.", labels=["kind"])
    for kind, count in sorted(state.sessions.items()):
        sessions.add_metric([kind], count)
    families.append(sessions)

    families += _labelled(
        ["slot", "plugin"],
        [([s.name, s.plugin], s) for s in state.slots],
        [
            ("pgshim_slot_lag_records", "RedDB LSNs after the slot's confirmed position.",
             lambda s: s.lag_records),
            ("pgshim_slot_lag_seconds",
             "Age of the oldest change the slot's consumer has not confirmed.",
             lambda s: s.lag_seconds),
            ("pgshim_slot_confirmed_flush_position",
             "The slot's confirmed_flush_lsn as an integer.", lambda s: s.confirmed_flush),
            ("pgshim_slot_active", "1 while a consumer streams from the slot (on any instance).",
             lambda s: int(s.active)),
            ("pgshim_slot_held", "1 while a consumer streams from the slot on this instance.",
             lambda s: int(s.held_here)),
        ],
    )  # fmt: skip
    families += _labelled(
        ["pid", "slot", "application_name"],
        [([str(s.pid), s.slot, s.application_name], s) for s in state.streams],
        [
            ("pgshim_stream_sent_position", "Position sent to the consumer, as an integer.",
             lambda s: s.sent),
            ("pgshim_stream_flush_position",
             "Position the consumer reported flushed, as an integer.", lambda s: s.flush),
        ],
    )  # fmt: skip
    families += _labelled(
        ["replica_id", "slot"],
        [([r.replica_id, r.slot], r) for r in state.replicas],
        [
            ("pgshim_replica_lag_records", "RedDB LSNs after the replica's durable LSN.",
             lambda r: r.lag_records),
            ("pgshim_replica_lag_seconds", "How long the replica has been behind.",
             lambda r: r.lag_seconds),
            ("pgshim_replica_connected", "1 while the replica is connected.",
             lambda r: int(r.connected)),
        ],
    )  # fmt: skip
    return families


def _labelled(
    labels: list[str],
    items: Iterable[tuple[list[str], Any]],
    specs: list[tuple[str, str, Callable[[Any], float]]],
) -> list[Metric]:
    families = [GaugeMetricFamily(name, doc, labels=labels) for name, doc, _ in specs]
    for values, item in items:
        for family, (_, _, read) in zip(families, specs, strict=True):
            family.add_metric(values, read(item))
    return families


class ApplicationCollector(Collector):
    def __init__(self, app: Any) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        return []  # no scrape at registration time: the application may not be running yet

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(read_state(self.app))


@dataclass(slots=True)
class MetricsServer:
    host: str
    port: int
    _httpd: Any

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def start_metrics(app: Any, port: int, host: str | None = None) -> MetricsServer:
    """Serve ``/metrics`` for ``app`` on ``host`` (default: the server's listen address)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ApplicationCollector(app))
    address = host if host is not None else app.config.host
    httpd, _thread = start_http_server(port, addr=address, registry=registry)
    return MetricsServer(address, httpd.server_port, httpd)
