"""Settings: one typed model, read once, injected.

Sources, later ones winning: defaults, the YAML file given with ``--config``
(or ``SOCLITE_CONFIG``), then ``SOCLITE_*`` environment variables with ``__``
between nested keys (``SOCLITE_STORE__KIND=opensearch``).

Nothing here is built at import time: :func:`load_settings` is called by the
CLI and by the app factory, and tests pass their own :class:`Settings`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from soclite.config.reports import (
    AnnualReportSettings,
    ComplianceSettings,
    ReportFormat,
    ReportSchedule,
    ReportSettings,
    ReviewSettings,
    SignerSettings,
    TrendSettings,
)
from soclite.errors import ConfigError

#: The installed package: its data (dashboards/, rules/, playbooks/) ships inside it. In a checkout
#: those folders live at the repository's top level and ``soclite/`` links to them.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # soclite/ (this is soclite/config/__init__.py)


#: A production secret key: at least this long (a 32-character random hex string carries 128 bits) ...
MIN_SECRET_KEY_LENGTH = 32
#: ... and not a repetition of a few characters (random hex of that length shows ~14 distinct ones).
MIN_SECRET_KEY_DISTINCT = 10


class SourceMapping(BaseModel):
    """One entry of the source map: which host and unit a syslog or HTTP sender speaks for.

    A sender is matched by its address (``network``: an address or a CIDR) or, over TLS, by the
    subject common name of its client certificate (``tls_subject``). With ``host`` set, every event of
    the sender is that host's (a host name in the message is kept as ``host.reported_name``); without
    it the sender is a relay and the message's own host name stays, but the unit is still ``unit``.
    """

    model_config = {"extra": "forbid"}

    network: str | None = None
    tls_subject: str | None = Field(None, min_length=1)
    host: str | None = Field(None, min_length=1, max_length=255)
    unit: str = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_key(self) -> SourceMapping:
        if (self.network is None) == (self.tls_subject is None):
            raise ValueError("a source mapping needs exactly one of network or tls_subject")
        if self.network is not None:
            try:
                ipaddress.ip_network(self.network, strict=False)
            except ValueError as exc:
                raise ValueError(f"network {self.network!r} is not an address or CIDR: {exc}") from exc
        return self


def _networks(value: list[str]) -> list[str]:
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an address or CIDR: {exc}") from exc
    return value


class ServerSettings(BaseModel):
    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=1, le=65535)
    #: Address the syslog listeners bind to. Loopback by default: syslog has no login, so exposing it
    #: is a deliberate choice (set the address of the collection network's interface, and syslog_allow).
    syslog_host: str = "127.0.0.1"
    #: Sender networks (addresses or CIDRs) syslog accepts; empty = any sender that reaches syslog_host.
    #: Refused datagrams and connections are counted (/metrics, /health).
    syslog_allow: list[str] = Field(default_factory=list)
    #: Messages a syslog input holds while the journal is busy. UDP drops (and counts) past it;
    #: TCP/TLS stop reading from their connections instead (the sender's kernel buffers, then it waits).
    syslog_queue_messages: int = Field(20_000, ge=100)
    #: Which host and unit each syslog/HTTP sender speaks for (first match wins).
    sources: list[SourceMapping] = Field(default_factory=list)
    #: The unit of events from senders the source map does not know.
    unassigned_unit: str = Field("unassigned", min_length=1, max_length=64)
    #: PEM bundle of the CAs whose client certificates syslog over TLS asks for (for tls_subject mappings).
    syslog_tls_client_ca: Path | None = None
    #: UDP and TCP syslog; 0 disables the listeners.
    syslog_port: int = Field(5514, ge=0, le=65535)
    #: RFC 5425 syslog over TLS; 0 disables it. Needs tls_cert and tls_key.
    syslog_tls_port: int = Field(0, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Largest syslog message kept whole; longer ones are truncated and flagged.
    max_message_bytes: int = Field(65536, ge=1024)
    #: HTTP ingest: largest decompressed batch and most lines in one (413 past either).
    max_batch_bytes: int = Field(32 * 1024 * 1024, ge=64 * 1024)
    max_batch_lines: int = Field(50_000, ge=1)
    #: HTTP ingest: batches one sender may have in progress at once (429 + Retry-After past it).
    max_concurrent_batches: int = Field(2, ge=1)
    #: An event time further than this in the future of its reception is replaced by the reception
    #: time (the sender's value kept in soclite.original_timestamp): a 2099 clock must not pin alerts on top.
    max_future_skew_seconds: int = Field(300, ge=0)
    #: ...and likewise further than this many days in the past (spooled agents legitimately send old events).
    max_past_skew_days: int = Field(365, ge=1)
    #: Public URL agents use to reach this server (sent back at enrollment).
    public_url: str | None = None
    #: Run the pipeline (journal → correlator → store → playbooks) in a child process so it does not share
    #: the GIL with ingest and the API (``soclite.pipeline_process``); false keeps it on a thread in-process.
    pipeline_process: bool = True
    #: Check every database of the data directory (PRAGMA quick_check) before starting; off only when a
    #: very large events.db makes start-up too slow and `soclite db check` is run on a schedule instead.
    check_databases_at_start: bool = True

    @field_validator("syslog_allow")
    @classmethod
    def _allow_networks(cls, value: list[str]) -> list[str]:
        return _networks(value)

    #: With pipeline_process: bulk event storage (the journal's "storage" consumer) in a child of its own
    #: (``soclite.storage_worker``), off the detection child's GIL; false runs it on a thread of that child.
    storage_process: bool = True


class StoreSettings(BaseModel):
    kind: Literal["sqlite", "opensearch"] = "sqlite"
    #: OpenSearch cluster URL(s); only with kind=opensearch.
    #: In the environment (SOCLITE_STORE__OPENSEARCH_URL) a plain comma-separated list, not JSON.
    opensearch_url: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["https://localhost:9200"])
    opensearch_username: str | None = None
    opensearch_password: SecretStr | None = None
    #: TLS verification is on by default; point ca_certs at the cluster's CA instead of turning it off.
    verify_certs: bool = True
    ca_certs: Path | None = None
    index_prefix: str = "soclite"
    #: OpenSearch replicas of every index soclite creates. None: 1 when the cluster has two or more data
    #: nodes (a lost node loses no acknowledged write), 0 on a single node (which could never place a
    #: replica and would stay yellow).
    opensearch_replicas: int | None = Field(None, ge=0)
    #: Days of events kept before whole daily indices / rows are deleted.
    retention_days: int = Field(180, ge=1)
    #: Embedded store: whole days of events older than this leave the store for the cold archive
    #: (data_dir/archive, compressed, hash-chained daily segments) at ``soclite archive run``.
    hot_days: int = Field(30, ge=1)
    #: Embedded store: the scheduled retention job archives those days (as ``soclite archive run``) before it
    #: deletes anything, so no event leaves the hot store unarchived; false: events older than their
    #: retention are deleted from the hot store directly.
    archive: bool = True
    #: Hour of the day (site zone) the retention job runs.
    retention_hour: int = Field(2, ge=0, le=23)

    #: Allow a user name and password over plain http:// (they would cross the network in clear).
    allow_plaintext_auth: bool = False

    @field_validator("opensearch_url", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)  # a JSON list still works (a ValueError names the key)
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _no_credentials_in_clear(self) -> StoreSettings:
        has_credentials = self.opensearch_username is not None or self.opensearch_password is not None
        plain = [url for url in self.opensearch_url if url.lower().startswith("http://")]
        if self.kind == "opensearch" and has_credentials and plain and not self.allow_plaintext_auth:
            raise ValueError(
                f"credentials would be sent in clear text to {plain[0]}: use https:// "
                "(or set allow_plaintext_auth: true on a network you trust)"
            )
        return self


class JournalSettings(BaseModel):
    #: Disk bound of the ingest journal; ingest is refused (503, never dropped) at the bound.
    max_bytes: int = Field(2 * 1024**3, ge=1024 * 1024)
    #: Share of max_bytes at which /health reports a warning.
    warn_ratio: float = Field(0.8, gt=0, le=1)
    #: Dead letters' own bound (not part of max_bytes: malformed input must not block ingest);
    #: past it the oldest are evicted at compaction (counted, reported by /health).
    deadletter_max_bytes: int = Field(200 * 1024**2, ge=64 * 1024)
    #: Dead letters older than this many days are deleted at compaction.
    deadletter_days: int = Field(30, ge=1)
    #: Events a journal consumer (detection, storage) may be behind before /health says "degraded".
    lag_degraded: int = Field(100_000, ge=1)


class CorrelatorSettings(BaseModel):
    #: Sigma rule files or folders (recursive).
    rules: list[Path] = Field(default_factory=lambda: [PACKAGE_ROOT / "rules"])
    #: Sigma filter (site tuning) files or folders.
    filters: list[Path] = Field(default_factory=list)
    #: Values for the `expand` modifier's %placeholders%.
    placeholders: dict[str, list[str]] = Field(default_factory=dict)
    #: Alerts with the same fingerprint within this many seconds are grouped.
    group_window_seconds: int = Field(3600, ge=0)
    #: IoC list files (one value per line or JSON), reloaded when they change.
    ioc_files: list[Path] = Field(default_factory=list)


class SlaSettings(BaseModel):
    """Minutes allowed to resolve an alert, per severity bucket."""

    high: int = Field(240, ge=1)
    medium: int = Field(1440, ge=1)
    low: int = Field(4320, ge=1)


class AuthSettings(BaseModel):
    #: Signs session cookies and CSRF tokens. Must be set outside development.
    secret_key: SecretStr = SecretStr("dev-insecure-secret-key-change-me")
    session_minutes: int = Field(480, ge=5)
    login_attempts_per_minute: int = Field(5, ge=1)
    #: Consecutive failed logins after which an account is locked until an admin unlocks it
    #: (``soclite user unlock`` or ``POST /api/v1/users/{name}/unlock``); 0 = never lock.
    lockout_failures: int = Field(10, ge=0)
    #: Cookies carry the Secure flag; turn off only for plain-HTTP development.
    secure_cookies: bool = True
    #: zxcvbn strength (0-4) a new password needs; 3 = "safely unguessable".
    min_password_score: int = Field(3, ge=0, le=4)
    #: Lifetime of a person's bearer token when ``--days`` is not given, and the most it may ask for.
    token_days: int = Field(90, ge=1)
    token_max_days: int = Field(365, ge=1)
    #: Reverse proxies (IP or CIDR) whose X-Forwarded-For is believed for the client address
    #: (login throttle, audit). Any other peer's header is ignored: a client could forge it.
    trusted_proxies: list[str] = Field(default_factory=list)
    #: Serve /docs and /openapi.json without login (off: they map the attack surface).
    public_docs: bool = False

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"auth.trusted_proxies: {entry!r} is not an IP address or CIDR network") from None
        return value

    @model_validator(mode="after")
    def _token_days(self) -> AuthSettings:
        if self.token_days > self.token_max_days:
            raise ValueError(f"auth.token_days ({self.token_days}) exceeds auth.token_max_days ({self.token_max_days})")
        return self


class SmtpSettings(BaseModel):
    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    #: SMTPS (implicit TLS, usually port 465) instead of STARTTLS
    ssl: bool = False
    #: log in over a clear-text connection anyway (only for a trusted local relay); off by default
    allow_plaintext_auth: bool = False
    sender: str = "soclite@localhost"

    @model_validator(mode="after")
    def _no_clear_text_password(self) -> SmtpSettings:
        """Credentials are only sent over TLS: an unauthenticated local relay needs neither."""
        if self.ssl and self.starttls:
            raise ValueError("set either smtp.ssl (SMTPS) or smtp.starttls, not both")
        if self.has_credentials() and not (self.ssl or self.starttls or self.allow_plaintext_auth):
            raise ValueError(
                "smtp.username/password are set but neither smtp.starttls nor smtp.ssl is on: the password "
                "would cross the network in clear text (set smtp.allow_plaintext_auth: true to accept that)"
            )
        return self

    def has_credentials(self) -> bool:
        return bool(self.username) and self.password is not None


class NationalSettings(BaseModel):
    """The national monitoring system connector."""

    enabled: bool = False
    kind: str = "taxii"
    taxii_url: str | None = None
    taxii_push_collection: str | None = None
    taxii_pull_collection: str | None = None
    https_url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    #: PEM key of the unit (JWS signing) or an HMAC secret.
    signing_key: Path | None = None
    hmac_secret: SecretStr | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    ca_certs: Path | None = None
    verify_tls: bool = True
    pseudonymize_users: bool = False
    heartbeat_seconds: int = Field(300, ge=10)
    pull_seconds: int = Field(300, ge=10)


class AgentSettings(BaseModel):
    #: A host that has not sent a heartbeat or an event for this long is offline.
    offline_after_seconds: int = Field(300, ge=10)
    #: An isolation or release command not picked up in this time expires.
    command_ttl_seconds: int = Field(3600, ge=10)


class FirewallWebhook(BaseModel):
    """A network-level isolation: the firewall (or NAC) endpoint that blocks a host by its addresses.

    soclite POSTs ``{"action": "isolate"|"release", "host", "name", "ips", "macs", "reason", "action_id"}``;
    a 2xx answer is the firewall's word that it applied the change (there is no agent to read it back).
    """

    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    #: a CA bundle to trust instead of the system store; verification is never turned off
    ca_certs: str | None = None
    timeout: float = Field(30.0, gt=0)


class ResponseSettings(BaseModel):
    """How people's response actions (isolate/release) are checked before they run."""

    #: an isolation/release asked for in the UI waits for an admin's approval in the response queue, like a
    #: playbook's; set false to make the UI's buttons act at once (the site's explicit choice)
    ui_isolation_requires_approval: bool = True
    #: the same for POST /api/v1/hosts/{id}/isolate|release (automation calls it; off by default)
    api_isolation_requires_approval: bool = False
    #: two-person rule: whoever asked for an isolation/release may not approve it
    two_person_rule: bool = False
    #: isolate hosts without an enrolled agent at the network (else such an isolation is refused)
    firewall_webhook: FirewallWebhook | None = None
    #: a malware scan the agent fetched but has not reported on after this long is "expired" (the agent
    #: died for good, or the host went away); a result that still arrives later is recorded all the same
    scan_timeout_minutes: float = Field(120.0, gt=0)
    #: per-user notification decisions (sent, dropped, digested) older than this are pruned; the ones still
    #: waiting for a digest are kept whatever their age
    notification_retention_days: int = Field(90, ge=1)


