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

from registry.errors import RegistryError

__all__ = [
    "ACTIONS",
    "STATES",
    "TRANSITIONS",
    "InvalidTransition",
    "allowed_actions",
    "next_state",
]

STATES = ("draft", "in_review", "approved", "released", "rejected", "deprecated", "revoked")
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
    "rejected": "a rejected version is final; push a new version",
    "deprecated": "a deprecated version is not released again; push or release another version",
    "revoked": "a revoked version can no longer be used",
}


class InvalidTransition(RegistryError):
    """An action the version's current state does not allow."""

    def __init__(self, ref: str, state: str, action: str) -> None:
        self.ref, self.state, self.action = ref, state, action
        allowed = allowed_actions(state)
        hint = _HINTS.get(state, "").format(ref=ref)
        allowed_text = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"{ref} is {state}; it cannot be {_past(action)} ({hint}). Actions allowed now: {allowed_text}"
        )


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
        raise InvalidTransition(ref, state, action) from None
