"""The lifecycle of a version: one table of allowed transitions.

::

    draft ──review──▶ in_review ──approve (enough approvals)──▶ approved ──release──▶ released
                          │                                                          │  ▲
                          └──reject──▶ rejected                      release/rollback └──┘
    any state but revoked ──deprecate──▶ deprecated          any state ──revoke──▶ revoked

A version's state is never stored: it is the ``to_state`` of its latest recorded
transition (``draft`` when there is none).
"""

from __future__ import annotations

from registry.errors import InvalidTransition
from registry.types import STATES

__all__ = [
    "ACTIONS",
    "STATES",
    "TRANSITIONS",
    "allowed_actions",
    "invalid_transition",
    "next_state",
]

ACTIONS = ("review", "approve", "reject", "release", "rollback", "deprecate", "revoke")

#: (state, action) -> state after the action. ``approve`` keeps a version in review until
#: the policy's approvals are complete (the service decides which of the two applies).
TRANSITIONS: dict[tuple[str, str], str] = {
    ("draft", "review"): "in_review",
    ("in_review", "approve"): "approved",
    ("in_review", "reject"): "rejected",
    ("approved", "release"): "released",
    ("released", "release"): "released",  # to another channel
    ("released", "rollback"): "released",
    ("deprecated", "rollback"): "deprecated",  # in an incident, a deprecated but sound version may come back
    **{(s, "deprecate"): "deprecated" for s in ("draft", "in_review", "approved", "released", "rejected")},
    **{(s, "revoke"): "revoked" for s in STATES if s != "revoked"},
}

_HINTS = {
    "draft": "run `adapters review {ref}` first",
    "in_review": "it needs approvals: `adapters approve {ref}`",
    "approved": "it can be released: `adapters release {ref} --channel CHANNEL`",
    "released": "it is released; release it to another channel, or push a new version to change it",
    "rejected": "a rejected version is final; push a new version",
    "deprecated": "a deprecated version is not released again; push or release another version",
    "revoked": "a revoked version can no longer be used",
}


def _past(action: str) -> str:
    return {
        "review": "submitted for review",
        "approve": "approved",
        "reject": "rejected",
        "release": "released",
        "rollback": "rolled back to",
        "deprecate": "deprecated",
        "revoke": "revoked",
    }[action]


def allowed_actions(state: str) -> list[str]:
    return [action for action in ACTIONS if (state, action) in TRANSITIONS]


def next_state(ref: str, state: str, action: str) -> str:
    """The state after ``action``, or :class:`InvalidTransition` naming the allowed actions."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise invalid_transition(ref, state, action) from None


def invalid_transition(ref: str, state: str, action: str) -> InvalidTransition:
    """The error for ``action`` on a version in ``state``: it names the allowed actions and what to do."""
    return InvalidTransition(
        ref, state, action, allowed_actions(state), _HINTS.get(state, "").format(ref=ref), _past(action)
    )
