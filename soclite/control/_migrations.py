"""The SQL of control.db's migrations, in the order they were released (see :mod:`.schema`).

Appended, never edited: an existing control.db runs only the versions it has not seen. Versions
1-8 (round 1's control.db and the files it kept apart) are in :mod:`._migrations_round1`.
"""

from __future__ import annotations

from soclite.control._migrations_round1 import (
    _AGENTS,
    _COMMANDS,
    _IDENTITY,
    _OUTBOX_V1,
    _OUTBOX_V2,
    _OUTBOX_V3,
    _REPORTS,
    LEGACY_SCHEMAS,
)
from soclite.db import Migration

_INFO_SYSTEMS = """
    CREATE TABLE info_systems (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        operator TEXT NOT NULL,
        level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5),
        approval_status TEXT NOT NULL,
        approval_decision TEXT,
        security_regulation TEXT,
        expected_approval_date TEXT,
        deployment_state TEXT,
        expected_completion TEXT,
        review_done INTEGER NOT NULL DEFAULT 0,
        unit TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE info_system_hosts (
        system_id TEXT NOT NULL REFERENCES info_systems(id) ON DELETE CASCADE,
        host_id TEXT NOT NULL,
        PRIMARY KEY (system_id, host_id)
    );
    CREATE INDEX info_system_hosts_host ON info_system_hosts(host_id);
    CREATE TABLE info_system_units (
        system_id TEXT NOT NULL REFERENCES info_systems(id) ON DELETE CASCADE,
        unit TEXT NOT NULL,
        PRIMARY KEY (system_id, unit)
    );
    CREATE INDEX info_system_units_unit ON info_system_units(unit);
"""

_INCIDENTS = """
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        case_id TEXT,
        unit TEXT,
        severity TEXT NOT NULL,
        national_security INTEGER NOT NULL DEFAULT 0,
        personal_data INTEGER NOT NULL DEFAULT 0,
        description TEXT,
        detected_at TEXT NOT NULL,
        initial_notice_at TEXT,
        report_72h_at TEXT,
        personal_data_notice_at TEXT,
        final_report_at TEXT,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX incidents_detected ON incidents(detected_at);
    CREATE TABLE incident_systems (
        incident_id TEXT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
        system_id TEXT NOT NULL,
        PRIMARY KEY (incident_id, system_id)
    );
    CREATE TABLE incident_updates (
        id TEXT PRIMARY KEY,
        incident_id TEXT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
        at TEXT NOT NULL,
        note TEXT NOT NULL,
        author TEXT NOT NULL
    );
    CREATE TABLE incident_escalations (
        incident_id TEXT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
        deadline TEXT NOT NULL,
        escalated_at TEXT NOT NULL,
        PRIMARY KEY (incident_id, deadline)
    );
"""

#: case work: close reasons, the case's history and comments (one event stream), tasks with assignee and due date
_CASE_WORK = """
    ALTER TABLE cases ADD COLUMN close_reason TEXT;
    ALTER TABLE cases ADD COLUMN close_note TEXT;
    CREATE TABLE case_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id TEXT NOT NULL,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX case_events_case ON case_events(case_id, id);
    CREATE TABLE case_tasks (
        id TEXT PRIMARY KEY,
        case_id TEXT NOT NULL,
        title TEXT NOT NULL,
        assignee TEXT,
        due_at TEXT,
        done INTEGER NOT NULL DEFAULT 0,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        done_at TEXT
    );
    CREATE INDEX case_tasks_case ON case_tasks(case_id, created_at);
"""

#: issue 13: server-side web sessions (logout revokes), token expiry, a persisted login throttle and lockout
_SESSIONS = """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revoked_at TEXT,
        revoked_reason TEXT,
        ip TEXT
    );
    CREATE INDEX sessions_user ON sessions (user_id, revoked_at);
    ALTER TABLE tokens ADD COLUMN expires_at TEXT;
    ALTER TABLE tokens ADD COLUMN created_by TEXT;
    -- one row per login attempt inside the throttle's window (pruned as it goes)
    CREATE TABLE login_attempts (
        username TEXT NOT NULL,
        ip TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX login_attempts_key ON login_attempts (username, ip, at);
    ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN locked_at TEXT;
"""

