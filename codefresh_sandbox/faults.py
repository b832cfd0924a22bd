"""Fault rules: what the sandbox does wrong on purpose, and when.

A rule (see README "Faults"):

    {"match": {"method": "GET", "path": "^/api/workflow$"},
     "kind": "status", "status": 502, "every": 3, "times": null,
     "retry_after": null, "after_processing": false, "seconds": 5}

- `match.method` (case-insensitive, exact) and `match.path` (a regular expression searched in the request path
  without the query string, e.g. `^/api/builds/[0-9a-f]+$`) are both optional; a missing `match` matches everything.
- Request-level kinds (`status`, `rate_limit`, `drop`, `slow`, `malformed`, `html`, `forbidden`) are evaluated in
  order for each request under /api: every matching rule counts the request, and the first one whose count is a
  multiple of `every` (and that has fired fewer than `times` times) fires; the rules after it are not evaluated
  for that request.
- Data-level kinds are asked by the handlers: `deleted_builds` (every `every`-th build by age answers 404 on
  GET /builds/{id} and its context-revision; `times` does not apply; only the first such rule counts) and
  `analytics_not_ready` (432 on the first request of each report and date range; `times` caps how many ranges are
  affected; `Retry-After: 1` unless the rule's `retry_after` says otherwise, `null` for none: no source documents a
  header on the 432, so `null` is the reading the evidence supports and `1` the sandbox's faster default).

All counters are guarded by one lock; `set_rules` resets them.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Dict, List, Optional, Pattern, Tuple

REQUEST_KINDS = ("status", "rate_limit", "drop", "slow", "malformed", "html", "forbidden")
DATA_KINDS = ("deleted_builds", "analytics_not_ready")
KINDS = REQUEST_KINDS + DATA_KINDS
DEFAULT_STATUS = {
    "status": 500,
    "rate_limit": 429,
    "forbidden": 403,
    "analytics_not_ready": 432,
    "html": 200,
    "malformed": 200,
}
RULE_KEYS = {"match", "kind", "status", "every", "times", "retry_after", "after_processing", "seconds"}


class FaultRule:
    def __init__(self, index: int, spec: Dict[str, Any]):
        if not isinstance(spec, dict):
            raise ValueError(f"fault rule {index}: must be an object")
        unknown = set(spec) - RULE_KEYS
        if unknown:
            raise ValueError(f"fault rule {index}: unknown keys {sorted(unknown)}")
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ValueError(f"fault rule {index}: kind must be one of {', '.join(KINDS)}")
        match = spec.get("match") or {}
        if not isinstance(match, dict) or set(match) - {"method", "path"}:
            raise ValueError(f"fault rule {index}: match may only have 'method' and 'path'")
        self.index = index
        self.kind: str = kind
        self.method: Optional[str] = match["method"].upper() if match.get("method") else None
        try:
            self.path: Optional[Pattern[str]] = re.compile(match["path"]) if match.get("path") else None
        except re.error as exc:
            raise ValueError(f"fault rule {index}: bad path regex: {exc}") from exc
        self.status = int(spec["status"]) if spec.get("status") is not None else DEFAULT_STATUS.get(kind, 500)
        if not 100 <= self.status <= 599:
            raise ValueError(f"fault rule {index}: status must be an HTTP status")
        self.every = 1 if spec.get("every") is None else int(spec["every"])
        if self.every < 1:
            raise ValueError(f"fault rule {index}: every must be >= 1")
        self.times: Optional[int] = None if spec.get("times") is None else int(spec["times"])
        # A 432 carries `Retry-After: 1` unless the rule says otherwise (an explicit null: no header).
        ra = spec.get("retry_after", "1" if kind == "analytics_not_ready" else None)
        self.retry_after: Optional[str] = None if ra is None else str(ra)
        self.after_processing = bool(spec.get("after_processing", False))
        self.seconds = 5.0 if spec.get("seconds") is None else float(spec["seconds"])
        self.spec = spec
        self.seen = 0
        self.fired = 0
        self.keys: set = set()

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or bool(self.path.search(path)))

    def describe(self) -> Dict[str, Any]:
        return {**self.spec, "index": self.index, "seen": self.seen, "fired": self.fired}


class FaultEngine:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: List[FaultRule] = []
        self._fired: Dict[int, int] = {}

    # configuration -------------------------------------------------------------------------------------------
    def set_rules(self, specs: List[Dict[str, Any]]) -> None:
        if not isinstance(specs, list):
            raise ValueError("faults must be a JSON list of rules")
        rules = [FaultRule(i, s) for i, s in enumerate(specs)]  # validate everything before installing
        with self._lock:
            self._rules = rules
            self._fired = {}

    def rules(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [r.describe() for r in self._rules]

    # stats -----------------------------------------------------------------------------------------------------
    def fired_counts(self) -> Dict[int, int]:
        with self._lock:
            return dict(self._fired)

    def reset_fired(self) -> None:
        with self._lock:
            self._fired = {}

    def _fire(self, rule: FaultRule) -> None:
        rule.fired += 1
        self._fired[rule.index] = self._fired.get(rule.index, 0) + 1

    # decisions -------------------------------------------------------------------------------------------------
    def pick(self, method: str, path: str) -> Optional[FaultRule]:
        """The request-level rule that fires for this request, if any (counts it)."""
        with self._lock:
            for rule in self._rules:
                if rule.kind not in REQUEST_KINDS or not rule.matches(method, path):
                    continue
                rule.seen += 1
                if rule.seen % rule.every == 0 and (rule.times is None or rule.fired < rule.times):
                    self._fire(rule)
                    return rule
            return None

    def deleted_every(self) -> Optional[int]:
        with self._lock:
            for rule in self._rules:
                if rule.kind == "deleted_builds":
                    return rule.every
            return None

    def build_deleted(self, method: str, path: str, position: int) -> bool:
        """`position` is the build's 1-based rank by age (oldest = 1). Counts a fired fault when deleted."""
        with self._lock:
            rule = next((r for r in self._rules if r.kind == "deleted_builds"), None)  # only the first counts
            if rule is not None and rule.matches(method, path) and position % rule.every == 0:
                self._fire(rule)
                return True
            return False

    def analytics_not_ready(self, method: str, path: str, key: Tuple[Any, ...]) -> Optional[FaultRule]:
        """The rule that answers 432 for this (report, range) -- only on its first request."""
        with self._lock:
            for rule in self._rules:
                if rule.kind != "analytics_not_ready" or not rule.matches(method, path):
                    continue
                if key in rule.keys or (rule.times is not None and rule.fired >= rule.times):
                    continue
                rule.keys.add(key)
                self._fire(rule)
                return rule
            return None
