"""Positional rows: columns declared in the configuration file, or the c1..cN fallback."""

from __future__ import annotations

import subprocess

import pytest
from spoolkit import end_pos

pytestmark = pytest.mark.timeout(60)

CONFIG = """
[collections.orders]
columns = [
  { name = "order_no", type = "bigint", source = 0 },
  { name = "item", type = "text", source = 1 },
  { name = "amount", type = "double precision", source = 2 },
]
"""


def test_declared_and_fallback_columns(spool, pgshim, tmp_path) -> None:
    config = tmp_path / "pgshim.toml"
    config.write_text(CONFIG)
    server = pgshim(spool.path, "--config", str(config))
    env = server.env_for_clients()
    subprocess.run(
        ["psql", "-X", "-c", "SELECT pgshim_create_history_slot('cols', 'test_decoding')"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    _, declared = spool.insert_positional("orders", 7, "pen", 2.5)
    _, bad = spool.insert_positional("orders", "not a number", "ink", 1.0)
    lsn, loose = spool.insert_positional("misc", "a", 1)
    out = subprocess.run(
        ["pg_recvlogical", "-d", "reddb", "-S", "cols", "--start", "-f", "-", "-o",
         "include-xids=0", "--endpos", end_pos(lsn)],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    changes = [line for line in out.stdout.splitlines() if line.startswith("table")]
    assert changes == [
        f"table public.orders: INSERT: rid[bigint]:{declared} order_no[bigint]:7 item[text]:'pen'"
        " amount[double precision]:2.5",
        # a value that does not fit its declared type is reported and sent as NULL, not mangled
        f"table public.orders: INSERT: rid[bigint]:{bad} order_no[bigint]:null item[text]:'ink'"
        " amount[double precision]:1",
        f"table public.misc: INSERT: rid[bigint]:{loose} c1[text]:'a' c2[bigint]:1",
    ]
    status = subprocess.run(
        ["psql", "-X", "-At", "-c", "SELECT decode_errors FROM pgshim_spool"],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert status.stdout.strip() == "1"
    assert "orders.order_no" in server.log()
