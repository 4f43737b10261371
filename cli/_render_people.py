"""Rendering a user's history and a version's tags and notes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cli._output import stdout_console
from cli._render_show import when
from cli._tables import prose, render_table, short_digest, whole

if TYPE_CHECKING:
    from registry import Annotated, UserDetail

__all__ = ["render_annotated", "render_user_detail"]


def render_annotated(result: Annotated) -> None:
    tags = "  ".join(f"{k}={v}" for k, v in result.tags.items()) or "no tags"
    print(f"{result.ref}  {tags}; {len(result.notes)} note(s)")


def render_user_detail(detail: UserDetail) -> None:
    u = detail.user
    console = stdout_console()
    status = f"removed {when(u.removed_at)} by {u.removed_by}" if u.removed_at else "active"
    console.print(f"[bold]{u.name}[/bold]  added {when(u.created_at)} by {u.created_by}; {status}", highlight=False)
    if detail.removal_reason:
        console.print(f"  reason: {detail.removal_reason}", highlight=False, markup=False)
    console.print(f"  roles now: {', '.join(u.roles) or 'none'}", highlight=False)
    grants = [
        (g.label, when(g.granted_at), g.granted_by,
         f"revoked {when(g.revoked_at)} by {g.revoked_by}" if g.revoked_at else "active")
        for g in detail.grants
    ]  # fmt: skip
    if grants:
        console.print()
        columns = [whole("ROLE"), prose("GRANTED", drop=2), prose("BY", drop=1), prose("STATUS")]
        render_table(console, "Role grants", columns, grants)
    keys = [
        (short_digest(k.fingerprint), when(k.added_at), k.added_by, "in force" if k.active else "earlier")
        for k in detail.keys
    ]
    if keys:
        console.print()
        columns = [whole("FINGERPRINT"), prose("ADDED", drop=2), prose("BY", drop=1), whole("STATUS")]
        render_table(console, "Keys", columns, keys)