_HUNTS = """
    -- retro-hunts (issue 12): one Sigma rule over stored events, run in the background, its hits kept
    CREATE TABLE hunts (
        id TEXT PRIMARY KEY,
        actor TEXT NOT NULL,
        unit TEXT,
        scope TEXT,
        rule_origin TEXT NOT NULL,
        rule_yaml TEXT NOT NULL,
        start TEXT NOT NULL,
        "end" TEXT NOT NULL,
        archive INTEGER NOT NULL DEFAULT 1,
        status TEXT NOT NULL,
        phase TEXT,
        scanned INTEGER NOT NULL DEFAULT 0,
        total INTEGER,
        hits INTEGER NOT NULL DEFAULT 0,
        kept INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created_at TEXT NOT NULL,
        finished_at TEXT,
        -- the process running it: a hunt whose process is gone (a restart) reads as "interrupted"
        runner_pid INTEGER
    );
    CREATE TABLE hunt_hits (
        hunt_id TEXT NOT NULL REFERENCES hunts(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        unit TEXT,
        doc TEXT NOT NULL,
        PRIMARY KEY (hunt_id, seq)
    );
"""

_RETENTION_RUNS = """
    -- one row per run of the retention job (issue 17): what was archived and deleted, or why it failed
    CREATE TABLE retention_runs (
        id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        before TEXT,
        archived_days INTEGER NOT NULL DEFAULT 0,
        events_deleted INTEGER NOT NULL DEFAULT 0,
        alerts_deleted INTEGER NOT NULL DEFAULT 0,
        days_dropped INTEGER NOT NULL DEFAULT 0,
        days_trimmed INTEGER NOT NULL DEFAULT 0,
        segments_retired INTEGER NOT NULL DEFAULT 0,
        segments_kept INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE INDEX retention_runs_started ON retention_runs (started_at);
"""

#: issue 15: Discover's saved searches: per user, shared within the owner's unit when ``shared``
_SAVED_SEARCHES = """
    CREATE TABLE saved_searches (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        unit TEXT,
        name TEXT NOT NULL,
        query TEXT NOT NULL,
        range_from TEXT,
        range_to TEXT,
        shared INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE INDEX saved_searches_owner ON saved_searches (owner);
    CREATE INDEX saved_searches_unit ON saved_searches (unit, shared);
"""

#: issue 16: case attachments (the file under data_dir/attachments/<stored_name>, its hash and detected type)
_CASE_ATTACHMENTS = """
    CREATE TABLE case_attachments (
        id TEXT PRIMARY KEY,
        case_id TEXT NOT NULL,
        name TEXT NOT NULL,
        stored_name TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        media_type TEXT NOT NULL,
        uploaded_by TEXT NOT NULL,
        uploaded_at TEXT NOT NULL
    );
    CREATE INDEX case_attachments_case ON case_attachments(case_id, uploaded_at);
"""

#: issue 16: per-user alert notifications: rules (what, to which channel), quiet hours and rate limit,
#: and every delivery decision (sent, held in quiet hours, dropped, over the rate limit, in a digest)
_USER_NOTIFICATIONS = """
    CREATE TABLE notification_rules (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        min_severity TEXT NOT NULL,
        units TEXT NOT NULL,
        rule_patterns TEXT NOT NULL,
        channel TEXT NOT NULL,
        target TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE INDEX notification_rules_user ON notification_rules(user_id);
    CREATE TABLE notification_prefs (
        user_id TEXT PRIMARY KEY,
        quiet_start TEXT,
        quiet_end TEXT,
        quiet_mode TEXT NOT NULL DEFAULT 'hold',
        rate_limit_per_hour INTEGER NOT NULL DEFAULT 20
    );
    CREATE TABLE notification_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        alert_id TEXT,
        channel TEXT NOT NULL,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        at TEXT NOT NULL,
        payload TEXT NOT NULL,
        action_id TEXT
    );
    CREATE INDEX notification_deliveries_user ON notification_deliveries(user_id, status, at);
    CREATE UNIQUE INDEX notification_deliveries_once ON notification_deliveries(rule_id, alert_id)
        WHERE alert_id IS NOT NULL;
"""

