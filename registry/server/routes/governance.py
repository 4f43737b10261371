"""The lifecycle, channels, policies, evaluations and annotations over the API.

Each endpoint is one call of the facade as the token's user, with the client's signature when it
sent one (:mod:`registry.server.signing`): the same rules, the same records, the same results as
the embedded registry. Versions are named as on the command line (``name:3``, ``team/name@prod``).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from registry.server.routes._common import API, as_caller, signer

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["routes"]


def routes(app: "FastAPI", caller: Callable[..., Any]) -> None:
    from fastapi import Body, Depends, Request

    from registry import ApiToken, Evaluation

    V = f"{API}/versions/{{ref:path}}"

    @app.post(f"{V}/review", tags=["lifecycle"])
    def review(
        ref: str,
        request: Request,
        comment: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Submit a draft for review."""
        return dict(as_caller(request, token).review(ref, comment=comment, key=key).to_dict())

    @app.post(f"{V}/approve", tags=["lifecycle"])
    def approve(
        ref: str,
        request: Request,
        comment: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Approve under the policy in force (a refusal is recorded and answered 422, exit code 3)."""
        return dict(as_caller(request, token).approve(ref, comment=comment, key=key).to_dict())

    @app.post(f"{V}/reject", tags=["lifecycle"])
    def reject(
        ref: str,
        request: Request,
        comment: str = Body(embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Reject a version in review; final for that version."""
        return dict(as_caller(request, token).reject(ref, comment=comment, key=key).to_dict())

    @app.post(f"{V}/deprecate", tags=["lifecycle"])
    def deprecate(
        ref: str,
        request: Request,
        reason: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Deprecate a version."""
        return dict(as_caller(request, token).deprecate(ref, reason=reason, key=key).to_dict())

    @app.post(f"{V}/revoke", tags=["lifecycle"])
    def revoke(
        ref: str,
        request: Request,
        reason: str = Body(embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Revoke a version: pulls refuse it, and no channel may point to it again."""
        return dict(as_caller(request, token).revoke(ref, reason=reason, key=key).to_dict())

    @app.post(f"{V}/release", tags=["channels"])
    def release(
        ref: str,
        request: Request,
        channel: str = Body(embed=True),
        reason: str | None = Body(default=None, embed=True),
        merged: dict[str, Any] | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Point a channel at the version, if the channel's policy allows it; ``merged``: the record of the
        merged checkpoint the client wrote where the base is (``release --merge``), recorded with the release."""
        served = as_caller(request, token)
        return dict(served.release(ref, channel=channel, reason=reason, key=key, merged=merged).to_dict())

    @app.post(f"{V}/release-check", tags=["channels"])
    def release_check(
        ref: str,
        request: Request,
        channel: str = Body(embed=True),
        signed: bool = Body(default=False, embed=True),
        token: ApiToken = Depends(caller),
    ) -> dict[str, Any]:
        """The release's checks, read-only, before the client merges (``release --merge``): whether it would
        move the channel; a refusal is recorded and answered as the release's would be."""
        return {"would_release": as_caller(request, token).would_release(ref, channel=channel, signed=signed)}

    @app.post(f"{API}/adapters/{{name:path}}/rollback", tags=["channels"])
    def rollback(
        name: str,
        request: Request,
        channel: str = Body(embed=True),
        to: int | None = Body(default=None, embed=True),
        reason: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Move a channel back to the version it pointed to before (or to version ``to``)."""
        result = as_caller(request, token).rollback(name, channel=channel, to=to, key=key, reason=reason)
        return dict(result.to_dict())

    @app.get(f"{API}/adapters/{{name:path}}/channels", tags=["channels"])
    def channels(name: str, request: Request, token: ApiToken = Depends(caller)) -> list[dict[str, Any]]:
        """Each channel of an adapter: its current version and its full history."""
        return [c.to_dict() for c in as_caller(request, token).channels(name)]

    @app.get(f"{API}/policy", tags=["policies"])
    def show_policy(
        request: Request,
        channel: str | None = None,
        token: ApiToken = Depends(caller),
    ) -> dict[str, Any]:
        """The policy in force (for a channel: its own, else the registry's, else the built-in default)."""
        return dict(as_caller(request, token).policy(channel=channel).to_dict())

    @app.put(f"{API}/policy", tags=["policies"])
    def set_policy(
        request: Request,
        content: str = Body(embed=True),
        source: str = Body(embed=True),
        channel: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Make a policy (its YAML text, as the client read it) active for the registry or a channel. Admins only."""
        registry = as_caller(request, token)
        return dict(registry.set_policy_document(content, source=source, channel=channel, key=key).to_dict())

    @app.get(f"{API}/policy/check", tags=["policies"])
    def check_policy(
        request: Request,
        ref: str,
        channel: str | None = None,
        token: ApiToken = Depends(caller),
    ) -> dict[str, Any]:
        """Every rule of the policy in force against a version (``channel``: as if releasing there)."""
        return dict(as_caller(request, token).check_policy(ref, channel=channel).to_dict())

    @app.post(f"{V}/verifications", tags=["verification"])
    def record_verification(
        ref: str,
        request: Request,
        report: dict[str, Any] = Body(embed=True),
        reference: dict[str, Any] | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Record a verification report the client computed where the base model is; the server checks every
        fact of it it can derive (version, digest, recorded base, author, time, the probe reference compared)."""
        recorded = as_caller(request, token).record_verification(ref, report, reference=reference, key=key)
        return dict(recorded.to_dict())

    @app.get(f"{API}/probe-references", tags=["verification"])
    def probe_reference(
        request: Request, ref: str, fingerprint: str, settings: str, token: ApiToken = Depends(caller)
    ) -> dict[str, Any]:
        """The probe reference a load check on this base (``fingerprint``) and load ``settings`` compares with."""
        return {"reference": as_caller(request, token).probe_reference(ref, fingerprint, settings)}

    @app.post(f"{V}/evals", tags=["evaluations"])
    def add_evals(
        ref: str,
        request: Request,
        metrics: list[dict[str, Any]] = Body(embed=True),
        dataset: str | None = Body(default=None, embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Append evaluation results (``{"metric", "value", "dataset"}`` each) to a version."""
        evals = [Evaluation.from_mapping(m) for m in metrics]
        label, recorded = as_caller(request, token).add_evals(ref, evals, dataset=dataset, key=key)
        return {"ref": label, "evals": [e.to_dict() for e in recorded]}

    @app.post(f"{V}/tags", tags=["annotations"])
    def tag(
        ref: str,
        request: Request,
        tags: list[str] = Body(embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Set tags (``key=value``) on a version."""
        return dict(as_caller(request, token).tag(ref, tags, key=key).to_dict())

    @app.post(f"{V}/untag", tags=["annotations"])
    def untag(
        ref: str,
        request: Request,
        keys: list[str] = Body(embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Remove tags from a version."""
        return dict(as_caller(request, token).untag(ref, keys, key=key).to_dict())

    @app.post(f"{V}/notes", tags=["annotations"])
    def note(
        ref: str,
        request: Request,
        text: str = Body(embed=True),
        token: ApiToken = Depends(caller),
        key: Any = Depends(signer),
    ) -> dict[str, Any]:
        """Add a note to a version."""
        return dict(as_caller(request, token).note(ref, text, key=key).to_dict())
