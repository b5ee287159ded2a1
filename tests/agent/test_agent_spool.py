"""The spool: batch and offset commit together; the bound evicts oldest first and counts the loss."""

from __future__ import annotations

from pathlib import Path

from soclite.collectors.agent.spool import Offset, Spool


def test_put_stores_batch_and_offset_together(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 10**6)
    spool.put("b1", "file:/x", 3, b"abc", Offset(inode=7, position=30))
    assert spool.offset("file:/x") == Offset(inode=7, position=30)
    batch = spool.oldest()
    assert batch is not None and batch.batch_id == "b1" and batch.lines == 3
    spool.ack(batch.seq)
    assert spool.oldest() is None and spool.pending() == (0, 0)
    spool.close()
    reopened = Spool(tmp_path / "s.db", 10**6)
    assert reopened.offset("file:/x") == Offset(inode=7, position=30)
    reopened.close()


def test_same_batch_id_twice_is_spooled_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 10**6)
    spool.put("b1", "file:/x", 1, b"a", Offset(1, 10))
    spool.put("b1", "file:/x", 1, b"a", Offset(1, 10))
    assert spool.pending()[0] == 1
    spool.close()


def test_bound_evicts_oldest_first_and_counts_lines(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 64 * 1024)
    body = b"z" * 20_000
    for i in range(3):
        assert spool.put(f"b{i}", "file:/x", 10, body, Offset(1, i)) == 0
    evicted = spool.put("b3", "file:/x", 10, body, Offset(1, 3))
    assert evicted == 10
    assert spool.oldest() is not None and spool.oldest().batch_id == "b1"  # type: ignore[union-attr]
    assert spool.dropped() == 10
    spool.dropped_reported(10)
    assert spool.dropped() == 0
    spool.close()


def test_rejected_batch_is_set_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 10**6)
    spool.put("b1", "file:/x", 1, b"a", Offset(1, 1))
    spool.put("b2", "file:/x", 1, b"b", Offset(1, 2))
    first = spool.oldest()
    assert first is not None
    spool.reject(first, "HTTP 400: bad")
    assert spool.rejected() == 1
    assert spool.oldest() is not None and spool.oldest().batch_id == "b2"  # type: ignore[union-attr]
    spool.close()
