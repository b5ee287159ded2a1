"""soclite's streaming Sigma engine.

- :mod:`correlator.loader` parses rules, correlations, filters and pySigma pipelines with pySigma;
- :mod:`correlator.compiler` turns each condition tree into one generated Python function plus
  the literals ("anchors") the index needs;
- :mod:`correlator.index` finds candidate rules per event type, with the literal scanners of
  :mod:`correlator.scanners` (Hyperscan / Aho-Corasick) and the keyword search over JSON text of
  :mod:`correlator.keywords`;
- :mod:`correlator.logsource` routes events to Sigma log sources as SigmaHQ does;
- :mod:`correlator.correlation` keeps correlation windows (bounded, expiring, persisted);
- :mod:`correlator.ioc` matches indicator lists;
- :mod:`correlator.engine` ties them together (:class:`correlator.engine.Engine`);
- :mod:`correlator.cli` provides ``soclite hunt`` and ``soclite rules check``.
"""
