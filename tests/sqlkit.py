"""Running statements on a SqlSession from synchronous tests, rows collected."""

from __future__ import annotations

import asyncio

from pgshim.sql.results import CommandResult, Prepared, RowsResult
from pgshim.sql.session import SqlSession


async def collect(session: SqlSession, sql: str | Prepared, params: list | None = None):
    if isinstance(sql, Prepared):
        result = await session.execute_prepared(sql, params or [])
    else:
        result = await session.execute(sql, params)
    if isinstance(result, RowsResult) and not isinstance(result.rows, list):
        rows: list[tuple] = []
        while batch := await result.rows.fetch(1000):
            rows += batch
        result = RowsResult(result.columns, rows, f"{result.tag} {len(rows)}")
    return result


def run_sql(
    session: SqlSession, sql: str | Prepared, params: list | None = None
) -> RowsResult | CommandResult:
    """One statement, run to completion; a query's rows as a list."""
    return asyncio.run(collect(session, sql, params))


def prepare(session: SqlSession, sql: str, param_oids: list[int]) -> Prepared:
    return asyncio.run(session.prepare(sql, param_oids))
