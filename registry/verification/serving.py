"""The serving-target part of ``adapters verify --target``: the checks, the profiles the report records,
and the server's re-derivation of both for a report a client submitted.

The rules (:mod:`registry.domain.serving`) read only the adapter's config and safetensors headers and two
facts of the base's ``config.json``, so they run in every mode, ``static`` included. A report records one
profile per target (engine, limits applied, base facts read, the engine code the rules come from); from
those profiles and the version's stored blobs the registry server computes the same checks itself, and
refuses a submitted report whose serving checks are not exactly those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from registry.domain.adapterdir import AdapterContents
from registry.domain.methods.base import Check
from registry.domain.serving import BaseFacts, ServingTarget, serving_checks
from registry.domain.verification import VerificationReport
from registry.errors import InvalidInput

__all__ = ["check_submitted_serving", "serving_part"]

#: The prefixes of the names of serving checks (``vllm-rank``, ``lorax-target-modules``, ...).
_PREFIXES = tuple(f"{e}-" for e in ("vllm", "sglang", "lorax", "tgi"))


def serving_part(
    targets: Sequence[ServingTarget], adapter: AdapterContents, base_config: Mapping[str, Any] | None
) -> tuple[list[Check], tuple[dict[str, Any], ...]]:
    """The checks of every target, in order, and the profile of each (what the report records)."""
    base = BaseFacts.from_config(base_config)
    checks: list[Check] = []
    for target in targets:
        checks.extend(serving_checks(target, adapter.config, adapter.tensors, base))
    return checks, tuple(t.profile(base) for t in targets)


def check_submitted_serving(report: VerificationReport, adapter: Callable[[], AdapterContents]) -> None:
    """Refuse (``InvalidInput``) a submitted report whose serving checks are not the ones its profiles give on
    the version's stored config and headers: a client cannot record a serving check it did not pass."""
    submitted = [c for c in report.checks if c.name.startswith(_PREFIXES)]
    if not report.serving:
        if submitted:
            raise InvalidInput(
                f"the verification report has serving checks ({submitted[0].name}, ...) but no serving profile; "
                "run `adapters verify --target ...` again"
            )
        return
    try:
        targets = [ServingTarget.from_profile(p) for p in report.serving]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"the verification report's serving profile is malformed ({exc}); verify again") from None
    contents = adapter()
    derived = [c for target, base in targets for c in serving_checks(target, contents.config, contents.tensors, base)]
    if [c.to_dict() for c in derived] != [c.to_dict() for c in submitted]:
        raise InvalidInput(
            f"the serving checks in the verification report of {report.ref} are not the ones the registry derives "
            "from the version's stored config and headers for the same targets; run `adapters verify --target ...` "
            "again"
        )
