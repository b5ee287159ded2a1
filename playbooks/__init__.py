"""Playbooks: how soclite acts on an alert.

The flow, one direction:

1. The pipeline stores an alert and calls :meth:`playbooks.runner.PlaybookRunner.on_alert`.
2. The runner matches the alert against the playbooks (YAML data, :mod:`playbooks.schema`), renders each
   step's parameters and *submits* one row per step to the durable :class:`playbooks.outbox.Outbox`
   (SQLite, ``data_dir/control.db``) with an idempotency key; nothing touches the network here.
3. :class:`playbooks.worker.Worker` (a thread) takes due rows and runs the action from
   :data:`playbooks.actions.ACTIONS`: at least once, retried with exponential backoff, dead-lettered after
   the last attempt. Rows of the national connector go through one ordered lane so the national system
   receives them in order, each exactly once (deterministic ids make a resend harmless).
4. Destructive actions (isolate_host) wait in ``awaiting_approval`` until an admin approves them
   (``api/routes/actions.py``), unless the playbook says ``automatic: true``.
"""
