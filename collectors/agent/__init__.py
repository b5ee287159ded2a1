"""The endpoint agent: tails logs, spools them durably, ships them, and obeys isolation commands.

How a line travels (each arrow is a durable step, so a crash anywhere loses nothing
and resends nothing twice):

    file / journald ──▶ Tailer reads complete lines
        ──▶ Spool.put(batch, new offsets)   one SQLite transaction: the batch and the
                                            source offset commit together
        ──▶ Shipper sends the oldest spooled batch (gzip NDJSON, X-Batch-Id)
        ──▶ server acknowledges after its own durable write ──▶ Spool.ack deletes it

The batch id is derived from (agent, source, inode, start, end), so a batch resent
after a lost acknowledgement is recognised by the server's journal as a duplicate.

This package is imported by the agent process only through light modules:
nothing here may import fastapi, pysigma, scapy or httpx (the agent targets at most
40 MB RSS). The server side of enrollment lives in :mod:`soclite.control.agents`.
"""

from __future__ import annotations

AGENT_VERSION = "0.1.0"
