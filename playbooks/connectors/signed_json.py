"""Signed JSON over HTTPS: each message is JSON with a detached JWS (RFC 7515 appendix F) in a header.

The body is sent as is; ``X-JWS-Signature`` carries ``<protected>..<signature>`` — the compact JWS with the
payload part left empty, so the receiver verifies the exact bytes it received. Keys: the unit's EC (ES256/
ES384/ES512 by curve) or RSA (RS256) private key in PEM, or an HMAC secret (HS256). TLS is verified;
mutual TLS with ``client_cert``/``client_key``. Messages carry a stable ``id`` (the outbox idempotency key)
so the receiver can drop a resend.

Protocol (until the national one is issued): ``POST <https_url>/alerts``, ``POST <https_url>/reports``
(periodic reports: metadata, ``sha256`` and the file in ``content_base64``) and ``POST <https_url>/heartbeat``
with ``{"type", "id", "province", "sent_at", ...}``; ``GET <https_url>/indicators?after=CURSOR`` answering
``{"indicators": [{"id", "kind", "value", "active"}], "cursor": "..."}`` (404 = no indicator feed).
"""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import httpx
import orjson
from jwcrypto import jwk, jws
from jwcrypto.common import base64url_encode

from soclite.errors import ConfigError
from soclite.models import isoformat, utcnow
from soclite.playbooks.actions.base import PermanentError, RetryableError
from soclite.playbooks.connectors.base import (
    Connector,
    ConnectorOptions,
    NationalItem,
    NationalReport,
    PulledIndicator,
)

SIGNATURE_HEADER = "X-JWS-Signature"
_CURVE_ALG = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


class SignedJsonOptions(ConnectorOptions):
    https_url: str
    signing_key: Path | None = None
    verify_tls: bool = True
    ca_certs: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None


def load_signing_key(pem_path: Path | None, hmac_secret: str | None) -> tuple[jwk.JWK, str]:
    """The JWK and JWS algorithm: a PEM private key wins over an HMAC secret."""
    if pem_path is not None:
        try:
            key = jwk.JWK.from_pem(pem_path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot load the signing key {pem_path}: {exc}", key="national.signing_key"
            ) from exc
        if key.get("kty") == "EC":
            return key, _CURVE_ALG.get(str(key.get("crv")), "ES256")
        if key.get("kty") == "RSA":
            return key, "RS256"
        raise ConfigError("the signing key must be an EC or RSA private key", key="national.signing_key")
    if hmac_secret:
        if len(hmac_secret.encode("utf-8")) < 32:
            # RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
            raise ConfigError("the HMAC secret must be at least 32 bytes", key="national.hmac_secret")
        return jwk.JWK(kty="oct", k=base64url_encode(hmac_secret.encode("utf-8"))), "HS256"
    raise ConfigError("set national.signing_key (PEM) or national.hmac_secret", key="national.signing_key")


def sign_detached(payload: bytes, key: jwk.JWK, alg: str, kid: str | None = None) -> str:
    """Compact JWS with the payload part removed (RFC 7515 appendix F)."""
    token = jws.JWS(payload)
    protected: dict[str, Any] = {"alg": alg}
    if kid:
        protected["kid"] = kid
    token.add_signature(key, alg=None, protected=orjson.dumps(protected).decode())
    header, _payload, signature = token.serialize(compact=True).split(".")
    return f"{header}..{signature}"


def verify_detached(payload: bytes, detached: str, key: jwk.JWK) -> bool:
    """True when ``detached`` is a valid signature of exactly ``payload`` (what a receiver runs)."""
    header, middle, signature = [*detached.split("."), "", "", ""][:3]
    if middle:
        return False
    token = jws.JWS()
    try:
        token.deserialize(f"{header}.{base64url_encode(payload)}.{signature}")
        token.verify(key)
    except (jws.InvalidJWSSignature, jws.InvalidJWSObject, ValueError):
        return False
    return True


