import json
from pathlib import Path

import pytest

from pgshim.cli import main
from pgshim.spool.frames import build_frame


def test_generate_inspect_dump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_file = tmp_path / "data.rdb"
    assert main(["spool", "generate", str(data_file), "--records", "200", "--seed", "2"]) == 0
    spool = tmp_path / "data.rdb.logical.wal"
    assert spool.exists()
    capsys.readouterr()

    assert main(["spool", "inspect", str(data_file)]) == 0
    report = capsys.readouterr().out
    assert "v3-41 x200" in report
    assert "records      200" in report
    assert "users" in report and "corrupt      -" in report

    assert main(["spool", "dump", str(spool), "--format", "json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 200
    inserts = [x for x in lines if x.get("operation") == "insert"]
    assert inserts[0]["rows"][0]["columns"]
    deletes = [x for x in lines if x.get("operation") == "delete"]
    assert deletes and all(d["key"] is not None for d in deletes)

    last = max(x["lsn"] for x in lines)
    assert main(["spool", "dump", str(data_file), "--from", str(last - 5)]) == 0
    text = capsys.readouterr().out
    dumped = [int(line.split()[0][4:]) for line in text.splitlines() if line.startswith("lsn=")]
    assert dumped and all(lsn > last - 5 for lsn in dumped)


def test_generate_appends_after_the_last_lsn(tmp_path: Path) -> None:
    spool = tmp_path / "x.logical.wal"
    assert main(["spool", "generate", str(spool), "--records", "10", "--version", "2"]) == 0
    assert main(["spool", "generate", str(spool), "--records", "10"]) == 0
    from pgshim.spool.follower import SpoolFollower

    frames = SpoolFollower(spool).poll()
    assert {f.layout for f in frames} == {"v2", "v3-41"}
    assert len({f.lsn for f in frames}) == 20


def test_inspect_reports_corruption(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "bad.logical.wal"
    good = build_frame("v2", 1, b'{"collection":"c","lsn":1,"operation":"insert","rid":1}')
    spool.write_bytes(good + b"RDLW\x07" + b"\0" * 40)
    assert main(["spool", "inspect", str(spool)]) == 1
    out = capsys.readouterr().out
    assert f"offset {len(good)}: unknown frame version 7" in out


def test_inspect_missing_spool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spool", "inspect", str(tmp_path / "none.rdb")]) == 1
    assert "no spool" in capsys.readouterr().out


def test_dump_from_an_lsn_stops_at_a_bad_frame_with_its_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_file = tmp_path / "data.rdb"
    assert main(["spool", "generate", str(data_file), "--records", "50", "--seed", "3"]) == 0
    spool = tmp_path / "data.rdb.logical.wal"
    raw = bytearray(spool.read_bytes())
    raw[len(raw) // 2] ^= 0x5A  # a bad sector in the middle: records follow it
    spool.write_bytes(bytes(raw))
    capsys.readouterr()
    assert main(["spool", "dump", str(data_file), "--from", "40"]) == 1
    err = capsys.readouterr().err
    assert f'invalid page in RedDB spool "{spool}" at byte offset' in err
