"""Replication command grammar: a table of input lines and expected parses, then error cases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgshim.errors import PgError
from pgshim.walsender.commands import (
    AlterSlot,
    BaseBackup,
    CreateSlot,
    DropSlot,
    IdentifySystem,
    ReadSlot,
    Show,
    StartReplication,
    TimelineHistory,
    Token,
    UploadManifest,
    is_replication_command,
    parse_command,
    tokenize,
)

SYNC_SLOT = "pg_16411_sync_16385_7712283772604212333"
PUB1 = ("publication_names", '"pub1"')

# Every replication command text seen in the PG15 transcripts, plus the variants clients use.
PARSES = [
    ("IDENTIFY_SYSTEM", IdentifySystem()),
    ("IDENTIFY_SYSTEM;", IdentifySystem()),
    ("  \n\tIDENTIFY_SYSTEM ; ", IdentifySystem()),
    ("UPLOAD_MANIFEST", UploadManifest()),
    ("SHOW data_directory_mode", Show("data_directory_mode")),
    ("SHOW data_directory_mode;", Show("data_directory_mode")),
    ("SHOW wal_level", Show("wal_level")),
    ("SHOW Wal_Segment_Size", Show("wal_segment_size")),
    ('SHOW "Mixed"', Show("Mixed")),
    ("SHOW a.b", Show("a.b")),
    ("SHOW a . b . c", Show("a.b.c")),
    ("TIMELINE_HISTORY 1", TimelineHistory(1)),
    ("TIMELINE_HISTORY 4294967295", TimelineHistory(4294967295)),
    ("READ_REPLICATION_SLOT s1", ReadSlot("s1")),
    # CREATE_REPLICATION_SLOT
    (
        'CREATE_REPLICATION_SLOT "td_slot" LOGICAL "test_decoding" ( SNAPSHOT \'nothing\')',
        CreateSlot("td_slot", plugin="test_decoding", snapshot="nothing"),
    ),
    (
        'CREATE_REPLICATION_SLOT "scram_slot" LOGICAL "test_decoding" ( SNAPSHOT \'nothing\')',
        CreateSlot("scram_slot", plugin="test_decoding", snapshot="nothing"),
    ),
    (
        'CREATE_REPLICATION_SLOT "w2j_v1" LOGICAL "wal2json" ( SNAPSHOT \'nothing\')',
        CreateSlot("w2j_v1", plugin="wal2json", snapshot="nothing"),
    ),
    (
        'CREATE_REPLICATION_SLOT "pt_pg2" LOGICAL "test_decoding"',
        CreateSlot("pt_pg2", plugin="test_decoding", snapshot="export"),
    ),
    (
        "CREATE_REPLICATION_SLOT \"sub1\" LOGICAL pgoutput (SNAPSHOT 'nothing')",
        CreateSlot("sub1", plugin="pgoutput", snapshot="nothing"),
    ),
    (
        "CREATE_REPLICATION_SLOT \"sub\" LOGICAL pgoutput (TWO_PHASE, SNAPSHOT 'nothing')",
        CreateSlot("sub", plugin="pgoutput", snapshot="nothing", two_phase=True),
    ),
    (
        f"CREATE_REPLICATION_SLOT \"{SYNC_SLOT}\" LOGICAL pgoutput (SNAPSHOT 'use')",
        CreateSlot(SYNC_SLOT, plugin="pgoutput", snapshot="use"),
    ),
    (
        'CREATE_REPLICATION_SLOT "ptsub" LOGICAL pgoutput NOEXPORT_SNAPSHOT',
        CreateSlot("ptsub", plugin="pgoutput", snapshot="nothing"),
    ),
    (
        'CREATE_REPLICATION_SLOT "pt_recv" LOGICAL "test_decoding"  NOEXPORT_SNAPSHOT',
        CreateSlot("pt_recv", plugin="test_decoding", snapshot="nothing"),
    ),
    (
        'CREATE_REPLICATION_SLOT "s" LOGICAL pgoutput TWO_PHASE USE_SNAPSHOT',
        CreateSlot("s", plugin="pgoutput", snapshot="use", two_phase=True),
    ),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL pgoutput EXPORT_SNAPSHOT",
        CreateSlot("s", plugin="pgoutput", snapshot="export"),
    ),
    (
        "CREATE_REPLICATION_SLOT s TEMPORARY LOGICAL test_decoding",
        CreateSlot("s", temporary=True, plugin="test_decoding"),
    ),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL pgoutput (two_phase 'on' , failover false)",
        CreateSlot("s", plugin="pgoutput", two_phase=True, failover=False),
    ),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL pgoutput (TWO_PHASE 1,FAILOVER)",
        CreateSlot("s", plugin="pgoutput", two_phase=True, failover=True),
    ),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL pgoutput (snapshot nothing, two_phase 0);",
        CreateSlot("s", plugin="pgoutput", snapshot="nothing"),
    ),
    ("CREATE_REPLICATION_SLOT p PHYSICAL", CreateSlot("p", kind="physical")),
    (
        "CREATE_REPLICATION_SLOT p TEMPORARY PHYSICAL RESERVE_WAL",
        CreateSlot("p", temporary=True, kind="physical", reserve_wal=True),
    ),
    (
        "CREATE_REPLICATION_SLOT p PHYSICAL (RESERVE_WAL 'off')",
        CreateSlot("p", kind="physical", reserve_wal=False),
    ),
    # DROP_REPLICATION_SLOT
    ('DROP_REPLICATION_SLOT "td_slot"', DropSlot("td_slot")),
    ('DROP_REPLICATION_SLOT "pg2_slot"', DropSlot("pg2_slot")),
    ("DROP_REPLICATION_SLOT sub1 WAIT", DropSlot("sub1", wait=True)),
    ("DROP_REPLICATION_SLOT ptsub WAIT", DropSlot("ptsub", wait=True)),
    (f"DROP_REPLICATION_SLOT {SYNC_SLOT} WAIT", DropSlot(SYNC_SLOT, wait=True)),
    ("DROP_REPLICATION_SLOT Sub1", DropSlot("sub1")),
    ('DROP_REPLICATION_SLOT "Sub1"', DropSlot("Sub1")),
    # ALTER_REPLICATION_SLOT, BASE_BACKUP
    ("ALTER_REPLICATION_SLOT s (FAILOVER)", AlterSlot("s", [("failover", None)])),
    (
        "ALTER_REPLICATION_SLOT s ( failover false, TWO_PHASE 'on' )",
        AlterSlot("s", [("failover", "false"), ("two_phase", "on")]),
    ),
    ("BASE_BACKUP", BaseBackup()),
    (
        "BASE_BACKUP (LABEL 'x''y', PROGRESS, MAX_RATE 32, WAIT 0)",
        BaseBackup([("label", "x'y"), ("progress", None), ("max_rate", 32), ("wait", 0)]),
    ),
    # START_REPLICATION (logical)
    ('START_REPLICATION SLOT "td_slot" LOGICAL 0/0', StartReplication("td_slot", "logical", 0)),
    (
        'START_REPLICATION SLOT "pt_pg2" LOGICAL 0/00000000',
        StartReplication("pt_pg2", "logical", 0),
    ),
    (
        'START_REPLICATION SLOT "td_slot" LOGICAL 0/0 ("include-xids" \'0\', "skip-empty-xacts" \'1\')',
        StartReplication(
            "td_slot", "logical", 0, options=[("include-xids", "0"), ("skip-empty-xacts", "1")]
        ),
    ),
    (
        'START_REPLICATION SLOT "td_slot" LOGICAL 0/0 ("include-timestamp", "include-xids" \'false\')',
        StartReplication(
            "td_slot",
            "logical",
            0,
            options=[("include-timestamp", None), ("include-xids", "false")],
        ),
    ),
    (
        'START_REPLICATION SLOT "pg2_slot" LOGICAL 0/00000000 ("include-xids" \'1\', "include-timestamp" \'on\')',
        StartReplication(
            "pg2_slot", "logical", 0, options=[("include-xids", "1"), ("include-timestamp", "on")]
        ),
    ),
    (
        'START_REPLICATION SLOT "pg2_slot" LOGICAL 0/00000001 ("include-xids" \'1\', "include-timestamp" \'on\')',
        StartReplication(
            "pg2_slot", "logical", 1, options=[("include-xids", "1"), ("include-timestamp", "on")]
        ),
    ),
    (
        "START_REPLICATION SLOT \"sub1\" LOGICAL 0/0 (proto_version '3', publication_names '\"pub1\"')",
        StartReplication("sub1", "logical", 0, options=[("proto_version", "3"), PUB1]),
    ),
    (
        "START_REPLICATION SLOT \"sub3\" LOGICAL 0/0 (proto_version '3', streaming 'on', publication_names '\"pub1\"', binary 'true')",
        StartReplication(
            "sub3",
            "logical",
            0,
            options=[("proto_version", "3"), ("streaming", "on"), PUB1, ("binary", "true")],
        ),
    ),
    (
        f"START_REPLICATION SLOT \"{SYNC_SLOT}\" LOGICAL 0/1DB9B70 (proto_version '3', publication_names '\"pub1\"')",
        StartReplication(SYNC_SLOT, "logical", 0x1DB9B70, options=[("proto_version", "3"), PUB1]),
    ),
    (
        'START_REPLICATION SLOT "w2j_v1" LOGICAL 0/0 ("format-version" \'1\')',
        StartReplication("w2j_v1", "logical", 0, options=[("format-version", "1")]),
    ),
    (
        "START_REPLICATION SLOT s LOGICAL 1a/ff (proto_version '4' , origin 'any' , publication_names 'p1,p2')",
        StartReplication(
            "s",
            "logical",
            (0x1A << 32) | 0xFF,
            options=[("proto_version", "4"), ("origin", "any"), ("publication_names", "p1,p2")],
        ),
    ),
    (
        "START_REPLICATION SLOT s LOGICAL FFFFFFFF/FFFFFFFF (a 'x', a 'y', B)",
        StartReplication(
            "s", "logical", 0xFFFFFFFFFFFFFFFF, options=[("a", "x"), ("a", "y"), ("b", None)]
        ),
    ),
    # START_REPLICATION (physical)
    ("START_REPLICATION 0/0", StartReplication(None, "physical", 0)),
    (
        "START_REPLICATION SLOT p PHYSICAL 1/2 TIMELINE 3",
        StartReplication("p", "physical", (1 << 32) | 2, timeline=3),
    ),
]


@pytest.mark.parametrize(("text", "expected"), PARSES, ids=[t for t, _ in PARSES])
def test_parse_table(text: str, expected: object) -> None:
    assert parse_command(text) == expected
    assert is_replication_command(text)


ERRORS = [
    # (text, sqlstate, message)
    ("IDENTIFY_SYSTEM x", "42601", "syntax error"),
    ("IDENTIFY_SYSTEM;;", "42601", "syntax error"),
    ("SHOW", "42601", "syntax error"),
    ("SHOW TIMELINE", "42601", "syntax error"),
    ("SHOW a.", "42601", "syntax error"),
    ("TIMELINE_HISTORY 0", "42601", "invalid timeline 0"),
    ("TIMELINE_HISTORY x", "42601", "syntax error"),
    ("DROP_REPLICATION_SLOT", "42601", "syntax error"),
    ("DROP_REPLICATION_SLOT s NOWAIT", "42601", "syntax error"),
    ("DROP_REPLICATION_SLOT 's'", "42601", "syntax error"),
    ("START_REPLICATION SLOT s LOGICAL 0/0 ()", "42601", "syntax error"),
    ("START_REPLICATION SLOT s LOGICAL 0/0 (a 1)", "42601", "syntax error"),
    ("START_REPLICATION SLOT s LOGICAL 0/0 (a 'x' b 'y')", "42601", "syntax error"),
    ("START_REPLICATION SLOT s LOGICAL 0/0 (a 'x',)", "42601", "syntax error"),
    ("START_REPLICATION SLOT s LOGICAL 0/0 (a 'x'", "42601", "syntax error"),
    ("START_REPLICATION SLOT s LOGICAL 0/0 (TWO_PHASE 'on')", "42601", "syntax error"),
    ("START_REPLICATION SLOT s LOGICAL 0", "42601", "syntax error"),
    ("START_REPLICATION SLOT s LOGICAL", "42601", "syntax error"),
    ("START_REPLICATION SLOT s logical 0/0", "42601", "syntax error"),
    ("START_REPLICATION SLOT s LOGICAL 100000000/0", "42601", "invalid streaming start location"),
    ("START_REPLICATION SLOT s LOGICAL 0/0 ('x')", "42601", "syntax error"),
    (
        "START_REPLICATION SLOT s LOGICAL 0/0 (a 'unterminated)",
        "42601",
        "unterminated quoted string",
    ),
    ('START_REPLICATION SLOT "s LOGICAL 0/0', "42601", "unterminated quoted string"),
    ("START_REPLICATION 0/0 TIMELINE 0", "42601", "invalid timeline 0"),
    ("CREATE_REPLICATION_SLOT s", "42601", "syntax error"),
    ("CREATE_REPLICATION_SLOT s LOGICAL", "42601", "syntax error"),
    ("CREATE_REPLICATION_SLOT s LOGICAL p (SNAPSHOT 'nothing'", "42601", "syntax error"),
    ("CREATE_REPLICATION_SLOT s LOGICAL p (SNAPSHOT 'nothing',)", "42601", "syntax error"),
    ("CREATE_REPLICATION_SLOT s LOGICAL p (SNAPSHOT 'nothing' 'use')", "42601", "syntax error"),
    ("CREATE_REPLICATION_SLOT s LOGICAL p ('snapshot')", "42601", "syntax error"),
    ("CREATE_REPLICATION_SLOT s LOGICAL p WAIT", "42601", "syntax error"),
    ("CREATE_REPLICATION_SLOT TEMPORARY s LOGICAL p", "42601", "syntax error"),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL p (SNAPSHOT 'nothing', SNAPSHOT 'use')",
        "42601",
        "conflicting or redundant options",
    ),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL p NOEXPORT_SNAPSHOT USE_SNAPSHOT",
        "42601",
        "conflicting or redundant options",
    ),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL p TWO_PHASE TWO_PHASE",
        "42601",
        "conflicting or redundant options",
    ),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL p (two_phase, TWO_PHASE false)",
        "42601",
        "conflicting or redundant options",
    ),
    ("CREATE_REPLICATION_SLOT s LOGICAL p (bogus 'x')", "XX000", "unrecognized option: bogus"),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL p RESERVE_WAL",
        "XX000",
        "unrecognized option: reserve_wal",
    ),
    ("CREATE_REPLICATION_SLOT s LOGICAL p (WAIT)", "XX000", "unrecognized option: wait"),
    ("CREATE_REPLICATION_SLOT s PHYSICAL TWO_PHASE", "XX000", "unrecognized option: two_phase"),
    (
        "CREATE_REPLICATION_SLOT s PHYSICAL (SNAPSHOT 'nothing')",
        "XX000",
        "unrecognized option: snapshot",
    ),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL p (SNAPSHOT 'later')",
        "22023",
        'unrecognized value for CREATE_REPLICATION_SLOT option "snapshot": "later"',
    ),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL p (SNAPSHOT 7)",
        "22023",
        'unrecognized value for CREATE_REPLICATION_SLOT option "snapshot": "7"',
    ),
    ("CREATE_REPLICATION_SLOT s LOGICAL p (SNAPSHOT)", "42601", "snapshot requires a parameter"),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL p (TWO_PHASE 'maybe')",
        "42601",
        "two_phase requires a Boolean value",
    ),
    (
        "CREATE_REPLICATION_SLOT s LOGICAL p (TWO_PHASE 2)",
        "42601",
        "two_phase requires a Boolean value",
    ),
    ("ALTER_REPLICATION_SLOT s", "42601", "syntax error"),
    ("ALTER_REPLICATION_SLOT s ()", "42601", "syntax error"),
    ("BASE_BACKUP LABEL 'x'", "42601", "syntax error"),
    ("UPLOAD_MANIFEST now", "42601", "syntax error"),
    ("SELECT 1", "42601", "syntax error"),
    ("identify_system", "42601", "syntax error"),
    ("", "42601", "syntax error"),
]


@pytest.mark.parametrize(("text", "sqlstate", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_parse_errors(text: str, sqlstate: str, message: str) -> None:
    with pytest.raises(PgError) as caught:
        parse_command(text)
    assert (caught.value.sqlstate, caught.value.message) == (sqlstate, message)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IDENTIFY_SYSTEM", True),
        ("  \n IDENTIFY_SYSTEM;", True),
        ("SHOW data_directory_mode", True),
        ("SHOW", True),
        ("BASE_BACKUP", True),
        ("UPLOAD_MANIFEST", True),
        ("READ_REPLICATION_SLOT s", True),
        ("TIMELINE_HISTORY 1", True),
        ("ALTER_REPLICATION_SLOT s (failover)", True),
        ("identify_system", False),
        ("Show data_directory_mode", False),
        ("show wal_level", False),
        ("SHOWX", False),
        ("IDENTIFY_SYSTEMS", False),
        ("SELECT pg_catalog.set_config('search_path', '', false);", False),
        ("BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ", False),
        ("COPY public.s_pk (id, name, val, big) TO STDOUT", False),
        ("TIMELINE 1", False),
        ("LOGICAL", False),
        ('"IDENTIFY_SYSTEM"', False),
        ("", False),
        ("   ", False),
        ("-- IDENTIFY_SYSTEM", False),
    ],
)
def test_first_token_dispatch(text: str, expected: bool) -> None:
    assert is_replication_command(text) is expected


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("0/0", [Token("RECPTR", 0)]),
        ("0/1DB9B70", [Token("RECPTR", 0x1DB9B70)]),
        ("0/1db9b70", [Token("RECPTR", 0x1DB9B70)]),
        ("DEAD/BEEF", [Token("RECPTR", (0xDEAD << 32) | 0xBEEF)]),
        ("12 ab", [Token("UCONST", 12), Token("IDENT", "ab")]),
        ("12ab", [Token("UCONST", 12), Token("IDENT", "ab")]),
        ("ABC", [Token("IDENT", "abc")]),
        ("Ab$9_", [Token("IDENT", "ab$9_")]),
        ("ÉcoLE", [Token("IDENT", "École")]),
        ('"Keep Case"', [Token("IDENT", "Keep Case")]),
        ('""', [Token("IDENT", "")]),
        ("'it''s'", [Token("SCONST", "it's")]),
        ("''", [Token("SCONST", "")]),
        ("'a\\'", [Token("SCONST", "a\\")]),
        ("SLOT SLOTS", [Token("KEYWORD", "SLOT"), Token("IDENT", "slots")]),
        (
            "a.b;",
            [Token("IDENT", "a"), Token("CHAR", "."), Token("IDENT", "b"), Token("CHAR", ";")],
        ),
        ("x" * 70, [Token("IDENT", "x" * 63)]),
        ('"' + "é" * 40 + '"', [Token("IDENT", "é" * 31)]),
    ],
)
def test_tokens(text: str, tokens: list[Token]) -> None:
    assert tokenize(text) == [*tokens, Token("EOF", "")]


@given(st.text())
def test_parser_raises_only_pg_errors(text: str) -> None:
    try:
        parse_command(text)
    except PgError as error:
        assert error.sqlstate in ("42601", "22023", "XX000")


command_words = st.sampled_from(
    [
        "IDENTIFY_SYSTEM",
        "SHOW",
        "START_REPLICATION",
        "CREATE_REPLICATION_SLOT",
        "DROP_REPLICATION_SLOT",
        "SLOT",
        "LOGICAL",
        "PHYSICAL",
        "TEMPORARY",
        "TWO_PHASE",
        "NOEXPORT_SNAPSHOT",
        "WAIT",
        "TIMELINE",
        "(",
        ")",
        ",",
        ";",
        ".",
        "0/0",
        "1A/FF",
        "7",
        "'v'",
        '"Q"',
        "snapshot",
        "'nothing'",
        "x",
    ]
)


@given(st.lists(command_words, max_size=12))
def test_parser_on_token_soup_raises_only_pg_errors(words: list[str]) -> None:
    text = " ".join(words)
    try:
        command = parse_command(text)
    except PgError as error:
        assert error.sqlstate in ("42601", "22023", "XX000")
    else:
        assert is_replication_command(text)
        assert parse_command(text) == command


slot_names = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)
option_names = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
option_values = st.none() | st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10
)


@given(
    slot_names,
    st.integers(0, 2**64 - 1),
    st.lists(st.tuples(option_names, option_values), max_size=5),
)
def test_start_replication_round_trip(
    slot: str, lsn: int, options: list[tuple[str, str | None]]
) -> None:
    rendered = ", ".join(
        f'"{name}"' + ("" if value is None else " '" + value.replace("'", "''") + "'")
        for name, value in options
    )
    text = f'START_REPLICATION SLOT "{slot}" LOGICAL {lsn >> 32:X}/{lsn & 0xFFFFFFFF:08X}'
    if options:
        text += f" ({rendered})"
    assert parse_command(text) == StartReplication(slot, "logical", lsn, options=options)