class SignedJsonConnector(Connector):
    name = "signed_json"
    options = SignedJsonOptions

    def __init__(self, runtime: Any) -> None:
        if not runtime.settings.national.https_url:
            raise ConfigError("required by the signed_json connector", key="national.https_url")
        super().__init__(runtime)
        assert isinstance(self.opts, SignedJsonOptions)
        self.sopts: SignedJsonOptions = self.opts
        secret = runtime.settings.national.hmac_secret
        self.key, self.alg = load_signing_key(
            self.sopts.signing_key, secret.get_secret_value() if secret is not None else None
        )
        self.client = self._client()

    def _client(self) -> httpx.Client:
        opts = self.sopts
        verify: ssl.SSLContext | bool = opts.verify_tls
        if opts.verify_tls:
            context = ssl.create_default_context(cafile=str(opts.ca_certs) if opts.ca_certs else None)
            if opts.client_cert:
                context.load_cert_chain(
                    str(opts.client_cert), str(opts.client_key) if opts.client_key else None
                )
            verify = context
        return httpx.Client(verify=verify, timeout=30.0)

    def _url(self, path: str) -> str:
        return self.sopts.https_url.rstrip("/") + path

    def _post(self, path: str, message: dict[str, Any]) -> httpx.Response:
        body = orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign_detached(body, self.key, self.alg, kid=self.settings.province),
            "Idempotency-Key": str(message["id"]),
        }
        try:
            response = self.client.post(self._url(path), content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RetryableError(f"POST {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403, 408, 425, 429) or response.status_code >= 500:
            raise RetryableError(f"POST {path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"POST {path}: HTTP {response.status_code}: {response.text[:300]}")
        return response

    def send(self, items: list[NationalItem]) -> str:
        for item in items:
            message = {
                "type": "alert",
                "id": item.key,
                "province": self.settings.province,
                "sent_at": isoformat(utcnow()),
                "alert": self.prepare(item),
            }
            response = self._post("/alerts", message)
        return f"delivered {len(items)} message(s), HTTP {response.status_code}"

    def send_report(self, report: NationalReport) -> str:
        """The file travels in the signed body (base64), so the signature covers the report itself."""
        message = {
            "type": "report",
            "id": report.key,
            "province": self.settings.province,
            "sent_at": isoformat(utcnow()),
            "report": {
                "id": report.report_id,
                "doc_number": report.doc_number,
                "period": report.period,
                "lang": report.lang,
                "created_at": report.created_at,
                "summary": report.summary,
                "query": report.params,
                "filename": report.filename,
                "content_type": report.content_type,
                "sha256": report.sha256,
                "size": len(report.content),
                "content_base64": base64.b64encode(report.content).decode("ascii"),
            },
        }
        response = self._post("/reports", message)
        return f"report {report.doc_number} delivered, HTTP {response.status_code}"

    def heartbeat(self, stats: dict[str, Any]) -> None:
        now = isoformat(utcnow())
        self._post(
            "/heartbeat",
            {
                "type": "heartbeat",
                "id": f"heartbeat:{now}",
                "province": self.settings.province,
                "sent_at": now,
                "stats": stats,
            },
        )

    def pull_indicators(self, cursor: str | None) -> tuple[list[PulledIndicator], str | None]:
        try:
            response = self.client.get(self._url("/indicators"), params={"after": cursor} if cursor else None)
        except httpx.HTTPError as exc:
            raise RetryableError(f"GET /indicators: {exc}") from exc
        if response.status_code == 404:
            return [], cursor
        if response.status_code >= 400:
            raise RetryableError(f"GET /indicators: HTTP {response.status_code}")
        data = response.json()
        found = [
            PulledIndicator(
                source_id=str(i["id"]),
                kind=i["kind"],
                value=str(i["value"]),
                active=bool(i.get("active", True)),
            )
            for i in data.get("indicators", [])
            if i.get("kind") in ("ip", "domain", "url", "hash")
        ]
        return found, data.get("cursor", cursor)
