"""The streaming Sigma engine: route, prefilter, evaluate, correlate, alert.

Per event: find its type (Windows channel + EventID, else ``logsource.*``),
take that type's :class:`~correlator.index.TypeIndex` (built on first sight),
evaluate exactly only the candidate rules, drop matches that a Sigma filter or
an analyst's exception suppresses, feed correlation windows, match IoC lists,
and turn what is left into :class:`~soclite.models.Alert` objects.

The pipeline calls :meth:`Engine.process_batch` from one thread; the API calls
the management methods (:mod:`soclite.correlator.management`) from others: they take ``self._lock`` and replace
whole structures (indexes, exception lists) so the hot path never sees a half
update.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soclite.correlator import health
from soclite.correlator.anchors import Anchor, Anchors
from soclite.correlator.correlation import Correlation, Fired, Windows, compile_correlation
from soclite.correlator.index import TypeIndex
from soclite.correlator.ioc import IocStore
from soclite.correlator.loader import (
    CompiledFilter,
    CompiledRule,
    LoadFailure,
    RuleSet,
    load_paths,
)
from soclite.correlator.logsource import (
    CHANNEL_SERVICES,
    LogKey,
    apply_field_aliases,
    key_of,
    windows_key,
)
from soclite.correlator.management import EngineManagement
from soclite.correlator.matches import Match, event_time, ioc_rule, to_alert
from soclite.correlator.runtime import Lowered
from soclite.correlator.scanners import dump_compiled, load_compiled
from soclite.errors import ConfigError, RuleError, SocliteError
from soclite.models import (
    SYSTEM_CHANNEL,
    SYSTEM_EVENT_ID,
    Alert,
    Event,
)

log = logging.getLogger(__name__)

STATE_FILE = "correlation-state.json"
#: the compiled rules of correlator.rules, under data_dir/correlator (see correlator.cache)
RULES_CACHE = "rules.cache"
#: Hit-rate learning: sample one event in LEARN_EVERY (a power of two), decide after LEARN_SAMPLES samples.
#: Every event of a new type is a sample: the decision comes after its first few hundred events, so
#: the extra scan (~15 µs) is paid a few hundred times per type, and the learned index soon after.
LEARN_EVERY = 1
LEARN_SAMPLES = 256
#: Anchor options tried per rule (they are sorted best first by the static estimate).
MAX_OPTIONS = 6


class Engine(EngineManagement):
    """See module docstring. Build with :meth:`from_settings` or :meth:`from_ruleset`."""

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        state_dir: Path | None = None,
        placeholders: dict[str, list[str]] | None = None,
        indexed: bool = True,
        save_interval: float = 60.0,
        prefilter: str = "auto",
    ) -> None:
        self.placeholders = placeholders or {}
        self.indexed = indexed
        #: literal scanner backend: "auto" (Hyperscan if installed), "hyperscan" or "aho" (pyahocorasick)
        self.prefilter = prefilter
        #: compiled literal sets by (backend, field, literals): content-keyed, so shared by every event type
        #: and storable across runs (save_scanners / load_scanners)
        self._scanner_cache: dict[Any, Any] = {}
        #: per event type: rule id → anchor option in use (learned, see _learn)
        self._choices: dict[LogKey, dict[str, int]] = {}
        #: the event types whose choices came from load_scanners (their indexes start settled)
        self._learned: set[LogKey] = set()
        self._choices_saved: dict[LogKey, dict[str, int]] = {}
        #: per event type being learned: (probe index, probe → (rule position, option)); None: nothing to learn
        self._explorers: dict[LogKey, tuple[TypeIndex, list[tuple[int, int]]] | None] = {}
        self.rules = ruleset.rules
        self.filters: list[CompiledFilter] = ruleset.filters
        self.failures: list[LoadFailure] = list(ruleset.failures)
        self.iocs = IocStore()
        self.events = 0
        self.rule_errors = 0
        self.state_dir = state_dir
        self.save_interval = save_interval
        self._last_save = time.monotonic()
        self._lock = threading.RLock()
        self._scanners_loaded: set[Any] = set()
        self._exceptions: list[tuple[str, CompiledFilter]] = []
        self._exception_hits: dict[str, int] = {}
        self._filters_for: dict[str, list[CompiledFilter]] = {}
        self._indexes: dict[LogKey, TypeIndex] = {}
        self._fast: dict[tuple[Any, Any, Any], tuple[LogKey, TypeIndex]] = {}
        #: field names seen per event type (each index shares its type's set; kept across index rebuilds)
        self._seen: dict[LogKey, set[str]] = {}
        self._started = time.time()
        self._events_saved = 0
        self.correlations = self._compile_correlations(ruleset)
        self.windows = Windows(self.correlations)
        # rules referenced by correlations without ``generate`` do not alert on their own
        self._silent: set[str] = set()
        generating: set[str] = set()
        for corr in self.correlations:
            (generating if corr.generate else self._silent).update(corr.rule_ids)
        self._silent -= generating
        self._refresh_filters()
        if state_dir is not None:
            restored = self.windows.load(state_dir / STATE_FILE)
            if restored:
                log.info("restored %d correlation groups from %s", restored, state_dir)
            self._restore_health(state_dir / health.HEALTH_FILE)

    # -- construction ----------------------------------------------------------
    @classmethod
    def from_ruleset(cls, ruleset: RuleSet, **kwargs: Any) -> Engine:
        return cls(ruleset, **kwargs)

    @classmethod
    def from_paths(cls, paths: Iterable[Path], **kwargs: Any) -> Engine:
        placeholders = kwargs.get("placeholders")
        return cls(load_paths(paths, placeholders), **kwargs)

    @classmethod
    def from_settings(cls, settings: Any, state_dir: Path | None = None) -> Engine:
        conf = settings.correlator
        placeholders = {k: list(v) for k, v in conf.placeholders.items()}
        data_dir = Path(settings.data_dir)
        try:
            ruleset = load_paths(list(conf.rules), placeholders, cache=data_dir / "correlator" / RULES_CACHE)
            if conf.filters:
                extra = load_paths(list(conf.filters), placeholders)
                ruleset.filters.extend(extra.filters)
                ruleset.failures.extend(extra.failures)
        except RuleError as exc:
            raise ConfigError(str(exc), key="correlator.rules") from exc
        for failure in ruleset.failures:
            log.warning("rule not loaded: %s", failure)
        log.info(
            "%d rules loaded in %.2f s (compiled-rule cache: %s)",
            len(ruleset.rules),
            ruleset.load_seconds,
            ruleset.cache,
        )
        engine = cls(ruleset, state_dir=state_dir or data_dir / "correlator", placeholders=placeholders)
        for path in conf.ioc_files:
            try:
                engine.iocs.load_file(Path(path))
            except (OSError, ValueError, SocliteError) as exc:
                raise ConfigError(
                    f"cannot load IoC file: {exc}", key="correlator.ioc_files", source=str(path)
                ) from exc
        return engine

    def _compile_correlations(self, ruleset: RuleSet) -> list[Correlation]:
        resolve: dict[str, str] = {}
        for rule in self.rules:
            resolve[rule.id] = rule.id
            if rule.name:
                resolve[rule.name] = rule.id
        for corr_rule, _ in ruleset.correlations:
            cid = str(corr_rule.id) if corr_rule.id else ""
            if cid:
                resolve[cid] = cid
                if corr_rule.name:
                    resolve[corr_rule.name] = cid
        out: list[Correlation] = []
        for corr_rule, source in ruleset.correlations:
            try:
                out.append(compile_correlation(corr_rule, source, resolve))
            except RuleError as exc:
                self.failures.append(LoadFailure(source, str(exc)))
        return out

    # -- matching ----------------------------------------------------------------
    def _index_for(self, event: Event) -> tuple[LogKey, TypeIndex]:
        """The event's type and that type's index (built on first sight).

        Windows events are routed by a shortcut keyed on the System Channel/EventID (a data field of
        the same name, event 104's cleared log, is not the route) and, for Sysmon 12, EventType; the
        first event of each such key takes key_of."""
        channel = event.get(SYSTEM_CHANNEL)
        if channel is None:
            channel = event.get("Channel")
        fast = None
        if type(channel) is str:
            eid = event.get(SYSTEM_EVENT_ID)
            if eid is None:
                eid = event.get("EventID")
            fast = (channel, eid, event.get("EventType") if eid == 12 or eid == "12" else None)
            try:
                hit = self._fast.get(fast)
            except TypeError:  # an EventID or EventType no hash takes (a list, a dict): routed below
                fast = hit = None
            if hit is not None:
                return hit
        key = key_of(event)
        index = self._indexes.get(key)
        if index is None:
            with self._lock:
                index = self._indexes[key] = self._build_index(key)
        if fast is not None:
            self._fast[fast] = (key, index)
        return key, index

    def warm(self) -> int:
        """Build the index of every Windows event type SigmaHQ's mapping knows (else built on first sight)."""
        samples: list[Event] = []
        for channel in set(CHANNEL_SERVICES):
            for eid in (
                1,
                2,
                3,
                4,
                5,
                6,
                7,
                8,
                9,
                10,
                11,
                12,
                13,
                14,
                15,
                17,
                19,
                22,
                23,
                24,
                25,
                26,
                27,
                28,
                29,
                255,
                4103,
                4104,
                400,
                600,
                800,
                4688,
                1116,
                4624,
            ):
                samples.append({"Channel": channel, "EventID": eid})
        samples += [
            {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 12, "EventType": t}
            for t in ("CreateKey", "DeleteKey", "DeleteValue")
        ]
        keys = {windows_key(str(e["Channel"]).lower(), int(e["EventID"]), e) for e in samples}
        for key in keys:
            if key not in self._indexes:
                self._indexes[key] = self._build_index(key)
            if self.indexed and not self._indexes[key].settled:
                self._explorer(key, self._indexes[key])  # compile the learning scanners now, not mid-stream
        return len(keys)

    def _build_index(self, key: LogKey, reuse: bool = False) -> TypeIndex:
        rules = [r for r in self.rules if r.enabled and key.matches(r.product, r.category, r.service)]
        index = TypeIndex(rules, self.prefilter, self._scanner_cache, self._choices.get(key), reuse)
        index.has_aliases = key.service == "security" or "antivirus" in key.categories
        index.settled = key in self._learned
        index.seen = self._seen.setdefault(key, set())
        index.pending = frozenset(f for r in rules for f in r.fields) - index.seen
        return index

    def match(self, event: Event, raw: bytes | None = None, raw_keys: int | None = None) -> list[CompiledRule]:
        """The rules that fire on ``event`` (filters and exceptions applied); counts hits.

        ``raw``: the JSON text ``event`` was decoded from, when the caller has it (saves dumping the
        event for the keyword rules), and ``raw_keys``: how many of ``event``'s first keys hold values
        found in that text (default all; keys a mapper added after them are searched apart). See
        :meth:`TypeIndex.candidates`."""
        key, index = self._index_for(event)
        if not index.rules:
            return []
        if raw_keys is None:
            raw_keys = len(event)
        if index.has_aliases:
            apply_field_aliases(event, key)
        pending = index.pending
        # the rule-named fields not seen yet: one C-level pass over the smaller of the two (a keys view
        # takes the set's side when it is the smaller; frozenset.isdisjoint(dict) walks every key)
        if pending and not event.keys().isdisjoint(pending):
            found = [f for f in pending if f in event]
            index.seen.update(found)
            index.pending = pending.difference(found)
        lw = Lowered(event)
        rules = index.rules
        if self.indexed:
            positions: Any = index.candidates(event, lw, raw, raw_keys)
            if not index.settled:
                index.tick += 1
                if not index.tick & (LEARN_EVERY - 1):
                    self._learn(key, index, event, lw)
        else:
            positions = range(len(rules))
        out: list[CompiledRule] = []
        for pos in positions:
            rule = rules[pos]
            try:
                if not rule.func(event, lw):
                    continue
            except Exception as exc:  # a rule bug must not stop the stream
                rule.errors += 1
                self.rule_errors += 1
                if rule.errors <= 3:
                    log.warning("rule %s raised on an event: %r", rule.id, exc)
                continue
            if self._suppressed(rule, event, lw):
                rule.suppressed += 1
                continue
            rule.hits += 1
            rule.last_fired = time.time()
            out.append(rule)
        return out

    def _explorer(self, key: LogKey, index: TypeIndex) -> tuple[TypeIndex, list[tuple[int, int]]] | None:
        """The learning index of a type: one probe per (rule, anchor option), for rules with a choice."""
        if key in self._explorers:
            return self._explorers[key]
        probes: list[_Probe] = []
        owners: list[tuple[int, int]] = []
        for pos, rule in enumerate(index.rules):
            options = rule.anchor_options
            if len(options) < 2:
                continue
            for opt, anchors in enumerate(options[:MAX_OPTIONS]):
                probes.append(_Probe(f"{rule.id}#{opt}", anchors, [anchors]))
                owners.append((pos, opt))
        explorer = (TypeIndex(probes, self.prefilter, self._scanner_cache), owners) if probes else None
        self._explorers[key] = explorer
        if explorer is None:
            index.settled = True
        return explorer

    def _learn(self, key: LogKey, index: TypeIndex, event: Event, lw: Lowered) -> None:
        """Prefer selective anchors, learned from hit rates while running.

        Every anchor option of a rule is necessary for it to match, so the option
        an index uses changes how many rules are evaluated, never the result. On
        sampled events one scan over every option of every rule (the explorer)
        counts how often each option would make its rule a candidate; after
        LEARN_SAMPLES samples each rule takes its rarest option and the type's
        index is rebuilt once (the static estimate wins ties). Learning all
        options at once rather than one rebuild per option tried keeps the cost
        to one index compile per event type.
        """
        explorer = self._explorer(key, index)
        if explorer is None:  # nothing to choose, or learned already (an index rebuilt since)
            index.settled = True
            return
        probe_index, owners = explorer
        counts = index.counts
        if len(counts) != len(owners):
            counts = index.counts = [0] * len(owners)
        for probe in probe_index.candidates(event, lw):
            counts[probe] += 1
        index.samples += 1
        if index.samples < LEARN_SAMPLES:
            return
        best: dict[int, tuple[int, int]] = {}  # rule position → (hits, option)
        for probe, (pos, opt) in enumerate(owners):
            hits = counts[probe]
            if pos not in best or hits < best[pos][0]:
                best[pos] = (hits, opt)
        choices = self._choices.setdefault(key, {})
        changed = False
        for pos, (_, opt) in best.items():
            rule_id = index.rules[pos].id
            if choices.get(rule_id, 0) != opt:
                choices[rule_id] = opt
                changed = True
        self._explorers[key] = None  # learned: free the probe scanners
        with self._lock:
            if changed:
                # (the chosen options' literals are in the first index's databases and the explorer's:
                # scanned there, not compiled mid-stream)
                rebuilt = self._build_index(key, reuse=True)
                rebuilt.rebuilds = index.rebuilds + 1
                rebuilt.long_seen = dict(index.long_seen)  # COMBINE_AFTER counts the type's long values, not the index's
                rebuilt.memo_long, rebuilt.probe_long = index.memo_long, index.probe_long  # likewise REPEAT_PROBE
                rebuilt.settled = True
                self._indexes[key] = rebuilt
                self._fast = {}
            index.settled = True

    def _suppressed(self, rule: CompiledRule, event: Event, lw: Lowered) -> bool:
        for flt in self._filters_for.get(rule.id, ()):
            if not flt.func(event, lw):  # a filter's condition must hold for the rule to fire
                return True
        exceptions = self._exceptions
        if exceptions:
            for exc_id, flt in exceptions:
                if flt.applies_to(rule) and not flt.func(event, lw):
                    self._exception_hits[exc_id] = self._exception_hits.get(exc_id, 0) + 1
                    return True
        return False

    def detect(self, event: Event, raw: bytes | None = None, raw_keys: int | None = None) -> list[Match]:
        """Sigma matches, correlation firings and IoC hits for one event (no Alert objects);
        ``raw`` and ``raw_keys`` as in :meth:`match`."""
        self.events += 1
        matches: list[Match] = []
        rules = self.match(event, raw, raw_keys)
        if rules:
            ts: float | None = None
            for rule in rules:
                if rule.id not in self._silent:
                    matches.append(Match(rule, event, {}))
                if rule.id in self.windows.by_rule:
                    if ts is None:
                        ts = event_time(event).timestamp()
                    self._correlate(rule.id, event, ts, matches)
        if self.iocs._lists:
            for hit in self.iocs.match(event):
                matches.append(
                    Match(ioc_rule(hit), event, {"ioc.field": hit.field, "ioc.value": hit.value}, "ioc")
                )
        if self.state_dir is not None and (self.windows.dirty or self.events != self._events_saved):
            now = time.monotonic()
            if now - self._last_save > self.save_interval:
                self.save_state()
        return matches

    def _correlate(self, rule_id: str, event: Event, ts: float, matches: list[Match], depth: int = 0) -> None:
        fired: list[Fired] = self.windows.on_match(rule_id, event, ts)
        for f in fired:
            f.correlation.hits += 1
            f.correlation.last_fired = time.time()
            matches.append(Match(f.correlation, event, f.group, "correlation"))
            if depth < 4 and f.correlation.id in self.windows.by_rule:  # correlations of correlations
                self._correlate(f.correlation.id, event, ts, matches, depth + 1)

    def process(self, event: Event) -> list[Alert]:
        return [to_alert(m) for m in self.detect(event)]

    def process_batch(
        self, events: list[Event], raws: Sequence[bytes] | None = None, raw_keys: Sequence[int] | None = None
    ) -> list[Alert]:
        """One Alert per detection, in event order; the pipeline groups equal fingerprints (count, last_seen).
        ``raws`` and ``raw_keys``: per event, as :meth:`match` takes them."""
        if raws is None:
            return [to_alert(m) for event in events for m in self.detect(event)]
        keys: Sequence[int | None] = raw_keys if raw_keys is not None else [None] * len(events)
        return [
            to_alert(m)
            for event, raw, n in zip(events, raws, keys, strict=True)
            for m in self.detect(event, raw, n)
        ]

    # -- state ---------------------------------------------------------------------
    def save_state(self) -> None:
        if self.state_dir is None:
            return
        with self._lock:
            self.windows.save(self.state_dir / STATE_FILE)
            try:
                health.save(self.state_dir / health.HEALTH_FILE, self.health_snapshot())
            except OSError as exc:  # health is for people: never stop detection over it
                log.warning("cannot save rule health: %s", exc)
        self._events_saved = self.events
        self._last_save = time.monotonic()

    def close(self) -> None:
        self.save_state()

    def load_scanners(self, path: Path) -> int:
        """Reuse what a previous run saved at ``path``: the compiled literal databases (Hyperscan
        compiles are most of the cost of building an event type's index) and the anchor options it
        learned per event type (those types start settled: no learning scans, no rebuild). A learned
        option is a speed choice, never a result one (see _learn), so one learned on other data or
        for an older rule text only costs speed; an option the rule no longer has is ignored.
        Returns how many databases were loaded."""
        from soclite.correlator import cache as file_cache

        payload = file_cache.read(path, _scanners_key())
        if not isinstance(payload, dict) or not isinstance(payload.get("databases"), dict):
            return 0
        loaded = load_compiled(payload["databases"])
        self._scanner_cache.update(loaded)
        self._scanners_loaded = set(self._scanner_cache)
        choices = payload.get("choices")
        if isinstance(choices, dict):
            with self._lock:
                for key, chosen in choices.items():
                    if isinstance(key, LogKey) and isinstance(chosen, dict) and key not in self._choices:
                        self._choices[key] = dict(chosen)
                        self._learned.add(key)
            self._choices_saved = _choices_snapshot(self._choices)
        return len(loaded)

    def save_scanners(self, path: Path) -> bool:
        """Store the compiled literal databases and the learned anchor options for :meth:`load_scanners`,
        when this run compiled or learned anything new."""
        from soclite.correlator import cache as file_cache

        keys = set(self._scanner_cache)
        choices = _choices_snapshot(self._choices)
        if keys <= self._scanners_loaded and choices == self._choices_saved:
            return False
        payload = {"databases": dump_compiled(self._scanner_cache), "choices": choices}
        if not file_cache.write(path, _scanners_key(), payload):
            return False
        self._scanners_loaded = keys
        self._choices_saved = choices
        return True


def _choices_snapshot(choices: dict[LogKey, dict[str, int]]) -> dict[LogKey, dict[str, int]]:
    return {key: dict(chosen) for key, chosen in choices.items()}


def _scanners_key() -> str:
    """Serialized Hyperscan databases are bound to the library's version and the CPU's platform."""
    import hashlib
    import platform
    from importlib.metadata import PackageNotFoundError, version

    try:
        hs = version("hyperscan")
    except PackageNotFoundError:
        hs = "none"
    # the number changes with what the payload means (5: OR conditions and null values offer more
    # anchor options, so a stored option number would name another option: a slower one at worst)
    text = f"scanners|5|hyperscan {hs}|{platform.machine()}|{platform.system()}"
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _Probe:
    """One anchor option of one rule, indexed as if it were a rule (see Engine._explorer)."""

    id: str
    anchors: Anchors
    anchor_options: list[frozenset[Anchor]]
