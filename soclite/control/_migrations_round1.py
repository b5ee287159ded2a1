"""control.db's first migrations: round 1's control.db (identity) and the files it kept apart.

Versions 1-8 of :data:`soclite.control._migrations.MIGRATIONS`, and the schemas of commands.db,
agents.db, outbox.db and reports.db, whose rows :mod:`.schema` copies into control.db when it meets
them. Appended to in :mod:`._migrations`, never edited here.
"""

from __future__ import annotations

from soclite.db import Migration

_IDENTITY = [
    """
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        unit TEXT,
        secret_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        last_used_at TEXT
    );
    """,
    # 2: local users (argon2id hashes) for the web UI
    """
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        display_name TEXT,
        role TEXT NOT NULL,
        unit TEXT,
        password_hash TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        session_version INTEGER NOT NULL DEFAULT 1,
        must_change_password INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        last_login_at TEXT
    );
    """,
    # 3: triage state kept beside identity: comments, status history, cases, exceptions
    """
    CREATE TABLE alert_comments (
        id TEXT PRIMARY KEY,
        alert_id TEXT NOT NULL,
        author TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX alert_comments_alert ON alert_comments(alert_id, created_at);
    CREATE TABLE alert_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id TEXT NOT NULL,
        actor TEXT NOT NULL,
        at TEXT NOT NULL,
        changes TEXT NOT NULL
    );
    CREATE INDEX alert_history_alert ON alert_history(alert_id, id);
    CREATE TABLE cases (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        description TEXT,
        status TEXT NOT NULL,
        severity TEXT,
        unit TEXT,
        owner TEXT,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE case_alerts (
        case_id TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
        alert_id TEXT NOT NULL,
        added_at TEXT NOT NULL,
        PRIMARY KEY (case_id, alert_id)
    );
    CREATE INDEX case_alerts_alert ON case_alerts(alert_id);
    CREATE TABLE rule_exceptions (
        id TEXT PRIMARY KEY,
        rule_id TEXT NOT NULL,
        alert_id TEXT,
        title TEXT NOT NULL,
        filter_yaml TEXT NOT NULL,
        owner TEXT NOT NULL,
        reason TEXT NOT NULL,
        unit TEXT,
        expires_at TEXT,
        enabled INTEGER NOT NULL DEFAULT 1,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # 4: rules an admin enabled/disabled, re-applied to the engine at every start
    # (the engine keeps the state in memory only).
    """
    CREATE TABLE rule_state (
        rule_id TEXT PRIMARY KEY,
        enabled INTEGER NOT NULL,
        changed_by TEXT NOT NULL,
        changed_at TEXT NOT NULL
    );
    """,
]

#: the agent command channel (was commands.db, version 1)
_COMMANDS = """
    CREATE TABLE commands (
        id TEXT PRIMARY KEY,
        host_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        params TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        delivered_at TEXT,
        delivered_to TEXT,
        completed_at TEXT,
        ok INTEGER,
        detail TEXT
    );
    CREATE INDEX commands_host ON commands (host_id, status);
    CREATE INDEX commands_due ON commands (status, expires_at);
"""

#: enrollment tokens and the register of enrolled agents (was agents.db, version 1)
_AGENTS = """
    CREATE TABLE enroll_tokens (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL,
        unit TEXT,
        uses_left INTEGER NOT NULL,
        expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        hostname TEXT NOT NULL,
        unit TEXT,
        enroll_token_id TEXT NOT NULL,
        enrolled_at TEXT NOT NULL,
        last_heartbeat TEXT,
        dropped_total INTEGER NOT NULL DEFAULT 0,
        spool_batches INTEGER NOT NULL DEFAULT 0
    );
"""

_OUTBOX_V1 = """
CREATE TABLE actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    params TEXT NOT NULL,
    payload TEXT,
    alert_id TEXT,
    playbook_id TEXT,
    step TEXT,
    lane TEXT,
    requested_by TEXT NOT NULL,
    requires_approval INTEGER NOT NULL,
    status TEXT NOT NULL,
    approved_by TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    backoff_seconds REAL NOT NULL,
    backoff_factor REAL NOT NULL,
    max_backoff_seconds REAL NOT NULL,
    timeout_seconds REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    result TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX actions_due ON actions(status, next_attempt_at);
CREATE INDEX actions_alert ON actions(alert_id);
CREATE INDEX actions_lane ON actions(lane, status, seq);
CREATE TABLE action_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id TEXT NOT NULL,
    at TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX history_action ON action_history(action_id);
CREATE TABLE connector_state (
    name TEXT PRIMARY KEY,
    last_success TEXT,
    last_error TEXT,
    last_error_at TEXT,
    last_heartbeat TEXT,
    sent INTEGER NOT NULL DEFAULT 0,
    cursor TEXT
);
CREATE TABLE ioc_values (
    list TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    source_id TEXT,
    PRIMARY KEY (list, value)
);
"""

#: the history the periodic reports read: connector outages and IoC receipt times
_OUTBOX_V2 = """
CREATE TABLE connector_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    at TEXT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX connector_events_name ON connector_events(name, at);
CREATE TABLE ioc_received (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    list TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    source_id TEXT,
    received_at TEXT NOT NULL
);
CREATE INDEX ioc_received_at ON ioc_received(received_at);
"""

#: the level an IoC list's hits alert at
_OUTBOX_V3 = "ALTER TABLE ioc_values ADD COLUMN level TEXT NOT NULL DEFAULT 'high';"

#: the report archive's index (was reports.db, version 1); the files stay under data_dir/reports/
_REPORTS = """
    CREATE TABLE reports (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        year INTEGER NOT NULL,
        doc_number TEXT NOT NULL,
        created_at TEXT NOT NULL,
        period TEXT NOT NULL,
        lang TEXT NOT NULL,
        scope_unit TEXT,
        units TEXT,
        schedule TEXT,
        requested_by TEXT NOT NULL,
        params TEXT NOT NULL,
        files TEXT NOT NULL,
        summary TEXT NOT NULL
    );
    CREATE INDEX reports_created ON reports(created_at);
    CREATE INDEX reports_schedule ON reports(schedule, period);
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        report_id TEXT NOT NULL REFERENCES reports(id),
        recipient TEXT NOT NULL,
        via TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        updated_at TEXT NOT NULL,
        UNIQUE(report_id, recipient)
    );
"""

#: the migrations of the files earlier releases kept apart (schema.LEGACY_FILES copies their rows in)
LEGACY_SCHEMAS: dict[str, list[Migration]] = {
    "commands.db": [_COMMANDS],
    "agents.db": [_AGENTS],
    "outbox.db": [_OUTBOX_V1, _OUTBOX_V2, _OUTBOX_V3],
    "reports.db": [_REPORTS],
}
