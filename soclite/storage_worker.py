"""The bulk event storage child: ``python -m soclite.storage_worker`` (spawned by :mod:`soclite.pipeline_process`).

Why a process of its own: the journal's "storage" consumer (:class:`soclite.event_storage.EventStorage`)
serialises and compresses every event, which is CPU-bound Python; on the detection child's interpreter it
would share the GIL with the Sigma engine and make alerts late, the one thing it must never do.

Same conventions as :mod:`soclite.pipeline_worker`: the Settings come as one JSON line on stdin, EOF on
stdin means the server is gone, SIGTERM finishes the batch in hand, and an exclusive lock on
data_dir/storage.lock keeps an orphaned child and its successor from writing at the same time (their
writes would be idempotent, but twice the work). It opens only the store and the journal: no engine,
no playbooks.
"""

from __future__ import annotations

import logging
import os
import sys

from soclite.event_storage import EventStorage
from soclite.pipeline_worker import start_child
from soclite.store import open_store
from soclite.store.journal import Journal

log = logging.getLogger(__name__)

#: events per storage batch (one store transaction per day file and one journal commit each)
BATCH_SIZE = 5000


def main() -> int:
    child = start_child("storage", "storage.lock")
    if isinstance(child, int):
        return child
    settings, stop, lock = child.settings, child.stop, child.lock
    try:
        store = open_store(settings, wait_for_remote=True)
        journal = Journal.from_settings(settings)
        try:
            storage = EventStorage(journal, store, batch_size=BATCH_SIZE)
            storage.start()
            log.info("storage worker %d running", os.getpid())
            stop.wait()
            if not storage.stop(60):
                # Do not close the store under the running batch: leave now; the batch is replayed next time.
                log.error("storage batch still running after 60s; it is replayed by the next worker")
                os._exit(1)
        finally:
            journal.close()
            store.close()
    finally:
        lock.close()
    return 0


if __name__ == "__main__":
    from soclite.storage_worker import main as _main  # the imported copy: logger soclite.storage_worker

    sys.exit(_main())
