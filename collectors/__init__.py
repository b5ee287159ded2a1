"""Collectors: turn bytes from syslog, HTTP, files, the network and agents into Events.

How a line becomes a durable event::

    syslog UDP/TCP/TLS (inputs.py, framing.py) ─┐
    POST /api/v1/ingest (api/routes/ingest.py) ─┤
    soclite import (files.py, cli.py)         ──┼─▶ normalize.normalize_batch ─▶ journal.Journal.append ─▶ pipeline
    sensor (sensor.py: pcap / live capture)   ──┘     │ syslog.py: RFC 5424/3164 framing      (acknowledged only now)
                                                      │ parsers/: PARSERS registry (first match wins)
                                                      │ windows.py: EVTX / NXLog / Winlogbeat records
                                                      └▶ ParseError ─▶ deadletter.DeadLetters (reason + raw bytes)

Collectors never talk to the store or the correlator: they hand batches to a sink (the journal).
The endpoint agent lives in ``collectors.agent`` and ships to the HTTP ingest.
"""
