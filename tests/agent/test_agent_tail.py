"""Tailing: complete lines only, offsets across restarts, rotation by rename (live and while down),
truncation — each checked as "every line exactly once"."""

from __future__ import annotations

import os
from pathlib import Path

from soclite.collectors.agent.spool import Spool
from soclite.collectors.agent.tail import FileTailer


def drain(tailer: FileTailer, spool: Spool | None = None, limit: int = 100) -> list[str]:
    """Read until nothing more comes, committing each chunk (into the spool when given)."""
    out: list[str] = []
    for _ in range(50):
        tailer.read(limit)
        chunk = tailer.take()
        if chunk is None:
            tailer.read(limit)
            if tailer.take() is None:
                break
            continue
        if spool is not None:
            spool.put(
                f"b{len(out)}-{chunk.start}-{chunk.inode}", chunk.source, len(chunk.lines), b"x", chunk.offset
            )
        tailer.commit(chunk)
        out.extend(chunk.lines)
    return out


def write(path: Path, text: str, mode: str = "a") -> None:
    with open(path, mode, encoding="utf-8") as fh:
        fh.write(text)


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "one\ntw")
    tailer = FileTailer(log, None)
    assert drain(tailer) == ["one"]
    write(log, "o\nthree\n")
    assert drain(tailer) == ["two", "three"]


def test_offsets_survive_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "".join(f"line {i}\n" for i in range(10)))
    spool = Spool(tmp_path / "spool.db", 10**6)
    first = FileTailer(log, spool.offset(f"file:{log}"))
    assert drain(first, spool) == [f"line {i}" for i in range(10)]
    first.close()
    write(log, "line 10\nline 11\n")
    second = FileTailer(log, spool.offset(f"file:{log}"))
    assert drain(second, spool) == ["line 10", "line 11"]
    stored = spool.offset(f"file:{log}")
    assert (
        stored is not None and stored.inode == os.stat(log).st_ino and stored.position == log.stat().st_size
    )
    second.close()
    spool.close()


def test_rotation_by_rename_while_running(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    write(log, "a1\na2\n")
    tailer = FileTailer(log, None)
    assert drain(tailer) == ["a1", "a2"]
    write(log, "a3\na4-no-newline")  # the writer's last words before logrotate
    os.rename(log, tmp_path / "auth.log.1")
    write(log, "b1\nb2\n", "w")
    assert drain(tailer) == ["a3", "a4-no-newline", "b1", "b2"]
    write(log, "b3\n")
    assert drain(tailer) == ["b3"]
    tailer.close()


def test_rotation_while_the_agent_was_down_finishes_the_old_file_first(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    spool = Spool(tmp_path / "spool.db", 10**6)
    write(log, "old1\n")
    tailer = FileTailer(log, spool.offset(f"file:{log}"))
    assert drain(tailer, spool) == ["old1"]
    tailer.close()
    # agent down: more lines, rotation, new file
    write(log, "old2\n")
    os.rename(log, tmp_path / "syslog.1")
    write(log, "new1\n", "w")
    restarted = FileTailer(log, spool.offset(f"file:{log}"))
    assert drain(restarted, spool) == ["old2", "new1"]
    restarted.close()
    spool.close()


def test_truncation_restarts_at_zero_with_a_new_generation(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "first line that is long\nsecond line\n")
    tailer = FileTailer(log, None)
    assert drain(tailer) == ["first line that is long", "second line"]
    generation = tailer.generation
    inode = tailer.inode
    write(log, "after truncate\n", "w")  # copytruncate: same inode, shorter
    assert os.stat(log).st_ino == inode
    assert drain(tailer) == ["after truncate"]
    assert tailer.generation == generation + 1


def test_truncated_while_down_is_read_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    spool = Spool(tmp_path / "spool.db", 10**6)
    write(log, "x" * 50 + "\n")
    tailer = FileTailer(log, None)
    assert len(drain(tailer, spool)) == 1
    tailer.close()
    write(log, "short\n", "w")
    again = FileTailer(log, spool.offset(f"file:{log}"))
    assert drain(again, spool) == ["short"]
    again.close()
    spool.close()


def test_start_at_end_skips_history(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    write(log, "history\n")
    tailer = FileTailer(log, None, start_at="end")
    assert drain(tailer) == []
    write(log, "fresh\n")
    assert drain(tailer) == ["fresh"]


def test_overlong_line_is_cut_not_stuck(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, "y" * 700 + "\nok\n")
    tailer = FileTailer(log, None, max_line_bytes=256)
    lines = drain(tailer)
    assert "".join(lines[:-1]) == "y" * 700 and lines[-1] == "ok"


def test_missing_file_is_picked_up_when_it_appears(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    tailer = FileTailer(log, None)
    assert drain(tailer) == []
    write(log, "hello\n")
    assert drain(tailer) == ["hello"]
