"""The chain's own logic on events in memory (the service tests attack a real database)."""

from dataclasses import replace

from registry.domain.audit import GENESIS, Event, event_hash, verify_chain, verify_checkpoint


def chain(n: int) -> list[Event]:
    events, prev = [], GENESIS
    for seq in range(1, n + 1):
        args = (seq, f"t{seq}", "alice", "push", f"a:{seq}", f'{{"n":{seq}}}', prev)
        h = event_hash(*args)
        events.append(Event(*args, h))
        prev = h
    return events


def test_an_intact_chain_has_no_findings() -> None:
    assert verify_chain(chain(5)) == []
    assert verify_chain([]) == []


def test_each_kind_of_damage_is_named_at_the_first_bad_event() -> None:
    events = chain(6)
    edited = [*events[:2], replace(events[2], payload='{"n":99}'), *events[3:]]
    assert (verify_chain(edited)[0].kind, verify_chain(edited)[0].seq) == ("edited", 3)
    deleted = events[:3] + events[4:]
    assert (verify_chain(deleted)[0].kind, verify_chain(deleted)[0].seq) == ("deleted", 4)
    swapped = [*events[:2], replace(events[3], seq=3), replace(events[2], seq=4), *events[4:]]
    assert (verify_chain(swapped)[0].kind, verify_chain(swapped)[0].seq) == ("reordered", 3)
    assert "was recorded as event 4" in verify_chain(swapped)[0].message


def test_checkpoints_catch_truncation_and_rewrites() -> None:
    events = chain(5)
    cp = {"size": 5, "head": events[-1].hash, "at": "t"}
    assert verify_checkpoint(cp, events, "k", True, "cp") == []
    assert verify_checkpoint(cp, events[:3], "k", True, "cp")[0].kind == "truncated"
    rewritten = [*chain(4), replace(events[4], hash="f" * 64)]
    assert verify_checkpoint(cp, rewritten, "k", True, "cp")[0].kind == "rewritten"
    assert verify_checkpoint(cp, events, "k", False, "cp")[0].kind == "bad-signature"