class CaseSettings(BaseModel):
    """Case attachments: how big, and which types (detected from the content, never from the name)."""

    #: an upload over this many bytes is refused with 413 and nothing of it is kept
    attachment_max_bytes: int = Field(25 * 1024 * 1024, ge=1024)
    #: refuse programs (ELF, PE/.exe/.dll, Mach-O, Java class, shell scripts with a #! line)
    refuse_executables: bool = True
    #: keep a file whose type cannot be told from its content (neither a known format nor text)
    allow_unknown_types: bool = False
    #: when set, only these detected media types are kept (e.g. ["application/pdf", "text/plain"])
    allowed_types: list[str] | None = None


class LoggingSettings(BaseModel):
    """How a soclite process logs (:func:`soclite.logs.configure_logging`)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    #: text for people; json (one object per line: time, level, logger, process, message, exc_info) for log shippers.
    format: Literal["text", "json"] = "text"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class Settings(BaseSettings):
    """The effective configuration of one soclite process."""

    model_config = SettingsConfigDict(
        env_prefix="SOCLITE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    #: development turns off the refusal of default secrets.
    environment: Literal["production", "development", "test"] = "production"
    data_dir: Path = Path("var")
    timezone: str = "Asia/Ho_Chi_Minh"
    province: str = "Tỉnh mẫu"
    language: Literal["vi", "en"] = "vi"
    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    journal: JournalSettings = Field(default_factory=JournalSettings)
    correlator: CorrelatorSettings = Field(default_factory=CorrelatorSettings)
    sla_minutes: SlaSettings = Field(default_factory=SlaSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    national: NationalSettings = Field(default_factory=NationalSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    compliance: ComplianceSettings = Field(default_factory=ComplianceSettings)
    response: ResponseSettings = Field(default_factory=ResponseSettings)
    cases: CaseSettings = Field(default_factory=CaseSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    playbooks: list[Path] = Field(default_factory=lambda: [PACKAGE_ROOT / "playbooks"])

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file (passed as init kwargs), as operators expect.
        return (env_settings, init_settings)

    @property
    def db_path(self) -> Path:
        """The embedded SQLite database (control plane, and events/alerts with kind=sqlite)."""
        return self.data_dir / "soclite.db"

    def check_secrets(self) -> None:
        """Refuse a default, short or low-entropy secret key in production.

        The key signs session cookies and CSRF tokens: whoever guesses it logs in as anyone.
        """
        if self.environment != "production":
            return
        key = self.auth.secret_key.get_secret_value()
        fix = ("set auth.secret_key in the file or SOCLITE_AUTH__SECRET_KEY to a random value, e.g. "
               "`python -c 'import secrets; print(secrets.token_urlsafe(48))'` (or run with environment: development)")
        if key.startswith("dev-insecure"):
            raise ConfigError(f"the default secret key is refused in production; {fix}",
                              source="configuration", key="auth.secret_key")
        if len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < MIN_SECRET_KEY_DISTINCT:
            raise ConfigError(
                f"auth.secret_key is too weak for production: {len(key)} characters, {len(set(key))} distinct "
                f"(at least {MIN_SECRET_KEY_LENGTH} characters with {MIN_SECRET_KEY_DISTINCT} distinct needed); {fix}",
                source="configuration", key="auth.secret_key",
            )


def _format_location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (if any) and the environment into one validated :class:`Settings`.

    Raises :class:`ConfigError` naming the file, the key and what was expected.
    """
    path = Path(config_file) if config_file else None
    if path is None and os.environ.get("SOCLITE_CONFIG"):
        path = Path(os.environ["SOCLITE_CONFIG"])
    data: dict[str, Any] = {}
    source = "environment"
    if path is not None:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file: {exc.strerror}", source=source) from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark is not None else source
            raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", source=where) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("the top level must be a mapping of keys to values", source=source)
        data = loaded
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _format_location(first["loc"])
        env_key = "SOCLITE_" + key.upper().replace(".", "__")
        origin = source
        if env_key in os.environ:
            origin = f"environment variable {env_key}"
        expected = first["msg"]
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise ConfigError(f"{expected}{more}", source=origin, key=key) from exc


