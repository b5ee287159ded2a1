"""The control layer: typed repositories of the data people and playbooks decide, in one control.db.

* :mod:`~soclite.control.schema` — the one migration history of control.db (and the one-time import
  of the per-subsystem files of earlier releases);
* :mod:`~soclite.control.identity` — roles, principals, API tokens, users, login throttling;
* :mod:`~soclite.control.audit` — the hash-chained audit trail (appended to the store) and its check;
* :mod:`~soclite.control.cases`, :mod:`~soclite.control.triage`, :mod:`~soclite.control.tuning` —
  cases, alert lifecycle/comments/history, exceptions and rule states;
* :mod:`~soclite.control.commands`, :mod:`~soclite.control.agents` — the agent command channel,
  enrollment tokens and enrolled agents;
* :mod:`~soclite.control.outbox`, :mod:`~soclite.control.iocs` — the outbox's rows and the stored IoC lists;
* :mod:`~soclite.control.reports` — the report archive's index and deliveries.

Nothing here imports the web (fastapi, starlette, :mod:`soclite.api`), the runtime or the stages
built on it (:mod:`soclite.playbooks`, :mod:`soclite.reports`): the API, the playbooks and the
reports call these repositories, and errors are those of :mod:`soclite.errors`.
"""
