"""The HTML report's sections on people, and each version's tags, notes and refused attempts."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from registry.audit.report.htmlparts import e, short, table, when

__all__ = ["annotations_html", "people_html", "refused_html"]


def people_html(report: Mapping[str, Any]) -> str:
    people = report.get("people")
    if not people:
        return ""
    users = [
        [e(u["name"]), when(u["created_at"]), e(u["created_by"]),
         (f"{when(u['removed_at'])} by {e(u['removed_by'])}" + (f": {e(u['removal_reason'])}" if u["removal_reason"] else ""))
         if u["removed_at"] else '<span class="na">active</span>']
        for u in people["users"]
    ]  # fmt: skip
    grants = [
        [e(g["user"]), e(g["role"] + (f"@{g['namespace']}" if g.get("namespace") else "")), when(g["granted_at"]), e(g["granted_by"]),
         f"{when(g['revoked_at'])} by {e(g['revoked_by'])}" if g["revoked_at"] else '<span class="na">in force</span>']
        for g in people["grants"]
    ]  # fmt: skip
    keys = [
        [e(k["user"]), short(k["fingerprint"]), when(k["added_at"]), e(k["added_by"]),
         "in force" if k["active"] else '<span class="na">earlier</span>']
        for k in people["keys"]
    ]  # fmt: skip
    return (
        '<section id="people"><h2>People</h2><p>Every user, role grant and key registration, with who made it and '
        "when: an approval counts only as much as the independence of whoever put its approver in place.</p>"
        "<h4>Users</h4>" + table(["user", "added", "by", "removed"], users)
        + "<h4>Role grants</h4>" + table(["user", "role", "granted", "by", "revoked"], grants)
        + "<h4>Keys</h4>" + table(["user", "fingerprint", "registered", "by", "status"], keys)
        + "</section>"
    )  # fmt: skip


def annotations_html(v: Mapping[str, Any]) -> str:
    tags = v.get("tags") or {}
    notes = v.get("notes") or []
    if not tags and not notes:
        return ""
    out = ["<h4>Tags and notes</h4>"]
    if tags:
        out.append(
            "<p>"
            + " ".join(f'<code class="nowrap">{escape(k)}={escape(val)}</code>' for k, val in tags.items())
            + "</p>"
        )
    if notes:
        out.append(table(["when", "who", "note"], [[when(n["at"]), e(n["by"]), e(n["text"])] for n in notes]))
    return "".join(out)


def refused_html(v: Mapping[str, Any]) -> str:
    refused = v.get("refused") or []
    if not refused:
        return ""
    rows = [
        [when(r["at"]), e(r["actor"]), e(r["action"] + (f" to {r['channel']}" if r.get("channel") else "")),
         e(r["policy"]), "<br>".join(f"<b>{escape(x['rule'])}</b>: {escape(x['message'])}" for x in r["rules"])]
        for r in refused
    ]  # fmt: skip
    return "<h4>Refused attempts</h4>" + table(["when", "who", "attempted", "policy", "rules not met"], rows)
