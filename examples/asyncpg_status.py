"""Read pgshim's status views with asyncpg, as any monitoring job could.

python examples/asyncpg_status.py postgresql://postgres@127.0.0.1:5433/reddb
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg


def format_lsn(position: int) -> str:
    """asyncpg returns pg_lsn as an integer; show it as PostgreSQL does."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


async def show_status(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        spool = await conn.fetchrow(
            "SELECT path, records, last_lsn, end_position FROM pgshim_spool"
        )
        print(f"spool {spool['path']}: {spool['records']} records, last LSN {spool['last_lsn']}")
        slots = await conn.fetch(
            "SELECT slot_name, plugin, active, confirmed_flush_lsn "
            "FROM pg_replication_slots ORDER BY slot_name"
        )
        for slot in slots:
            state = "active" if slot["active"] else "idle"
            print(
                f"slot {slot['slot_name']} ({slot['plugin']}, {state}) "
                f"confirmed {format_lsn(slot['confirmed_flush_lsn'])}"
            )
        for replica in await conn.fetch(
            "SELECT slot_name, application_name, lag_records, lag_seconds FROM pgshim_replicas"
        ):
            print(
                f"consumer {replica['application_name']} on {replica['slot_name']}: "
                f"{replica['lag_records']} records, {replica['lag_seconds']:.1f} s behind"
            )
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(
        show_status(
            sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5433/reddb"
        )
    )
