"""Change notification: with a poll interval of a minute, only the watcher can make a new record,
a created spool or a pruned copy renamed over the spool arrive within seconds."""

from __future__ import annotations

import asyncio
import builtins
import os
from pathlib import Path

import pytest
from spoolkit import SpoolKit

from pgshim.logical.relations import RelationRegistry
from pgshim.logical.source import ChangeSource
from pgshim.logical.transactions import TransactionBuilder
from pgshim.reddb.identity import IdentityMap
from pgshim.spool.follower import SpoolFollower
from pgshim.spool.watch import SpoolWatcher
from pgshim.state import open_state

POLL = 60.0  # seconds: longer than any wait below


def slow_polling_source(tmp_path: Path, spool: Path) -> ChangeSource:
    conn = open_state(tmp_path / "state")
    builder = TransactionBuilder(IdentityMap(conn), RelationRegistry(conn))
    return ChangeSource(SpoolFollower(spool), builder, poll_min=POLL, poll_max=POLL,
                        watcher=SpoolWatcher(spool))  # fmt: skip


async def wait_for_lsn(source: ChangeSource, lsn: int, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while source.last_lsn < lsn:
            await asyncio.sleep(0.01)


def test_appends_creation_and_prunes_wake_the_source(tmp_path: Path) -> None:
    spool = tmp_path / "data.rdb.logical.wal"
    source = slow_polling_source(tmp_path, spool)

    async def scenario() -> None:
        source.start()
        await asyncio.sleep(0.1)  # the first (empty) poll is behind us: sleeping for a minute
        kit = SpoolKit(spool)  # the spool appears
        kit.insert("t", v=1)
        await wait_for_lsn(source, 1)
        kit.insert("t", v=2)
        await wait_for_lsn(source, 2)
        kit.close()

        pruned = tmp_path / "pruned.rdb.logical.wal"
        copy = SpoolKit(pruned, lsn=2)
        copy.insert("t", v=3)
        copy.close()
        os.rename(pruned, spool)  # RedDB's prune: a shorter copy renamed over the spool
        await wait_for_lsn(source, 3)
        await source.stop()

    asyncio.run(scenario())
    assert source.last_lsn == 3


def test_without_inotify_the_source_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_inotify(name: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if name == "inotify_simple":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_inotify)
    spool = tmp_path / "data.rdb.logical.wal"
    kit = SpoolKit(spool)
    kit.insert("t", v=1)
    kit.close()
    conn = open_state(tmp_path / "state")
    builder = TransactionBuilder(IdentityMap(conn), RelationRegistry(conn))
    source = ChangeSource(SpoolFollower(spool), builder, watcher=SpoolWatcher(spool))

    async def scenario() -> bool:
        started = source.watcher.start(source.wake)
        source.start()
        await wait_for_lsn(source, 1)
        await source.stop()
        return started

    assert asyncio.run(scenario()) is False
    assert source.last_lsn == 1
