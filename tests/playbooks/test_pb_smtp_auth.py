"""SMTP credentials never cross the network in clear text (notify_email against a real aiosmtpd)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pydantic import SecretStr, ValidationError

from soclite.config import SmtpSettings, load_settings
from soclite.errors import ConfigError
from soclite.playbooks.outbox import ActionStatus
from soclite.playbooks.worker import Worker
from tests.playbooks.support import build_runtime, make_settings


class Recorder:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_config_refuses_a_password_without_tls(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"neither smtp\.starttls nor smtp\.ssl"):
        SmtpSettings(username="soc", password=SecretStr("pw"))
    with pytest.raises(ValidationError, match=r"either smtp\.ssl"):
        SmtpSettings(ssl=True, starttls=True)
    config = tmp_path / "soclite.yml"
    config.write_text("smtp:\n  host: mail.tinh.gov.vn\n  username: soc\n  password: pw\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="smtp") as info:
        load_settings(config, data_dir=tmp_path)
    assert str(config) in str(info.value)
    assert SmtpSettings(username="soc", password=SecretStr("pw"), allow_plaintext_auth=True).allow_plaintext_auth
    assert SmtpSettings(username="soc", password=SecretStr("pw"), ssl=True).ssl


def test_notify_email_refuses_to_log_in_in_clear_text(tmp_path: Path) -> None:
    """Settings changed in code (no validation) still cannot send the password: the action fails for good."""
    attempts: list[str] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        attempts.append(mechanism)
        return AuthResult(success=True)

    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    smtp = SmtpSettings(host="127.0.0.1", port=port).model_copy(
        update={"username": "soc", "password": SecretStr("secret-pw")})
    runtime = build_runtime(make_settings(tmp_path, smtp=SmtpSettings(host="127.0.0.1", port=port)))
    runtime.settings.smtp = smtp
    try:
        record = runtime.outbox.submit("notify_email", {"to": ["soc@tinh.gov.vn"]}, idempotency_key="m1",
                                       requested_by="t")
        Worker(runtime).run_once()
        row = runtime.outbox.get(record.id)
        assert row.status == ActionStatus.DEAD and "clear text" in str(row.last_error)
        assert attempts == [] and recorder.messages == []
        # Without credentials (a local relay) mail goes out as before.
        runtime.settings.smtp = SmtpSettings(host="127.0.0.1", port=port)
        record = runtime.outbox.submit("notify_email", {"to": ["soc@tinh.gov.vn"]}, idempotency_key="m2",
                                       requested_by="t")
        Worker(runtime).run_once()
        assert runtime.outbox.get(record.id).status == ActionStatus.SUCCEEDED
        assert len(recorder.messages) == 1 and attempts == []
    finally:
        controller.stop()
        runtime.outbox.close()
        runtime.commands.close()
        runtime.close()
