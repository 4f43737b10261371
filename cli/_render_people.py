"""Rendering users and a version's tags and notes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cli._output import stdout_console, table

if TYPE_CHECKING:
    from registry import Annotated, UserDetail

__all__ = ["render_annotated", "render_user_detail"]


def _when(at: str | None) -> str:
    return at[:19].replace("T", " ") if at else ""


def render_annotated(result: Annotated) -> None:
    tags = "  ".join(f"{k}={v}" for k, v in result.tags.items()) or "no tags"
    print(f"{result.ref}  {tags}; {len(result.notes)} note(s)")


def render_user_detail(detail: UserDetail) -> None:
    u = detail.user
    console = stdout_console()
    status = f"removed {_when(u.removed_at)} by {u.removed_by}" if u.removed_at else "active"
    console.print(f"[bold]{u.name}[/bold]  added {_when(u.created_at)} by {u.created_by}; {status}", highlight=False)
    if detail.removal_reason:
        console.print(f"  reason: {detail.removal_reason}", highlight=False)
    console.print(f"  roles now: {', '.join(u.roles) or 'none'}", highlight=False)
    grants = [
        (
            g.role,
            _when(g.granted_at),
            g.granted_by,
            f"revoked {_when(g.revoked_at)} by {g.revoked_by}" if g.revoked_at else "active",
        )
        for g in detail.grants
    ]
    if grants:
        console.print(table("Role grants", ["ROLE", "GRANTED", "BY", "STATUS"], grants))
    keys = [(k.fingerprint, _when(k.added_at), k.added_by, "in force" if k.active else "earlier") for k in detail.keys]
    if keys:
        console.print(table("Keys", ["FINGERPRINT", "ADDED", "BY", "STATUS"], keys))
