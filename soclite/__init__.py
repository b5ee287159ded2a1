"""soclite: a SIEM-lite for a provincial security-monitoring centre.

How an event becomes an alert:

1. a collector (:mod:`soclite.collectors`: syslog listener, HTTP ingest, agent,
   file import, network sensor) turns bytes into flat ``Event`` mappings and
   hands a batch to a sink;
2. the sink writes the batch durably to the ingest journal and only then
   acknowledges it to the sender;
3. the detection process (:mod:`soclite.pipeline`, journal consumer
   "detection") reads the journal with its own committed offset: each event is
   routed by log source to the Sigma rules compiled by :mod:`soclite.correlator`,
   which returns ``Alert`` objects (and keeps correlation windows); the alerts
   and the events they matched are written to the store (:mod:`soclite.store`:
   embedded SQLite or OpenSearch) first;
4. bulk storage (:mod:`soclite.event_storage` in :mod:`soclite.storage_worker`,
   consumer "storage") writes every event to the store at its own pace: it may
   lag and catch up, never drops, and never delays an alert;
5. playbooks (:mod:`soclite.playbooks`) react to new alerts through a durable
   outbox, the API and web UI (:mod:`soclite.api`) serve analysts, and the
   scheduler renders periodic reports (:mod:`soclite.reports`).

The package is layered, and imports run one way (``[tool.importlinter]`` in
``pyproject.toml`` states it and ``make test`` checks it), lowest first:

* **core** — :mod:`~soclite.config`, :mod:`~soclite.models`,
  :mod:`~soclite.errors`, :mod:`~soclite.db`, :mod:`~soclite.logs`, :mod:`~soclite.sitetime`: nothing of ours;
* **stages** — :mod:`~soclite.collectors`, :mod:`~soclite.correlator`,
  :mod:`~soclite.store`: turn bytes into events, events into alerts, and keep them;
* **control** — :mod:`~soclite.control`: typed repositories of the control data
  (users, cases, comments, history, exceptions, rule states, agents, commands, IoC lists);
* **response** — :mod:`~soclite.playbooks` (actions, outbox, connectors) and
  :mod:`~soclite.reports`;
* **runtime** — :mod:`~soclite.runtime`: the typed services a route sees;
* **api** — :mod:`~soclite.api`: routes and UI; calls control and the store, holds no SQL;
* **application** — :mod:`~soclite.application` wires both processes once;
  :mod:`~soclite.server`, :mod:`~soclite.pipeline_worker`, :mod:`~soclite.storage_worker`
  and :mod:`~soclite.cli` are their entry points.

The stages keep the top-level folders of the repository (``api/``,
``collectors/``, ``correlator/``, ``playbooks/``, and the data in
``dashboards/`` and ``rules/``); ``soclite/`` links to them, and the wheel
carries them as ``soclite.*`` with the UI, translations, rules and playbooks.
"""

__version__ = "0.1.0"