#: report schedules managed in the web UI (issue 16); the settings file's schedules stay where they are and
#: the scheduler runs both (a name in the settings file wins, and the UI refuses to reuse it)
_REPORT_SCHEDULES = """
    CREATE TABLE report_schedules (
        name TEXT PRIMARY KEY,
        unit TEXT,
        doc TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
"""

#: The migrations of control.db, append only.
_SYSTEM_REVIEWS = """
    CREATE TABLE system_reviews (
        id TEXT PRIMARY KEY,
        system_id TEXT NOT NULL REFERENCES info_systems(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('log_review', 'threshold_tuning')),
        done_at TEXT NOT NULL,
        done_by TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX system_reviews_last ON system_reviews(system_id, kind, done_at);
    CREATE TABLE trend_warnings (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        dimension TEXT NOT NULL,
        key TEXT NOT NULL,
        unit TEXT,
        hour TEXT NOT NULL,
        observed INTEGER NOT NULL,
        median REAL NOT NULL,
        threshold REAL NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX trend_warnings_hour ON trend_warnings(hour);
    CREATE TABLE incident_sends (
        id TEXT PRIMARY KEY,
        incident_id TEXT NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        channel TEXT NOT NULL,
        recipient TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        sent_by TEXT NOT NULL,
        idempotency_key TEXT NOT NULL
    );
    CREATE INDEX incident_sends_incident ON incident_sends(incident_id, sent_at);
"""

_INCIDENT_EDITS = """
    ALTER TABLE incidents ADD COLUMN personal_data_at TEXT;
"""

#: issue 16: each webhook notification rule signs its deliveries (HMAC-SHA256) with its own secret; kept in
#: the clear because the HMAC needs it at every send, never returned by the API after the rule's creation
_NOTIFY_SIGNING = """
    ALTER TABLE notification_rules ADD COLUMN signing_secret TEXT;
    CREATE INDEX notification_deliveries_at ON notification_deliveries(at);
"""

MIGRATIONS: list[Migration] = [
    *_IDENTITY,  # 1-4: the control.db of earlier releases
    _COMMANDS,  # 5: agent commands (was commands.db)
    _AGENTS,  # 6: enrollment tokens and agents (was agents.db)
    _OUTBOX_V1
    + _OUTBOX_V2
    + _OUTBOX_V3,  # 7: outbox actions, connector state and history, IoC lists (was outbox.db)
    _REPORTS,  # 8: report archive index and deliveries (was reports.db)
    _INFO_SYSTEMS,  # 9: information systems, their security level and the hosts/units they cover (issue 17)
    _INCIDENTS,  # 10: incidents with their legal clock (issue 17)
    _CASE_WORK,  # 11: case close reasons, history/comments, tasks
    _SESSIONS,  # 12: web sessions, token expiry, login throttle and lockout (issue 13)
    _HUNTS,  # 13: retro-hunt jobs and their hits (issue 12)
    _RETENTION_RUNS,  # 14: runs of the retention job by security level (issue 17)
    _SAVED_SEARCHES,  # 15: Discover's saved searches (issue 15)
    _CASE_ATTACHMENTS,  # 16: case attachments (issue 16)
    _USER_NOTIFICATIONS,  # 17: per-user alert notifications (issue 16)
    _SYSTEM_REVIEWS,  # 18: log reviews and threshold tunings per information system; trend warnings; notice receipts (issue 17)
    _REPORT_SCHEDULES,  # 19: report schedules managed in the web UI (issue 16)
    _INCIDENT_EDITS,  # 20: when a personal-data breach was found, its own 72-hour clock (issue 17)
    _NOTIFY_SIGNING,  # 21: webhook signing secrets of notification rules; deliveries pruned by age (issue 16)
]

__all__ = ["LEGACY_SCHEMAS", "MIGRATIONS"]
