"""Schema of the embedded store (events.db), one SQL script per version: append, never edit.

Why these indexes: every alert index ends in ``last_seen`` (plus the implicit
rowid), the order pages are read in, so a filtered page is an index range read
of ``limit`` rows, and counts of the usual dashboard filters are covered by an
index without touching the table. ``closed`` is a column so grouping
(:meth:`find_open_alert`) reads one short index range.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: events, alerts (+ tags), hosts, units, audit
    """
    CREATE TABLE events (
        id TEXT NOT NULL UNIQUE,
        ts TEXT NOT NULL,
        host TEXT,
        unit TEXT,
        product TEXT,
        category TEXT,
        service TEXT,
        text TEXT NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX events_ts ON events (ts);
    CREATE INDEX events_host_ts ON events (host, ts);
    CREATE INDEX events_unit_ts ON events (unit, ts);
    CREATE INDEX events_category_ts ON events (category, ts);

    CREATE TABLE alerts (
        id TEXT NOT NULL UNIQUE,
        fingerprint TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        rule_title TEXT NOT NULL,
        level TEXT NOT NULL,
        severity TEXT NOT NULL,
        sev_rank INTEGER NOT NULL,
        status TEXT NOT NULL,
        closed INTEGER NOT NULL,
        assignee TEXT,
        host TEXT,
        unit TEXT,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        count INTEGER NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        closed_at TEXT,
        doc TEXT NOT NULL
    );
    CREATE INDEX alerts_last ON alerts (last_seen);
    CREATE INDEX alerts_unit_sev_status ON alerts (unit, severity, status, last_seen);
    CREATE INDEX alerts_unit_status ON alerts (unit, status, last_seen);
    CREATE INDEX alerts_sev_status ON alerts (severity, status, last_seen);
    CREATE INDEX alerts_sev ON alerts (severity, last_seen);
    CREATE INDEX alerts_unit_sev ON alerts (unit, severity, last_seen);
    CREATE INDEX alerts_unit ON alerts (unit, last_seen);
    CREATE INDEX alerts_status ON alerts (status, last_seen);
    CREATE INDEX alerts_host ON alerts (host, last_seen);
    CREATE INDEX alerts_rule ON alerts (rule_id, last_seen);
    CREATE INDEX alerts_fingerprint ON alerts (fingerprint, closed, last_seen);
    CREATE INDEX alerts_assignee ON alerts (assignee, last_seen);
    CREATE INDEX alerts_first ON alerts (first_seen);
    CREATE INDEX alerts_count ON alerts (count);
    CREATE INDEX alerts_sev_rank ON alerts (sev_rank, last_seen);

    CREATE TABLE alert_tags (
        alert_id TEXT NOT NULL,
        tag TEXT NOT NULL,
        PRIMARY KEY (alert_id, tag)
    ) WITHOUT ROWID;
    CREATE INDEX alert_tags_tag ON alert_tags (tag);

    CREATE TABLE hosts (
        id TEXT PRIMARY KEY,
        name_key TEXT NOT NULL,
        agent_id TEXT,
        unit TEXT,
        type TEXT NOT NULL,
        text TEXT NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX hosts_name ON hosts (name_key);
    CREATE INDEX hosts_agent ON hosts (agent_id);
    CREATE INDEX hosts_unit ON hosts (unit, id);

    CREATE TABLE units (
        code TEXT PRIMARY KEY,
        parent TEXT,
        doc TEXT NOT NULL
    );

    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        unit TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX audit_at ON audit (at);
    """,
    # 2: alerts written before q searched the matched events: their matched event's fields join the
    # search text (the field list of _common.EVENT_TEXT_FIELDS at the time, written out: a migration
    # never changes). lower() folds ASCII only; values written from now on are fully case-folded.
    """
    UPDATE alerts SET text = substr(
        text || coalesce(char(10) || lower(
            (SELECT group_concat(CAST(v AS TEXT), char(10)) FROM (SELECT value AS v FROM json_each(json_array(
                    json_extract(doc, '$.event."event.original"'),
                    json_extract(doc, '$.event."host.name"'),
                    json_extract(doc, '$.event."message"'),
                    json_extract(doc, '$.event."host.ip"'),
                    json_extract(doc, '$.event."source.ip"'),
                    json_extract(doc, '$.event."destination.ip"'),
                    json_extract(doc, '$.event."user.name"'),
                    json_extract(doc, '$.event."process.command_line"'),
                    json_extract(doc, '$.event."process.executable"'),
                    json_extract(doc, '$.event."CommandLine"'),
                    json_extract(doc, '$.event."Image"'),
                    json_extract(doc, '$.event."ParentImage"'),
                    json_extract(doc, '$.event."TargetFilename"'),
                    json_extract(doc, '$.event."url.original"'),
                    json_extract(doc, '$.event."dns.question.name"'),
                    json_extract(doc, '$.event."file.hash.sha256"'),
                    json_extract(doc, '$.event."event.action"'),
                    json_extract(doc, '$.event."Computer"'),
                    json_extract(doc, '$.event."TargetUserName"')
            )) WHERE value IS NOT NULL))
        ), ''), 1, 8000)
    WHERE json_type(doc, '$.event') = 'object';
    """,
    # 3: the events alerts matched, written by detection (Store.write_matched_events) beside the alerts, so
    # an alert's events are readable by id while bulk storage (the day files) lags or is locked.
    """
    CREATE TABLE matched_events (
        id TEXT PRIMARY KEY,
        ts TEXT NOT NULL,
        unit TEXT,
        doc TEXT NOT NULL
    );
    CREATE INDEX matched_events_ts ON matched_events (ts);
    """,
    # 4: the queue's group panel counts open alerts per rule, host or unit (status IN (?, ?, ?) GROUP BY):
    # with the grouped column after the status the count reads only the open alerts' index entries, never an
    # alert's row and document (rule at 100,000 alerts: 650 → 55 ms; bench/api.py --concurrency, issue 15).
    # Status first: ANALYZE's sampled statistics (analysis_limit) make every status look rare, so the
    # planner searches by status whatever else it has; it should find the grouped column there too.
    """
    CREATE INDEX alerts_status_rule ON alerts (status, rule_id);
    CREATE INDEX alerts_status_host ON alerts (status, host);
    CREATE INDEX alerts_status_unit ON alerts (status, unit);
    """,
    # 5: a counter every change to the alerts (or their tags) bumps, in the same transaction, whichever process
    # writes: the queue's counts, groups and histogram are cached per query until it moves (SQLiteStore
    # ._cached_rows; 100 analysts on the queue re-counted the same open alerts on every page, issue 15).
    # Row triggers: a bulk write of 20,000 alerts bumps it 20,000 times inside one transaction, ~1 % of its cost.
    """
    CREATE TABLE alerts_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
    INSERT INTO alerts_version (id, version) VALUES (1, 0);
    CREATE TRIGGER alerts_version_insert AFTER INSERT ON alerts
        BEGIN UPDATE alerts_version SET version = version + 1 WHERE id = 1; END;
    CREATE TRIGGER alerts_version_update AFTER UPDATE ON alerts
        BEGIN UPDATE alerts_version SET version = version + 1 WHERE id = 1; END;
    CREATE TRIGGER alerts_version_delete AFTER DELETE ON alerts
        BEGIN UPDATE alerts_version SET version = version + 1 WHERE id = 1; END;
    CREATE TRIGGER alerts_version_tag_insert AFTER INSERT ON alert_tags
        BEGIN UPDATE alerts_version SET version = version + 1 WHERE id = 1; END;
    CREATE TRIGGER alerts_version_tag_delete AFTER DELETE ON alert_tags
        BEGIN UPDATE alerts_version SET version = version + 1 WHERE id = 1; END;
    """,
]
