import pytest

from registry.domain.lifecycle import STATES, TRANSITIONS, allowed_actions, next_state
from registry.errors import InvalidTransition


def test_the_happy_path() -> None:
    state = "draft"
    for action, expected in [
        ("review", "in_review"),
        ("approve", "approved"),
        ("release", "released"),
        ("release", "released"),
        ("rollback", "released"),
    ]:
        state = next_state("a:1", state, action)
        assert state == expected


def test_an_illegal_transition_names_the_way_forward() -> None:
    with pytest.raises(InvalidTransition) as exc:
        next_state("support:3", "draft", "approve")
    message = str(exc.value)
    assert message.startswith("support:3 is draft; it cannot be approved (run `adapters review support:3` first)")
    assert "Actions allowed now: review, deprecate, revoke" in message


@pytest.mark.parametrize(
    ("state", "action"),
    [
        ("draft", "release"),
        ("in_review", "release"),
        ("rejected", "review"),
        ("revoked", "release"),
        ("revoked", "revoke"),
        ("released", "review"),
        ("deprecated", "release"),
    ],
)
def test_refused(state: str, action: str) -> None:
    with pytest.raises(InvalidTransition):
        next_state("a:1", state, action)


def test_revoked_is_final_and_every_other_state_can_be_revoked() -> None:
    assert allowed_actions("revoked") == []
    for state in STATES:
        if state != "revoked":
            assert TRANSITIONS[(state, "revoke")] == "revoked"


def test_every_refusal_reads_whole_and_says_what_to_do() -> None:
    """No empty parentheses, every state with a way out."""
    from registry.domain.lifecycle import ACTIONS

    for state in STATES:
        for action in ACTIONS:
            if (state, action) in TRANSITIONS:
                continue
            with pytest.raises(InvalidTransition) as exc:
                next_state("a:1", state, action)
            message = str(exc.value)
            assert "()" not in message and "  " not in message, message
            assert "(" in message, f"{state}/{action} gives no hint: {message}"
