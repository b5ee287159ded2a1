"""soclite: a SIEM-lite for a provincial security-monitoring centre.

How an event becomes an alert (the wiring lives in :mod:`soclite.pipeline`):

1. a collector (syslog listener, HTTP ingest, agent, file import, network
   sensor) turns bytes into flat ``Event`` mappings and hands a batch to a sink;
2. the sink writes the batch durably to the ingest journal and only then
   acknowledges it to the sender;
3. the pipeline consumes the journal with committed offsets: each event is
   routed by log source to the Sigma rules compiled by :mod:`correlator`,
   which returns ``Alert`` objects (and keeps correlation windows);
4. events and alerts are written to the store (embedded SQLite or OpenSearch);
5. playbooks react to new alerts through a durable outbox, the API and the
   web UI serve analysts, and the scheduler renders periodic reports.
"""

__version__ = "0.1.0"
