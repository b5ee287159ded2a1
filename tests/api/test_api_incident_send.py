"""Sending an incident's notice (issue 17): the pre-filled or edited text e-mailed through the outbox to a real
SMTP receiver, a receipt per recipient (SHA-256 of the text, time, recipient, delivery status), the stage marked
done; bad input refused with nothing sent."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

from soclite.api.app import create_app
from soclite.playbooks.worker import Worker
from tests.playbooks.support import build_runtime, make_settings, wait_for
from tests.reports.smtp import free_port, start_smtp


def test_send_initial_notice_keeps_receipts_and_marks_the_stage(tmp_path: Path) -> None:
    port = free_port()
    controller, inbox = start_smtp(port)
    runtime = build_runtime(make_settings(tmp_path, smtp={"host": "127.0.0.1", "port": port,
                                                          "sender": "soc@tinh.gov.vn"}))
    token = runtime.identity.create_token(role="analyst", name="ana")
    headers = {"Authorization": f"Bearer {token}"}
    worker = Worker(runtime, poll_seconds=0.05)
    try:
        with TestClient(create_app(runtime)) as client:
            incident = client.post("/api/v1/incidents", json={"title": "Mã độc tống tiền tại Sở Y tế"},
                                   headers=headers).json()
            url = f"/api/v1/incidents/{incident['id']}/send"
            # bad input: an unknown notice, a bad address: refused, nothing queued nor recorded
            assert client.post(url, json={"kind": "memo", "to": ["a@b.vn"]}, headers=headers).status_code == 400
            assert client.post(url, json={"kind": "initial_notice", "to": ["not-an-address"]},
                               headers=headers).status_code == 422
            assert client.get(f"/api/v1/incidents/{incident['id']}", headers=headers).json()["sends"] == []

            text = client.get(f"/api/v1/incidents/{incident['id']}/notice?kind=initial_notice",
                              headers=headers).text + "\nGhi chú thêm của người gửi.\n"
            r = client.post(url, headers=headers, json={"kind": "initial_notice", "text": text, "mark_done": True,
                                                        "to": ["a05@bocongan.gov.vn", "lanh-dao@tinh.gov.vn"]})
            assert r.status_code == 200, r.text
            body = r.json()
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            assert sorted((s["recipient"], s["sha256"], s["sent_by"]) for s in body["sends"]) == [
                ("a05@bocongan.gov.vn", digest, "ana"), ("lanh-dao@tinh.gov.vn", digest, "ana")]
            clock = {d["name"]: d for d in body["deadlines"]}
            assert clock["initial_notice"]["state"] == "done" and clock["report_72h"]["state"] != "done"

            worker.start()
            wait_for(lambda: len(inbox.messages) >= 2, timeout=60)
            assert sorted(m["To"] for m in inbox.messages) == ["a05@bocongan.gov.vn", "lanh-dao@tinh.gov.vn"]
            assert "Ghi chú thêm của người gửi." in inbox.messages[0].get_content()
            wait_for(lambda: {s["status"] for s in client.get(f"/api/v1/incidents/{incident['id']}",
                                                              headers=headers).json()["sends"]} == {"succeeded"},
                     timeout=60)
            audit = client.get("/api/v1/audit?limit=200", headers={
                "Authorization": f"Bearer {runtime.identity.create_token(role='admin', name='root')}"}).json()
            assert any(e["action"] == "incident.send" and e["after"]["sha256"] == digest for e in audit["items"])
    finally:
        worker.stop()
        runtime.close()
        controller.stop()
