"""Unit tests: each presented version's configuration parameters, from 15's and the changes."""

from __future__ import annotations

import pytest

from pgshim.errors import PgError
from pgshim.sql import gucs


@pytest.mark.parametrize(
    ("major", "has", "lacks"),
    [
        (15, ["force_parallel_mode", "lc_collate", "old_snapshot_threshold", "extension_destdir"],
         ["debug_parallel_query", "transaction_timeout", "io_method", "file_extend_method"]),
        (16, ["debug_parallel_query", "vacuum_buffer_usage_limit", "old_snapshot_threshold",
              "file_extend_method", "output_plugin_libraries"],
         ["force_parallel_mode", "lc_collate", "transaction_timeout", "extension_destdir"]),
        (17, ["transaction_timeout", "summarize_wal", "file_extend_method"],
         ["old_snapshot_threshold", "db_user_namespace", "io_method", "extension_destdir"]),
        (18, ["io_method", "ssl_groups", "transaction_timeout"],
         ["ssl_ecdh_curve", "extension_destdir", "trace_recovery_messages"]),
    ],
)  # fmt: skip
def test_each_version_has_its_parameters(major: int, has: list[str], lacks: list[str]) -> None:
    names = {guc.name for guc in gucs.all_gucs(major)}
    assert set(has) <= names
    assert not set(lacks) & names


def test_a_changed_parameter_is_that_versions() -> None:
    assert gucs.lookup("autovacuum_max_workers", 17).context == "postmaster"
    assert gucs.lookup("autovacuum_max_workers", 18).context == "sighup"
    assert gucs.lookup("log_connections", 15).vartype == "bool"
    assert gucs.lookup("log_connections", 18).vartype == "string"
    assert gucs.parse(gucs.lookup("effective_io_concurrency", 18), "16", 18) == "16"
    assert [gucs.lookup("maintenance_work_mem", major).min_val for major in (16, 17)] == [
        "1024",
        "64",
    ]
    assert [gucs.lookup("vacuum_buffer_usage_limit", m).boot_val for m in (16, 17)] == [
        "256",
        "2048",
    ]
    assert [gucs.lookup("io_combine_limit", m).max_val for m in (17, 18)] == ["32", "128"]


@pytest.mark.parametrize(
    ("major", "message"),
    [
        (15, '-1 ms is outside the valid range for parameter "lock_timeout" (0 .. 2147483647)'),
        (16, '-1 ms is outside the valid range for parameter "lock_timeout" (0 .. 2147483647)'),
        (17, '-1 ms is outside the valid range for parameter "lock_timeout"'
             " (0 ms .. 2147483647 ms)"),
        (18, '-1 ms is outside the valid range for parameter "lock_timeout"'
             " (0 ms .. 2147483647 ms)"),
    ],
)  # fmt: skip
def test_out_of_range_names_the_bounds_unit_from_17(major: int, message: str) -> None:
    with pytest.raises(PgError) as caught:
        gucs.parse(gucs.lookup("lock_timeout", major), "-1", major)
    assert caught.value.sqlstate == "22023" and caught.value.message == message
