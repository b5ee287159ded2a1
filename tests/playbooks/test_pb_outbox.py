"""The durable outbox: idempotency, approval, backoff, dead letters, ordering in a lane, crash recovery.

Actions run for real against a local HTTP server (notify_webhook); time is the outbox's injected clock so
backoff is checked exactly without sleeping.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from soclite.errors import PlaybookError
from soclite.models import Host
from soclite.playbooks.outbox import ActionStatus, Outbox, RetryPolicy
from soclite.playbooks.worker import Worker
from soclite.runtime import Runtime
from tests.playbooks.support import ScriptedHTTP, wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked(runtime: Runtime, tmp_path: Path) -> tuple[Runtime, Clock]:
    clock = Clock()
    runtime.outbox.close()
    runtime.outbox = Outbox(tmp_path / "clocked-outbox.db", clock=clock)
    return runtime, clock


def webhook(server: ScriptedHTTP) -> dict[str, object]:
    return {"url": f"http://127.0.0.1:{server.port}/hook", "body": {"text": "hello"}}


def test_same_idempotency_key_returns_the_existing_row(runtime: Runtime) -> None:
    outbox = runtime.outbox
    first = outbox.submit(
        "notify_webhook", {"url": "https://example.invalid/x"}, idempotency_key="k1", requested_by="t"
    )
    again = outbox.submit(
        "notify_webhook", {"url": "https://example.invalid/y"}, idempotency_key="k1", requested_by="t"
    )
    assert again.id == first.id and again.params["url"] == "https://example.invalid/x"
    assert len(outbox.list_actions()) == 1
    with pytest.raises(PlaybookError, match="invalid parameters for notify_webhook"):
        outbox.submit("notify_webhook", {"url": "ftp://x"}, idempotency_key="k2", requested_by="t")
    with pytest.raises(PlaybookError, match="unknown action"):
        outbox.submit("format_disk", {}, idempotency_key="k3", requested_by="t")


def test_retry_with_exponential_backoff_then_dead_letter_then_manual_retry(
    clocked: tuple[Runtime, Clock],
) -> None:
    runtime, clock = clocked
    server = ScriptedHTTP(default=503)
    try:
        outbox = runtime.outbox
        worker = Worker(runtime)
        record = outbox.submit(
            "notify_webhook",
            webhook(server),
            idempotency_key="w1",
            requested_by="t",
            retry=RetryPolicy(count=3, backoff=10, factor=2),
        )
        assert worker.run_once() == 1
        row = outbox.get(record.id)
        assert row.status == ActionStatus.FAILED and row.attempts == 1 and "503" in (row.last_error or "")
        assert row.next_attempt_at == clock.now + 10
        clock.now += 9.9
        assert worker.run_once() == 0  # not due yet
        clock.now += 0.1
        assert worker.run_once() == 1
        row = outbox.get(record.id)
        assert row.attempts == 2 and row.next_attempt_at == clock.now + 20  # 10 · 2^1
        clock.now += 20
        assert worker.run_once() == 1
        row = outbox.get(record.id)
        assert row.status == ActionStatus.DEAD and row.attempts == 3
        assert len(server.requests) == 3
        assert outbox.health_warnings() == ["1 action(s) in the dead-letter list"]
        # Every attempt is in the history.
        statuses = [h.status for h in outbox.history(record.id)]
        assert statuses == ["pending", "running", "failed", "running", "failed", "running", "dead"]
        # An admin retries the dead letter after the peer is fixed.
        server.default = 200
        revived = outbox.retry(record.id, "admin")
        assert revived.status == ActionStatus.PENDING and revived.attempts == 0
        assert worker.run_once() == 1
        assert outbox.get(record.id).status == ActionStatus.SUCCEEDED
        # Each request carried the row's idempotency key so the receiver can drop repeats.
        assert {h.get("Idempotency-Key") for _, h, _ in server.requests} == {"w1"}
        with pytest.raises(PlaybookError):
            outbox.retry(record.id, "admin")  # only dead letters can be retried
    finally:
        server.close()


def test_a_4xx_dead_letters_at_once_with_the_reason(clocked: tuple[Runtime, Clock]) -> None:
    runtime, _ = clocked
    server = ScriptedHTTP(default=422)
    try:
        record = runtime.outbox.submit(
            "notify_webhook", webhook(server), idempotency_key="w2", requested_by="t"
        )
        Worker(runtime).run_once()
        row = runtime.outbox.get(record.id)
        assert row.status == ActionStatus.DEAD and row.attempts == 1
        assert "HTTP 422" in (row.last_error or "")
    finally:
        server.close()


def test_approval_gate(clocked: tuple[Runtime, Clock]) -> None:
    runtime, _ = clocked
    # an isolation needs a host with an enrolled agent (or a firewall webhook) since issue 16
    runtime.store.put_host(Host(id="ws-009", name="WS-009", agent_id="agent-ws-009"))
    outbox = runtime.outbox
    worker = Worker(runtime)
    record = outbox.submit(
        "isolate_host",
        {"host_id": "ws-009", "reason": "malware"},
        idempotency_key="iso1",
        requested_by="playbook:x",
        requires_approval=True,
    )
    assert record.status == ActionStatus.AWAITING_APPROVAL
    assert worker.run_once() == 0
    assert runtime.commands.list_for_host("ws-009") == []
    rejected = outbox.submit(
        "isolate_host",
        {"host_id": "ws-010"},
        idempotency_key="iso2",
        requested_by="playbook:x",
        requires_approval=True,
    )
    outbox.reject(rejected.id, "admin", "false positive")
    approved = outbox.approve(record.id, "admin")
    assert approved.status == ActionStatus.PENDING and approved.approved_by == "admin"
    with pytest.raises(PlaybookError):
        outbox.approve(record.id, "admin")
    assert worker.run_once() == 1
    done = outbox.get(record.id)
    assert done.status == ActionStatus.SUCCEEDED, done.last_error
    commands = runtime.commands.list_for_host("ws-009")
    assert len(commands) == 1 and commands[0].kind == "isolate" and commands[0].idempotency_key == "iso1"
    assert runtime.commands.list_for_host("ws-010") == []
    assert outbox.get(rejected.id).status == ActionStatus.REJECTED


def test_lane_is_delivered_in_order_and_a_failing_head_holds_it(clocked: tuple[Runtime, Clock]) -> None:
    runtime, clock = clocked
    outbox = runtime.outbox
    ids = [
        outbox.submit(
            "national_sync", {}, idempotency_key=f"n{i}", requested_by="t", payload={"id": str(i)}
        ).id
        for i in range(4)
    ]
    independent = outbox.submit(
        "notify_webhook", {"url": "https://example.invalid/"}, idempotency_key="x", requested_by="t"
    )
    claimed = outbox.claim_due()
    assert {r.id for r in claimed} == {ids[0], independent.id}  # only the lane's head
    assert outbox.claim_due() == []  # the head is in flight: the lane waits
    outbox.fail(ids[0], "connection refused", permanent=False)
    assert outbox.claim_due() == []  # backing off: later rows do not overtake it
    clock.now += 31
    assert [r.id for r in outbox.claim_due()] == [ids[0]]
    outbox.complete(ids[0], "ok")
    assert [r.id for r in outbox.claim_due()] == [ids[1]]
    outbox.fail(ids[1], "HTTP 400: bad object", permanent=True)  # a 4xx: dead-letter it and go on
    assert [r.id for r in outbox.claim_due()] == [ids[2]]
    # A lane row is never dead-lettered for a retryable error, however long the outage.
    for _ in range(50):
        outbox.fail(ids[2], "connection refused", permanent=False)
        clock.now += 4000
        assert [r.id for r in outbox.claim_due()] == [ids[2]]
    row = outbox.get(ids[2])
    assert row.status == ActionStatus.RUNNING and row.attempts == 51
    assert outbox.get(ids[1]).status == ActionStatus.DEAD


def test_interrupted_rows_run_again_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    record = outbox.submit(
        "notify_webhook", {"url": "https://example.invalid/"}, idempotency_key="r", requested_by="t"
    )
    assert [r.id for r in outbox.claim_due()] == [record.id]
    outbox.close()  # "crash" while running
    reopened = Outbox(path)
    assert reopened.recover() == 1
    assert [r.id for r in reopened.claim_due()] == [record.id]
    assert reopened.get(record.id).attempts == 2
    reopened.close()


def test_worker_thread_runs_submitted_actions(runtime: Runtime) -> None:
    server = ScriptedHTTP(statuses=[500], default=200)
    worker = Worker(runtime, poll_seconds=0.05)
    worker.start()
    try:
        record = runtime.outbox.submit(
            "notify_webhook",
            webhook(server),
            idempotency_key="t1",
            requested_by="t",
            retry=RetryPolicy(count=3, backoff=0.2, factor=1),
        )
        wait_for(lambda: runtime.outbox.get(record.id).status == ActionStatus.SUCCEEDED, timeout=10)
        assert runtime.outbox.get(record.id).attempts == 2
        assert len(server.requests) == 2
    finally:
        worker.stop()
        server.close()


def test_an_action_that_overruns_its_timeout_is_retried_and_its_late_result_ignored(
    clocked: tuple[Runtime, Clock],
) -> None:
    runtime, _ = clocked
    server = ScriptedHTTP(delay=1.0)
    try:
        record = runtime.outbox.submit(
            "notify_webhook", webhook(server), idempotency_key="slow", requested_by="t", timeout=0.2
        )
        Worker(runtime).run_once()
        row = runtime.outbox.get(record.id)
        assert row.status == ActionStatus.FAILED and row.last_error == "timed out after 0.2s"
        wait_for(lambda: len(server.requests) == 1)
        import time

        time.sleep(1.2)  # the late answer arrives; the row stays scheduled for its retry
        assert runtime.outbox.get(record.id).status == ActionStatus.FAILED
        assert "succeeded" not in [h.status for h in runtime.outbox.history(record.id)]
    finally:
        server.close()
