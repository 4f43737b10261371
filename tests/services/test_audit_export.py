"""The history a server exports, and the results a client rebuilds from JSON: verified over the export,
a registry gives exactly what the embedded verification of its database gives, tampered or not; the
result classes survive their dicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attacker import Attacker

from registry import Registry
from registry.audit.export import AuditExport
from registry.audit.results import AuditVerification, Checkpoint
from registry.audit.verify import Trusted, known_checkpoints, verify_history


def _over_the_wire(reg: Registry, blobs: str | None = None) -> AuditVerification:
    """What a client computes: the export through JSON, verified against trust material held outside it."""
    export = AuditExport.from_dict(json.loads(json.dumps(reg.audit_export(blobs=blobs).to_dict())))
    key = reg.audit_key()
    public = str(key["registry_public_key"]).encode()
    kept = reg.settings.state_dir / str(key["registry_id"]) / "checkpoints"
    trust = reg.settings.config_dir / "trust" / f"{key['registry_id']}.json"
    from registry.audit.trust import TrustAnchor

    trusted = Trusted(public, known_checkpoints([], [kept]), 0, TrustAnchor.load(trust))
    return verify_history(export, trusted, export.blobs)


def _activity(team: Any, llama: Any, tmp_path: Path) -> Registry:
    alice: Registry = team("alice")
    ref = alice.push(llama.adapter, name="sum", base=str(llama.base), evals={"accuracy": 0.9}).ref
    alice.review(ref)
    team("bob").note(ref, "looked at it")
    alice.note(ref, "reviewed")
    alice.audit_checkpoint(tmp_path / "cp.json")
    return alice


def test_an_exported_history_verifies_as_the_database_does(team: Any, llama: Any, tmp_path: Path) -> None:
    alice = _activity(team, llama, tmp_path)
    honest = alice.audit_verify(blobs="quick")
    assert honest.ok, honest.findings
    assert _over_the_wire(alice, blobs="quick") == honest
    attacker = Attacker(alice)
    # an eval raised, and an event rewritten as non-canonical JSON with every hash recomputed
    attacker.execute("UPDATE evals SET value = 0.99 WHERE metric = 'accuracy'")
    note = attacker.rows("SELECT seq, payload FROM audit_events WHERE action = 'note'")[0]
    attacker.execute(
        "UPDATE audit_events SET payload = ? WHERE seq = ?", (json.dumps(json.loads(note["payload"])), note["seq"])
    )
    attacker.rechain()
    tampered = alice.audit_verify()
    assert {"fact-edited", "rewritten"} <= {f.kind for f in tampered.findings}
    assert _over_the_wire(alice) == tampered


def test_checkpoints_and_verifications_survive_their_dicts(team: Any, llama: Any, tmp_path: Path) -> None:
    alice = _activity(team, llama, tmp_path)
    checkpoint = alice.audit_checkpoint([tmp_path / "a.json", tmp_path / "b.json"])
    assert Checkpoint.from_dict(checkpoint.to_dict()).to_dict() == checkpoint.to_dict()
    paths = [str(p) for p in checkpoint.paths]
    as_printed = {**checkpoint.to_dict(), "path": paths[0], "paths": paths}  # `audit checkpoint --json`
    assert Checkpoint.from_dict(as_printed) == checkpoint
    assert Checkpoint.from_dict(json.loads((tmp_path / "a.json").read_text())).signature == checkpoint.signature
    Attacker(alice).execute("UPDATE evals SET value = 0.99 WHERE metric = 'accuracy'")
    result = alice.audit_verify([tmp_path / "a.json"], blobs="quick")
    assert not result.ok and result.checkpoints and result.blobs and result.trust
    again = AuditVerification.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result and again.to_dict() == result.to_dict()
