"""notify_email (SMTP from settings.smtp) and notify_webhook (HTTPS POST, TLS verified).

notify_email can attach files, but only archived reports (``data_dir/reports/…``): an action's
parameters come from playbooks and the API, so an attachment path that could point anywhere would let
whoever writes a playbook mail any file the server can read to any address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import smtplib
import ssl
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from soclite.errors import ConfigError
from soclite.playbooks.actions.base import Action, ActionContext, Options, PermanentError, RetryableError
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


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: a file inside ``data_dir/reports`` (checked when the mail is built; anything else is refused)
    path: str = Field(min_length=1)
    #: the name the reader sees: no folders
    filename: str = Field(min_length=1, max_length=200, pattern=r"^[^/\\\x00-\x1f]+$")
    content_type: str = Field(pattern=r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")
    #: when given, the file must still have this SHA-256 (the archived report, byte for byte)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


class EmailOptions(Options):
    to: list[str] = Field(min_length=1)
    subject: str = _DEFAULT_SUBJECT
    body: str = _DEFAULT_BODY
    timeout: float = Field(30.0, gt=0)
    attachments: list[Attachment] = Field(default_factory=list, max_length=10)


def attachment_root(data_dir: Path) -> Path:
    """The only folder attachments may come from: the report archive."""
    return (data_dir / "reports").resolve()


def read_attachment(data_dir: Path, attachment: Attachment) -> bytes:
    """The attachment's bytes, or PermanentError when it lies outside the report archive (symlinks and
    ``..`` resolved first), is missing, or no longer matches its SHA-256."""
    root = attachment_root(data_dir)
    try:
        path = Path(attachment.path).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise PermanentError(f"attachment {attachment.filename}: {exc}") from exc
    if not path.is_relative_to(root) or path == root or not path.is_file():
        raise PermanentError(
            f"attachment {attachment.path!r} refused: only files in the report archive ({root}) can be mailed"
        )
    data = path.read_bytes()
    if attachment.sha256 is not None and hashlib.sha256(data).hexdigest() != attachment.sha256:
        raise PermanentError(f"attachment {attachment.filename}: the file no longer matches its SHA-256")
    return data


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
        message["Message-ID"] = f"<{re.sub(r'[^A-Za-z0-9._-]', '.', ctx.record.idempotency_key)}@soclite>"
        message.set_content(options.body)
        for attachment in options.attachments:
            maintype, subtype = attachment.content_type.split("/", 1)
            message.add_attachment(
                read_attachment(ctx.runtime.settings.data_dir, attachment),
                maintype=maintype,
                subtype=subtype,
                filename=attachment.filename,
            )
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
    #: sign the body with this notification rule's secret (X-Soclite-Signature, docs/notifications.md)
    sign_with_rule: str | None = None


SIGNATURE_HEADER = "X-Soclite-Signature"
TIMESTAMP_HEADER = "X-Soclite-Timestamp"


def sign(secret: str, timestamp: str, raw: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with the secret over ``<timestamp>.<raw body>`` (the timestamp is
    signed too, so a receiver that refuses old timestamps refuses replays)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class NotifyWebhook(Action):
    name = "notify_webhook"
    options = WebhookOptions

    def execute(self, ctx: ActionContext, options: Options) -> str:
        assert isinstance(options, WebhookOptions)
        payload: dict[str, Any] = dict(options.body)
        if options.include_alert and ctx.alert is not None:
            payload["alert"] = ctx.alert
        headers = {"Idempotency-Key": ctx.record.idempotency_key, **options.headers}
        raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json"
        if options.sign_with_rule is not None:
            rules = ctx.runtime.notification_rules
            if rules is None:
                raise RetryableError("the notification rules are not available in this process")
            secret = rules.signing_secret(options.sign_with_rule)
            if secret is None:  # deleted since: nobody wants this message any more, and it cannot be signed
                raise PermanentError(f"notification rule {options.sign_with_rule} no longer exists (or has no secret)")
            stamp = str(int(time.time()))  # fresh at each attempt: a retry is not a replay
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = sign(secret, stamp, raw)
        verify: ssl.SSLContext | bool = True
        if options.ca_certs:
            verify = ssl.create_default_context(cafile=options.ca_certs)
        try:
            response = httpx.post(options.url, content=raw, headers=headers, timeout=options.timeout, verify=verify)
        except httpx.HTTPError as exc:
            raise RetryableError(f"webhook {options.url}: {exc}") from exc
        if response.status_code in (408, 425, 429) or response.status_code >= 500:
            raise RetryableError(f"webhook {options.url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"webhook {options.url}: HTTP {response.status_code}: {response.text[:200]}")
        return f"webhook HTTP {response.status_code}"


EXPORTED: list[type[Action]] = [NotifyEmail, NotifyWebhook]

__all__ = ["EXPORTED", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "NotifyEmail", "NotifyWebhook", "sign"]
