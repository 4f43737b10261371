"""The lifecycle, channels, policies, evaluations and annotations, as the server answers them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from registry.catalog.results import Annotated
from registry.domain.lineage import Evaluation
from registry.domain.refs import Ref
from registry.domain.versions import EvalRecord
from registry.governance.results import ActionResult, ChannelState, PolicyCheck
from registry.remote._http import API, RemoteBase

if TYPE_CHECKING:
    from registry.policies import ActivePolicy

__all__ = ["GovernanceCalls"]


def _v(ref: object) -> str:
    return f"{API}/versions/{quote(str(ref), safe='/:@')}"


def _name(ref: object) -> str:
    """The adapter a reference names (what the server's payload to sign must be about)."""
    return ref.name if isinstance(ref, Ref) else Ref.parse(str(ref)).name


class GovernanceCalls(RemoteBase):
    """The lifecycle, channels, policies, evaluations and annotations."""

    def _act(self, ref: object, action: str, key: object, body: Mapping[str, Any], signs: str | None = None) -> Any:
        return self._signed("POST", f"{_v(ref)}/{action}", key, signs or action, _name(ref), json=dict(body))

    def review(self, ref: object, *, comment: str | None = None, key: object = None) -> ActionResult:
        """Submit a draft for review."""
        return ActionResult.from_dict(self._act(ref, "review", key, {"comment": comment}))

    def approve(self, ref: object, *, comment: str | None = None, key: object = None) -> ActionResult:
        """Approve under the policy in force."""
        return ActionResult.from_dict(self._act(ref, "approve", key, {"comment": comment}))

    def reject(self, ref: object, *, comment: str, key: object = None) -> ActionResult:
        """Reject a version in review; final for that version."""
        return ActionResult.from_dict(self._act(ref, "reject", key, {"comment": comment}))

    def deprecate(self, ref: object, *, reason: str | None = None, key: object = None) -> ActionResult:
        return ActionResult.from_dict(self._act(ref, "deprecate", key, {"reason": reason}))

    def revoke(self, ref: object, *, reason: str, key: object = None) -> ActionResult:
        """Revoke a version: it is refused by pull and can never be a channel's target again."""
        return ActionResult.from_dict(self._act(ref, "revoke", key, {"reason": reason}))

    def release(self, ref: object, *, channel: str, key: object = None, reason: str | None = None) -> ActionResult:
        """Point ``channel`` at the version if the channel's policy allows it (with a merge: CheckCalls.release)."""
        return ActionResult.from_dict(self._act(ref, "release", key, {"channel": channel, "reason": reason}))

    def rollback(
        self, name: str, *, channel: str, to: int | None = None, key: object = None, reason: str | None = None
    ) -> ActionResult:
        """Move ``channel`` back to the version it pointed to before (or to version ``to``)."""
        path = f"{API}/adapters/{quote(name, safe='/')}/rollback"
        body = {"channel": channel, "to": to, "reason": reason}
        return ActionResult.from_dict(self._signed("POST", path, key, "rollback", name, json=body))

    def channels(self, name: str) -> list[ChannelState]:
        """Each channel of an adapter: its current version and its full history."""
        rows = self._request("GET", f"{API}/adapters/{quote(name, safe='/')}/channels")
        return [ChannelState.from_dict(r) for r in rows]

    def set_policy(self, path: object, *, channel: str | None = None, key: object = None) -> ActivePolicy:
        """Make a policy active: the file (or built-in name) is read here and its text sent. Admins only."""
        from registry.policies import ActivePolicy, policy_source  # the service module reaches the database layer

        content, _ = policy_source(str(path))
        body = {"content": content, "source": str(path), "channel": channel}
        subject = f"channel {channel}" if channel else "registry"
        return ActivePolicy.from_dict(self._signed("PUT", f"{API}/policy", key, "policy set", subject, json=body))

    def policy(self, *, channel: str | None = None) -> ActivePolicy:
        """The policy in force (for a channel: its own, else the registry's, else the built-in default)."""
        params = {"channel": channel} if channel else {}
        from registry.policies import ActivePolicy

        return ActivePolicy.from_dict(self._request("GET", f"{API}/policy", params=params))

    def check_policy(self, ref: object, *, channel: str | None = None) -> PolicyCheck:
        """Every rule of the policy in force against a version (``channel``: as if releasing there)."""
        params = {"ref": str(ref), **({"channel": channel} if channel else {})}
        return PolicyCheck.from_dict(self._request("GET", f"{API}/policy/check", params=params))

    def add_evals(
        self,
        ref: object,
        metrics: Mapping[str, float] | Iterable[str | Evaluation],
        *,
        dataset: str | None = None,
        key: object = None,
    ) -> tuple[str, tuple[EvalRecord, ...]]:
        """Append evaluation results (``{"accuracy": 0.91}`` or ``["accuracy=0.91"]``) to a version."""
        if isinstance(metrics, Mapping):
            evals = [Evaluation(metric=k, value=float(v)) for k, v in metrics.items()]
        else:
            evals = [m if isinstance(m, Evaluation) else Evaluation.parse(m) for m in metrics]
        body = {"metrics": [e.to_dict() for e in evals], "dataset": dataset}
        d = self._signed("POST", f"{_v(ref)}/evals", key, "eval add", _name(ref), json=body)
        return str(d["ref"]), tuple(EvalRecord.from_dict(e) for e in d["evals"])

    def tag(self, ref: object, tags: Mapping[str, str] | Iterable[str], *, key: object = None) -> Annotated:
        """Set tags on a version."""
        pairs = [f"{k}={v}" for k, v in tags.items()] if isinstance(tags, Mapping) else [str(t) for t in tags]
        return Annotated.from_dict(self._act(ref, "tags", key, {"tags": pairs}, signs="tag"))

    def untag(self, ref: object, keys: Iterable[str], *, key: object = None) -> Annotated:
        """Remove tags from a version."""
        return Annotated.from_dict(self._act(ref, "untag", key, {"keys": [str(k) for k in keys]}))

    def note(self, ref: object, text: str, *, key: object = None) -> Annotated:
        """Add a note to a version."""
        return Annotated.from_dict(self._act(ref, "notes", key, {"text": text}, signs="note"))
