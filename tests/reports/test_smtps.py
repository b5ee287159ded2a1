"""Report delivery over SMTPS with a login (aiosmtpd with implicit TLS, a test CA trusted via SSL_CERT_FILE)."""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pydantic import SecretStr

from soclite.config import SmtpSettings
from soclite.errors import ConfigError
from soclite.reports.delivery import send_smtp
from tests.playbooks.pki import make_pki
from tests.reports.smtp import Inbox, free_port


def _message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "soc@tinh.gov.vn", "lanh-dao@tinh.gov.vn", "Báo cáo"
    msg.set_content("Tổng số cảnh báo: 69.600")
    return msg


def test_smtps_login_and_clear_text_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = make_pki(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(pki["ca"]))  # the system trust store, as an operator would extend it
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki["server_cert"], pki["server_key"])
    inbox = Inbox()
    port = free_port()
    # auth_require_tls=False: aiosmtpd only counts STARTTLS as TLS; this whole session is TLS (implicit).
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=context, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    try:
        smtps = SmtpSettings(host="127.0.0.1", port=port, username="soc", password=SecretStr("s3cret"), ssl=True)
        send_smtp(smtps, _message(), timeout=10)
        assert logins == [(b"soc", b"s3cret")] and len(inbox.messages) == 1
        # The same credentials without TLS (settings changed in code, so unvalidated): refused before connecting.
        clear = smtps.model_copy(update={"ssl": False})
        with pytest.raises(ConfigError, match="clear text"):
            send_smtp(clear, _message(), timeout=10)
        assert len(logins) == 1 and len(inbox.messages) == 1
    finally:
        controller.stop()
