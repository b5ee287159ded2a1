"""Opening an SMTP session the one safe way, shared by e-mail notifications and report delivery.

TLS certificates are always verified. Credentials are only sent over TLS (STARTTLS or
SMTPS): with a username/password but neither, :func:`open_smtp` refuses before
connecting (settings are validated at load too; this also covers settings built or
changed in code). An unauthenticated local relay (no credentials) keeps working.
"""

from __future__ import annotations

import smtplib
import ssl

from soclite.config import SmtpSettings
from soclite.errors import ConfigError

PLAINTEXT_AUTH_REFUSED = (
    "refusing to send SMTP credentials in clear text: turn on smtp.starttls or smtp.ssl "
    "(or set smtp.allow_plaintext_auth: true for a trusted local relay)"
)


def open_smtp(smtp: SmtpSettings, *, timeout: float = 30.0) -> smtplib.SMTP:
    """A connected (and, with credentials, logged-in) client; the caller closes it (``with``)."""
    if smtp.has_credentials() and not (smtp.ssl or smtp.starttls or smtp.allow_plaintext_auth):
        raise ConfigError(PLAINTEXT_AUTH_REFUSED, key="smtp.starttls")
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.ssl:
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
    try:
        if smtp.starttls and not smtp.ssl:
            client.starttls(context=context)
        if smtp.has_credentials():
            assert smtp.username is not None and smtp.password is not None
            client.login(smtp.username, smtp.password.get_secret_value())
    except BaseException:
        client.close()
        raise
    return client