_SECRET_MASK = "********"


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, secrets masked (for `soclite config show`)."""

    def walk(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return _SECRET_MASK
        if isinstance(value, BaseModel):
            return {name: walk(getattr(value, name)) for name in type(value).model_fields}
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    result = walk(settings)
    assert isinstance(result, dict)
    return result


def load_cli_settings(config_file: Path | None, **overrides: Any) -> Settings:
    """Load settings for a command; an invalid configuration exits with code 2 and says where."""
    import click

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return load_settings(config_file, **clean)
    except ConfigError as exc:
        click.echo(f"soclite: invalid configuration: {exc}", err=True)
        sys.exit(2)


__all__ = [
    "PACKAGE_ROOT",
    "AgentSettings",
    "AnnualReportSettings",
    "AuthSettings",
    "CaseSettings",
    "ComplianceSettings",
    "CorrelatorSettings",
    "FirewallWebhook",
    "JournalSettings",
    "LoggingSettings",
    "NationalSettings",
    "ReportFormat",
    "ReportSchedule",
    "ReportSettings",
    "ResponseSettings",
    "ReviewSettings",
    "ServerSettings",
    "Settings",
    "SignerSettings",
    "SlaSettings",
    "SmtpSettings",
    "SourceMapping",
    "StoreSettings",
    "TrendSettings",
    "load_cli_settings",
    "load_settings",
    "masked_dump",
]
