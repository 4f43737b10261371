"""State folded from append-only records: a version's lifecycle state, a channel's target.

Nothing here is stored. A version's state is what its transitions, in recorded order, leave it
in; a channel points where its latest move (release or rollback) pointed it. Every reader of
state (show, ls, governance, reports) goes through these folds, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from registry.domain.records import ChannelMove, TransitionRecord

__all__ = [
    "INITIAL_STATE",
    "channel_targets",
    "channel_targets_by_adapter",
    "channels_pointing_to",
    "released_channels",
    "state_after_latest",
    "version_state",
]

INITIAL_STATE = "draft"


def version_state(transitions: Iterable[TransitionRecord | None]) -> str:
    """The state after the transitions, oldest first: the last one's ``to_state``, else ``draft``.

    Only the last transition decides, so a caller holding just the latest one (what the record
    store loads for listings) gets the same answer as one holding the whole history.
    """
    state = INITIAL_STATE
    for t in transitions:
        if t is not None:
            state = t.to_state
    return state


def state_after_latest(to_state: str | None) -> str:
    """:func:`version_state` given only the latest transition's ``to_state`` (None: no transition).

    What listings use: the record store reads the latest transition's target of every version in
    the same query as the versions.
    """
    return INITIAL_STATE if to_state is None else to_state


def channel_targets(moves: Iterable[ChannelMove]) -> dict[str, ChannelMove]:
    """Each channel's latest move (oldest first in ``moves``): the version it points to now."""
    targets: dict[str, ChannelMove] = {}
    for m in moves:
        targets[m.channel] = m
    return dict(sorted(targets.items()))


def channel_targets_by_adapter(moves: Iterable[ChannelMove]) -> list[ChannelMove]:
    """Each (adapter, channel)'s latest move, for moves of several adapters (oldest first)."""
    targets: dict[tuple[str, str], ChannelMove] = {}
    for m in moves:
        targets[(m.name, m.channel)] = m
    return [targets[k] for k in sorted(targets)]


def channels_pointing_to(moves: Sequence[ChannelMove], version: int) -> list[str]:
    """Channels (of one adapter's ``moves``) whose current target is ``version``."""
    return [c for c, m in channel_targets(moves).items() if m.version == version]


def released_channels(moves: Iterable[ChannelMove], version: int) -> set[str]:
    """Channels ``version`` was ever released to (rollbacks to it do not count)."""
    return {m.channel for m in moves if m.version == version and m.action == "release"}
