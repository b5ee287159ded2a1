"""notify_email (SMTP from settings.smtp) and notify_webhook (HTTPS POST, TLS verified)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

import httpx
from pydantic import Field

from playbooks.actions.base import Action, ActionContext, Options, PermanentError, RetryableError
from soclite.errors import ConfigError
from soclite.smtp import open_smtp

_DEFAULT_SUBJECT = "[soclite] {{ severity }} {{ rule_title }} — {{ host }}"
_DEFAULT_BODY = (
    "Cảnh báo / Alert: {{ rule_title }}\n"
    "Mức độ / Level: {{ level }} ({{ severity }})\n"
    "Máy / Host: {{ host }}\n"
    "Đơn vị / Unit: {{ unit }}\n"
    "Luật / Rule: {{ rule_id }}\n"
    "Lần đầu / First seen: {{ first_seen }}\n"
    "Số lần / Count: {{ count }}\n"
    "Mã cảnh báo / Alert id: {{ id }}\n"
)


class EmailOptions(Options):
    to: list[str] = Field(min_length=1)
    subject: str = _DEFAULT_SUBJECT
    body: str = _DEFAULT_BODY
    timeout: float = Field(30.0, gt=0)


class NotifyEmail(Action):
    name = "notify_email"
    options = EmailOptions

    def execute(self, ctx: ActionContext, options: Options) -> str:
        assert isinstance(options, EmailOptions)
        smtp = ctx.runtime.settings.smtp
        message = EmailMessage()
        message["From"] = smtp.sender
        message["To"] = ", ".join(options.to)
        message["Subject"] = options.subject
        # The outbox row id makes a redelivered message recognisable by the reader's mail client.
        message["Message-ID"] = f"<{ctx.record.idempotency_key.replace(':', '.')}@soclite>"
        message.set_content(options.body)
        try:
            with open_smtp(smtp, timeout=options.timeout) as client:
                client.send_message(message)
        except ConfigError as exc:  # credentials without TLS: retrying will not help
            raise PermanentError(str(exc)) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(f"recipients refused: {exc.recipients}") from exc
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise PermanentError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
            raise RetryableError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise RetryableError(f"SMTP {smtp.host}:{smtp.port}: {exc}") from exc
        return f"mail sent to {len(options.to)} recipient(s)"


class WebhookOptions(Options):
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    #: extra JSON fields sent beside the alert
    body: dict[str, Any] = Field(default_factory=dict)
    include_alert: bool = True
    #: a CA bundle path to trust instead of the system store; verification is never turned off
    ca_certs: str | None = None
    timeout: float = Field(30.0, gt=0)


class NotifyWebhook(Action):
    name = "notify_webhook"
    options = WebhookOptions

    def execute(self, ctx: ActionContext, options: Options) -> str:
        assert isinstance(options, WebhookOptions)
        payload: dict[str, Any] = dict(options.body)
        if options.include_alert and ctx.alert is not None:
            payload["alert"] = ctx.alert
        headers = {"Idempotency-Key": ctx.record.idempotency_key, **options.headers}
        verify: ssl.SSLContext | bool = True
        if options.ca_certs:
            verify = ssl.create_default_context(cafile=options.ca_certs)
        try:
            response = httpx.post(
                options.url, json=payload, headers=headers, timeout=options.timeout, verify=verify
            )
        except httpx.HTTPError as exc:
            raise RetryableError(f"webhook {options.url}: {exc}") from exc
        if response.status_code in (408, 425, 429) or response.status_code >= 500:
            raise RetryableError(f"webhook {options.url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"webhook {options.url}: HTTP {response.status_code}: {response.text[:200]}")
        return f"webhook HTTP {response.status_code}"


EXPORTED: list[type[Action]] = [NotifyEmail, NotifyWebhook]
