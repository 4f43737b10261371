"""Rows written before facts were bound, against what the earlier events recorded about them.

Events of an earlier release carry no fact hashes, but each recorded the gist of what it wrote: a
push its digest, file hashes and evals; an approval its digest, policy, key and signature; a release
its channel; a user change the roles granted and the key. Each legacy row must be vouched for by
one such event (one row per record: an event cannot vouch for two copies of a row), else it was
inserted outside the registry. What the events did not record cannot be checked this way; the
``registry upgrade`` event protects those fields from the upgrade on (:mod:`registry.domain.binding`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from registry.domain.audit import Event

__all__ = ["check_legacy_rows"]

Key = tuple[Any, ...]
Row = Mapping[str, Any]

_STATE_ACTIONS = {"review": "in_review", "deprecate": "deprecated", "revoke": "revoked"}


def _payload(e: Event) -> dict[str, Any]:
    return e.data


def _evals(e: Event) -> Iterable[Key]:
    if e.action not in ("push", "eval add"):
        return
    for ev in _payload(e).get("evals") or []:
        yield (e.subject, ev.get("metric"), ev.get("value"), ev.get("dataset"), e.action)


def _approvals(e: Event) -> Iterable[Key]:
    if e.action in ("approve", "reject"):
        p = _payload(e)
        yield (e.subject, e.action, e.actor, p.get("policy"), p.get("key"), p.get("signature"))


def _moves(e: Event) -> Iterable[Key]:
    if e.action in ("release", "rollback"):
        p = _payload(e)
        yield (e.subject, p.get("channel"), e.action, e.actor, p.get("policy"), p.get("key"), p.get("signature"))


def _transitions(e: Event) -> Iterable[Key]:
    p = _payload(e)
    if e.action in _STATE_ACTIONS:
        yield (e.subject, e.action, _STATE_ACTIONS[e.action], e.actor)
    elif e.action in ("approve", "reject") and p.get("state") in ("approved", "rejected"):
        yield (e.subject, e.action, p.get("state"), e.actor)
    elif e.action == "release":  # a release records a transition when it moves approved -> released
        yield (e.subject, e.action, "released", e.actor)


def _users(e: Event) -> Iterable[Key]:
    if e.action in ("user bootstrap", "user add"):
        yield (e.subject,)


def _grants(e: Event) -> Iterable[Key]:
    p = _payload(e)
    roles = p.get("roles") if e.action == "user bootstrap" else p.get("roles_granted")
    if e.action in ("user bootstrap", "user add", "user update"):
        for role in roles or []:
            yield (e.subject, role)


def _keys(e: Event) -> Iterable[Key]:
    fingerprint = _payload(e).get("key_fingerprint")
    if e.action in ("user add", "user update") and fingerprint:
        yield (e.subject, fingerprint)


def _policies(e: Event) -> Iterable[Key]:
    if e.action == "policy set":
        scope = "*" if e.subject == "registry" else e.subject.removeprefix("channel ")
        yield (scope, _payload(e).get("digest"))


def _verifications(e: Event) -> Iterable[Key]:
    if e.action == "verify":
        p = _payload(e)
        yield (e.subject, p.get("report"), p.get("mode"), p.get("passed"))


def _probes(e: Event) -> Iterable[Key]:
    if e.action == "verify" and _payload(e).get("passed"):
        yield (e.subject, _payload(e).get("report"))


def _adapters(e: Event) -> Iterable[Key]:
    if e.action == "push":
        yield (e.subject.rpartition(":")[0],)


class _Refs:
    """Version ids as ``name:N``, as events name them."""

    def __init__(self, rows: Mapping[str, Sequence[Row]]) -> None:
        names = {int(a["id"]): str(a["name"]) for a in rows.get("adapters", ())}
        self.by_id = {
            int(v["id"]): f"{names.get(int(v['adapter_id']), '?')}:{v['number']}" for v in rows.get("versions", ())
        }

    def __call__(self, version_id: Any) -> str:
        return self.by_id.get(int(version_id), f"version#{version_id}")


def _row_keys(refs: _Refs) -> dict[str, Callable[[Row], Key]]:
    return {
        "adapters": lambda r: (r["name"],),
        "versions": lambda r: (refs(r["id"]), r["digest"]),
        "evals": lambda r: (refs(r["version_id"]), r["metric"], r["value"], r["dataset"], r["source"]),
        "approvals": lambda r: (refs(r["version_id"]), r["decision"], r["actor"], r["policy_digest"],
                                r["key_fingerprint"], r["signature"]),
        "channel_moves": lambda r: (refs(r["version_id"]), r["channel"], r["action"], r["actor"], r["policy_digest"],
                                    r["key_fingerprint"], r["signature"]),
        "transitions": lambda r: (refs(r["version_id"]), r["action"], r["to_state"], r["actor"]),
        "users": lambda r: (r["name"],),
        "role_grants": lambda r: (r["user_name"], r["role"]),
        "user_keys": lambda r: (r["user_name"], r["fingerprint"]),
        "policies": lambda r: (r["scope"], r["digest"]),
        "verifications": lambda r: (refs(r["version_id"]), r["id"], r["mode"], bool(r["passed"])),
        "probe_references": lambda r: (refs(r["version_id"]), r["verification_id"]),
    }  # fmt: skip


_EVENT_KEYS: dict[str, Callable[[Event], Iterable[Key]]] = {
    "adapters": _adapters,
    "versions": lambda e: [(e.subject, _payload(e).get("digest"))] if e.action == "push" else [],
    "evals": _evals,
    "approvals": _approvals,
    "channel_moves": _moves,
    "transitions": _transitions,
    "users": _users,
    "role_grants": _grants,
    "user_keys": _keys,
    "policies": _policies,
    "verifications": _verifications,
    "probe_references": _probes,
}

#: Tables whose rows one event may vouch for more than once (one push, several adapters of one name: no).
_SHARED = {"adapters"}


def check_legacy_rows(
    legacy: Mapping[str, Sequence[Row]], events: Sequence[Event], rows: Mapping[str, Sequence[Row]]
) -> list[tuple[str, int | None, str]]:
    """Findings for legacy rows no legacy event vouches for: (kind, event seq or None, message)."""
    refs = _Refs(rows)
    row_keys = _row_keys(refs)
    findings: list[tuple[str, int | None, str]] = []
    for table, table_rows in legacy.items():
        if not table_rows:
            continue
        vouched = Counter(k for e in events for k in _EVENT_KEYS[table](e))
        for row in table_rows:
            key = row_keys[table](row)
            if vouched[key] > 0:
                if table not in _SHARED:
                    vouched[key] -= 1
                continue
            findings.append(
                (
                    "fact-unrecorded",
                    None,
                    f"{table} row {row['id']} is not what any audit event recorded (written before facts were "
                    "bound to events, and no event vouches for it): it was inserted or edited outside the registry",
                )
            )
    return findings
