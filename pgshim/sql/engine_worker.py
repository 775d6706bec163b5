"""The SQL engine's processes: DuckDB, walled off, behind a socket (started by engine.py).

Run as a program, this module is the fork server: it loads DuckDB once and opens each engine's
database (its tables and macros) once, as a template, then forks an engine process from it for
each request, so one starts in milliseconds and the server process itself never loads DuckDB.
Requests and replies are pickles on the engine process's socket. An engine process caps its
address space (RLIMIT_AS) before it reads a request: whatever a query builds, past the cap its
allocations fail in this process, and the server goes on.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import os
import pickle
import resource
import signal
import socket
import sys
from multiprocessing.connection import Connection
from typing import Any

import duckdb

from pgshim.sql.numeric_scale import ANY_SCALE_NUMERIC, trimmed

_PR_SET_PDEATHSIG = 1

# set on the connection: what a query could reach or change of DuckDB itself
WALLED_OFF = {
    # no spill files: beyond memory_limit a query fails (53200) instead of writing a temporary
    # directory under the working directory (DuckDB's default, up to 90% of the disk)
    "temp_directory": "",
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "threads": 1,
    # nor threads for asynchronous I/O (8 by default): a database opened once in the fork
    # server is forked into each engine process, which only a single-threaded process allows
    "async_threads": 0,
}


def create_table(connection: Any, name: str, columns: list[tuple[str, str]], rows: list[tuple],
                 temporary: bool = True) -> None:  # fmt: skip
    """Create the table and load its rows a column at a time (one list per column, unnested:
    an order of magnitude faster than inserting row by row)."""
    definition = ", ".join(f'"{column}" {kind}' for column, kind in columns)
    scope = "TEMP TABLE" if temporary else "OR REPLACE TABLE"
    connection.execute(f'CREATE {scope} "{name}" ({definition})')
    if rows:
        unnested = ", ".join(f"unnest(?::{kind}[])" for _, kind in columns)
        values = [list(column) for column in zip(*rows, strict=True)]
        connection.execute(f'INSERT INTO "{name}" SELECT {unnested}', values)


def open_database(memory_limit: str, tables: list, macros: list[str]) -> Any:
    db = duckdb.connect(":memory:", config=WALLED_OFF | {"memory_limit": memory_limit})
    # after the connection: DuckDB refuses temp_directory once external access is off
    db.execute("SET enable_external_access = false")
    db.execute("SET TimeZone = 'UTC'")
    for name, columns, rows in tables:
        create_table(db, name, columns, rows, temporary=False)
    for macro in macros:
        db.execute(macro)
    db.execute("SET lock_configuration = true")
    return db


def _plain(value: Any) -> Any:
    """The value with its time zones as fixed offsets: the server unpickles only plain types."""
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.UTC)
    if isinstance(value, tuple | list):
        plain = [_plain(item) for item in value]
        return tuple(plain) if isinstance(value, tuple) else plain
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _fetch(cursor: Any, count: int) -> list[Any]:
    rows = [_plain(row) for row in cursor.fetchmany(count)]
    trim = [
        index
        for index, item in enumerate(cursor.description or [])
        if str(item[1]) == ANY_SCALE_NUMERIC
    ]
    if not trim:
        return rows
    return [
        tuple(trimmed(value) if index in trim else value for index, value in enumerate(row))
        for row in rows
    ]


def _description(cursor: Any) -> list[tuple[str, str]]:
    return [(item[0], str(item[1])) for item in cursor.description or []]


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def single_threaded() -> bool:
    """Whether this process runs one thread: only then does a fork copy a consistent DuckDB."""
    return len(os.listdir("/proc/self/task")) == 1


def fork_server(control: socket.socket) -> None:
    """Serve requests on ``control``, each with an attached socket: ``fork LIMIT KEY`` forks an
    engine process serving that socket (address space capped at LIMIT bytes; from template KEY
    if KEY is one of those kept) and answers with its process id; ``template KEY MOST`` reads
    an engine's setup from the socket, opens its database and keeps it for the processes forked
    from it (the MOST last kept), answering 1 if kept (0: the processes set themselves up)."""
    _die_with_parent()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps them
    templates: dict[int, Any] = {}
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 64, 1)
        except OSError:
            return
        if not data or not fds:
            return
        op, *args = data.decode().split()
        if op == "template":
            kept = _keep_template(templates, int(args[0]), int(args[1]), Connection(fds[0]))
            control.sendall(int(kept).to_bytes(8, "big"))
            continue
        pid = os.fork()
        if pid == 0:
            control.close()
            code = 0
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                run(Connection(fds[0]), int(args[0]), templates.get(int(args[1])))
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(fds[0])
        control.sendall(pid.to_bytes(8, "big"))


def _keep_template(templates: dict[int, Any], key: int, most: int, conn: Connection) -> bool:
    """Open the database of the setup ``conn`` sends and keep it as template ``key`` (the
    oldest kept is dropped past ``most``: the engine keeps the same account)."""
    try:
        setup = pickle.loads(conn.recv_bytes())
        db = open_database(setup["memory_limit"], setup["tables"], setup["macros"])
    except Exception:
        return False
    finally:
        conn.close()
    if not single_threaded():  # a DuckDB that runs threads of its own cannot be forked
        db.close()
        return False
    templates[key] = db
    while len(templates) > most:
        templates.pop(next(iter(templates))).close()
    return True


def run(conn: Any, limit: int, template: Any = None) -> None:
    """Serve one engine process's requests on ``conn`` (its setup first) until it closes. A
    process forked from a ``template`` database has it opened already: its setup holds only the
    shared tables the template holds another version of."""
    _die_with_parent()  # of the fork server, which dies with the server
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def reply(message: tuple) -> None:
        try:
            conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except MemoryError:
            error = ("error", "OutOfMemoryException", "the result is too large")
            conn.send_bytes(pickle.dumps(error))

    setup = pickle.loads(conn.recv_bytes())
    if template is None:
        db = open_database(setup["memory_limit"], setup["tables"], setup["macros"])
    else:
        db = template
        for name, columns, rows in setup["tables"]:
            create_table(db, name, columns, rows, temporary=False)
    reply(("ready",))
    # queries yield to the server's event loop (streaming sessions); the setup above did not, so
    # a process started while others run heavy queries is ready at once
    os.nice(10)
    cursor = None
    staged = None  # the connection tables are loaded into before the query that reads them
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        op = message[0]
        try:
            if op == "fetch":
                assert cursor is not None
                answer: tuple = ("rows", _fetch(cursor, message[1]))
            elif op == "stage":
                if staged is None:
                    if cursor is not None:
                        cursor.close()
                        cursor = None
                    staged = db.cursor()
                for step in message[1]:
                    if step[0] == "sql":
                        staged.execute(step[1], step[2])
                    else:
                        create_table(staged, step[1], step[2], step[3])
                answer = ("ok", None)
            elif op in ("open", "describe"):
                _, sql, params, temp_tables, shared_tables = message
                if cursor is not None:
                    cursor.close()
                cursor, staged = staged or db.cursor(), None
                for name, columns, rows in shared_tables:  # a newer version of the rows
                    create_table(cursor, name, columns, rows, temporary=False)
                for name, columns, rows in temp_tables:
                    create_table(cursor, name, columns, rows)
                cursor.execute(sql, params)
                answer = ("ok", _description(cursor))
                if op == "describe":
                    cursor.close()
                    cursor = None
            elif op == "close":
                for open_cursor in (cursor, staged):
                    if open_cursor is not None:
                        open_cursor.close()
                cursor = staged = None
                answer = ("ok", None)
            else:
                answer = ("error", "ProtocolError", f"unknown request {op!r}")
        except MemoryError:
            answer = ("error", "OutOfMemoryException", "the engine's address space is exhausted")
        except Exception as error:  # every engine error goes back to the session that asked
            answer = ("error", type(error).__name__, str(error))
        reply(answer)


if __name__ == "__main__":
    fork_server(socket.socket(fileno=int(sys.argv[1])))
