"""Consume pgshim with psycopg2's logical replication support and confirm what was handled.

    python examples/psycopg2_consumer.py "host=127.0.0.1 port=5433 user=postgres dbname=reddb"

Every message is printed, then confirmed with ``send_feedback(flush_lsn=...)``. Confirming a
COMMIT's position means the transaction is never sent again; after a crash the consumer gets
again, whole, every transaction whose COMMIT it had not confirmed (at-least-once delivery).
"""

from __future__ import annotations

import argparse
import select
import sys
import time

import psycopg2
import psycopg2.errors
import psycopg2.extras


class Done(Exception):
    """Raised from the consumer callback to leave consume_stream()."""


class PrintingConsumer:
    def __init__(self, max_messages: int | None) -> None:
        self.max_messages = max_messages
        self.seen = 0

    def __call__(self, msg: psycopg2.extras.ReplicationMessage) -> None:
        print(f"{msg.data_start:X} {msg.payload}", flush=True)
        # Handled (here: printed) -> tell the server it never needs to send it again.
        msg.cursor.send_feedback(flush_lsn=msg.data_start)
        self.seen += 1
        if self.max_messages is not None and self.seen >= self.max_messages:
            raise Done


def confirm_before_leaving(cur: psycopg2.extras.ReplicationCursor, timeout: float = 5.0) -> None:
    """Send the last confirmation and wait for the server's reply to it: the server answers
    after applying it, so the slot has moved before this consumer disconnects."""
    while cur.read_message() is not None:
        pass  # what arrived after the last handled message is not confirmed: sent again later
    cur.send_feedback(reply=True)
    sent_at = cur.io_timestamp
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cur.read_message() is None and cur.io_timestamp > sent_at:
            return
        select.select([cur], [], [], 0.1)


def parse_options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        options[name] = value
    return options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dsn", help="libpq connection string of the pgshim server")
    parser.add_argument("--slot", default="psycopg2_demo")
    parser.add_argument("--plugin", default="test_decoding", help="used when creating the slot")
    parser.add_argument(
        "-o", "--option", action="append", default=[], metavar="NAME=VALUE",
        help="output plugin option, e.g. -o include-xids=0",
    )  # fmt: skip
    parser.add_argument("--max-messages", type=int, help="stop after this many messages")
    args = parser.parse_args(argv)

    conn = psycopg2.connect(
        args.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    cur = conn.cursor()
    try:
        cur.create_replication_slot(args.slot, output_plugin=args.plugin)
        print(f"created slot {args.slot} ({args.plugin})", file=sys.stderr)
    except psycopg2.errors.DuplicateObject:
        pass  # continue where the slot's consumer left off
    cur.start_replication(slot_name=args.slot, decode=True, options=parse_options(args.option))
    consumer = PrintingConsumer(args.max_messages)
    try:
        cur.consume_stream(consumer)
    except (Done, KeyboardInterrupt):
        pass
    finally:
        if consumer.seen:
            confirm_before_leaving(cur)
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
