"""Human renderings of the library's results (rich). One function per result type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cli._output import human_size, short_digest, stdout_console, table

if TYPE_CHECKING:
    from registry import (
        ActionResult,
        ActivePolicy,
        AuditVerification,
        ChannelState,
        Event,
        MergeResult,
        PolicyCheck,
        PullResult,
        PushResult,
        UserInfo,
        VerificationReport,
        VersionInfo,
        VersionSummary,
    )

__all__ = [
    "render_action",
    "render_audit_log",
    "render_audit_verify",
    "render_channels",
    "render_checkpoint",
    "render_evals",
    "render_keypair",
    "render_ls",
    "render_merge",
    "render_policy",
    "render_policy_check",
    "render_policy_set",
    "render_pull",
    "render_push",
    "render_show",
    "render_trust",
    "render_user",
    "render_users",
    "render_verification",
]

_MARK = {True: "[green]✓ pass[/]", False: "[red]✗ FAIL[/]", None: "[yellow]· n/a [/]"}


def render_push(result: PushResult) -> None:
    console = stdout_console()
    console.print(f"[bold]{result.ref}[/bold] {result.digest}")
    console.print(
        f"  {result.files} files, {human_size(result.size)} ({human_size(result.new_bytes)} new in the store)",
        highlight=False,
    )


def render_pull(result: PullResult) -> None:
    console = stdout_console()
    console.print(f"[bold]{result.ref}[/bold] {result.digest}")
    console.print(f"  {len(result.files)} files verified and written to {result.path}", highlight=False)


def render_ls(rows: Sequence[VersionSummary]) -> None:
    console = stdout_console()
    if not rows:
        console.print("no versions match (push one with `adapters push DIR --name NAME`)", style="dim")
        return
    console.print(
        table(
            None,
            ["REF", "STATE", "CHANNELS", "PEFT", "R", "BASE", "QUANT", "SIZE", "CREATED", "BY", "DIGEST"],
            [
                (
                    r.ref,
                    r.state,
                    ",".join(r.channels) or "-",
                    r.peft_type,
                    r.r,
                    _short_base(r.base),
                    r.quantization,
                    human_size(r.size),
                    r.created_at[:19].replace("T", " "),
                    r.created_by,
                    short_digest(r.digest),
                )
                for r in rows
            ],
        )
    )


def _short_base(name: str | None, width: int = 40) -> str:
    if not name:
        return "-"
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _kv(pairs: Sequence[tuple[str, Any]]) -> Any:
    from rich.table import Table

    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for k, v in pairs:
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v) or "-"
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items()) or "-"
        t.add_row(k, "-" if v is None or v == "" else str(v))
    return t


def render_show(info: VersionInfo) -> None:
    console = stdout_console()
    for section in (_show_identity, _show_adapter, _show_base, _show_lineage, _show_records, _show_history):
        section(console, info)
    console.print()
    files = [(f.path, human_size(f.size), f.sha256) for f in info.manifest.files]
    console.print(table("Files", ["PATH", "SIZE", "SHA256"], files))


def _when(at: str) -> str:
    return at[:19].replace("T", " ")


def _show_identity(console: Any, info: VersionInfo) -> None:
    m = info.manifest
    channels = f"  channels: {', '.join(info.channels)}" if info.channels else ""
    console.print(f"[bold]{info.ref}[/bold]  {info.digest}  \\[{info.state}]{channels}", highlight=False)
    console.print(
        _kv(
            [
                ("created", f"{m.created_at} by {m.created_by}"),
                ("description", m.description),
                ("parent", f"{m.parent.name}:{m.parent.version} {m.parent.digest}" if m.parent else None),
                ("size", f"{human_size(m.size)} in {len(m.files)} files"),
            ]
        )
    )


def _show_adapter(console: Any, info: VersionInfo) -> None:
    p = info.manifest.peft
    console.print("\n[bold underline]Adapter[/]")
    console.print(
        _kv(
            [
                ("peft type", p.type),
                ("task type", p.task_type),
                ("r / alpha", f"{p.r} / {p.lora_alpha}" if p.r is not None else None),
                ("rsLoRA / DoRA", f"{p.use_rslora} / {p.use_dora}"),
                ("target modules", p.target_modules),
                ("modules to save", p.modules_to_save),
                ("rank pattern", p.rank_pattern),
                ("alpha pattern", p.alpha_pattern),
                ("tensors", f"{p.tensors} ({', '.join(f'{k}×{v}' for k, v in p.dtypes.items())})"),
                ("parameters", f"{p.parameters:,}"),
                ("peft version", p.peft_version),
            ]
        )
    )


def _show_base(console: Any, info: VersionInfo) -> None:
    m = info.manifest
    q = m.quantization
    quant = q.method
    if q.double_quant is not None or q.compute_dtype:
        quant += f" (double quant: {q.double_quant}, compute dtype: {q.compute_dtype})"
    console.print("\n[bold underline]Base model[/]")
    console.print(
        _kv(
            [
                ("name", m.base.name),
                *([("path", m.base.path)] if m.base.path and m.base.path != m.base.name else []),
                ("revision", m.base.revision),
                ("fingerprint", m.base.fingerprint or _no_fingerprint(m.base.unverified)),
                ("weight files", m.base.files),
                ("found in", m.base.source),
                ("training quantization", quant),
            ]
        )
    )


def _no_fingerprint(unverified: bool) -> str:
    if unverified:
        return "none: UNVERIFIED (the base directory held no weight files; pushed with --allow-unverified-base)"
    return "none (not found locally at push)"


def _show_lineage(console: Any, info: VersionInfo) -> None:
    m = info.manifest
    if m.datasets:
        console.print()
        rows = [
            (d.name, d.split, d.rows, d.license, d.revision, short_digest(d.sha256, 16), d.uri or d.path)
            for d in m.datasets
        ]
        console.print(table("Datasets", ["NAME", "SPLIT", "ROWS", "LICENSE", "REVISION", "SHA256", "URI / PATH"], rows))
    if m.training:
        console.print("\n[bold underline]Training[/]")
        console.print(_kv(list(m.training.items())))


def _show_records(console: Any, info: VersionInfo) -> None:
    if info.evals:
        console.print()
        evals = [(e.metric, f"{e.value:g}", e.dataset, _when(e.recorded_at), e.recorded_by) for e in info.evals]
        console.print(table("Evaluations", ["METRIC", "VALUE", "DATASET", "RECORDED", "BY"], evals))
    console.print()
    if info.verifications:
        console.print()
        reports = [
            (v.id, _when(v.created_at), v.created_by, v.mode, "pass" if v.passed else "FAIL",
             short_digest(v.base_fingerprint), v.device or "-", ", ".join(c.name for c in v.failures) or "-")
            for v in info.verifications
        ]  # fmt: skip
        console.print(
            table("Verifications", ["#", "WHEN", "BY", "MODE", "RESULT", "BASE", "DEVICE", "FAILED CHECKS"], reports)
        )
    if info.approvals:
        console.print()
        signed = {True: "valid", False: "INVALID", None: "no"}
        approvals = [
            (_when(a.at), a.actor, ", ".join(a.roles), a.decision, signed[a.signature_valid],
             short_digest(a.policy_digest), a.comment)
            for a in info.approvals
        ]  # fmt: skip
        console.print(
            table("Approvals", ["WHEN", "WHO", "ROLES", "DECISION", "SIGNED", "POLICY", "COMMENT"], approvals)
        )


def _show_history(console: Any, info: VersionInfo) -> None:
    if not (info.history or info.releases):
        return
    console.print()
    rows = [(t.at, t.actor, f"{t.action}: {t.from_state} -> {t.to_state}", t.reason) for t in info.history]
    rows += [(m.at, m.actor, f"{m.action} to {m.channel}", m.reason) for m in info.releases]
    console.print(
        table("History", ["WHEN", "WHO", "WHAT", "WHY"], [(_when(a), b, c, d) for a, b, c, d in sorted(rows)])
    )


def render_verification(report: VerificationReport) -> None:
    console = stdout_console()
    verdict = "[green]PASSED[/]" if report.passed else "[red]FAILED[/]"
    console.print(f"[bold]verify {report.ref}[/bold] ({report.mode}) against {report.base_name}: {verdict}")
    for check in report.checks:
        console.print(f"  {_MARK[check.passed]}  [bold]{check.name}[/]: {check.message}", highlight=False)
        if check.passed is False:
            for detail in check.details[1:]:
                console.print(f"             {detail}", highlight=False)
    for note in report.not_checked:
        console.print(f"  [yellow]· not checked[/]: {note}", highlight=False)
    if report.device:
        memory = human_size(report.peak_memory_bytes)
        kind = "CUDA max allocated" if report.peak_memory_kind == "cuda_max_allocated" else "process peak RSS"
        q = report.quantization or {}
        seconds = f"{report.load_seconds:.2f} s" if report.load_seconds is not None else "-"
        console.print(
            f"  device {report.device} ({report.device_name}); {q.get('method')} double_quant={q.get('double_quant')} "
            f"compute {q.get('compute_dtype')}; load {seconds}; peak memory {memory} ({kind})",
            highlight=False,
        )
    console.print(f"  report #{report.id} recorded at {report.created_at} by {report.created_by}", style="dim")


def render_action(result: ActionResult) -> None:
    console = stdout_console()
    if not result.changed:
        console.print(f"{result.ref} is already what {result.channel} points to; nothing changed", highlight=False)
        return
    what = {
        "review": "submitted for review",
        "approve": "approved" if result.state == "approved" else "approval recorded",
        "reject": "rejected",
        "release": f"released to {result.channel}",
        "rollback": f"{result.channel} rolled back",
        "deprecate": "deprecated",
        "revoke": "revoked",
    }[result.action]
    line = f"[bold]{result.ref}[/bold] {what}; state {result.previous_state} -> {result.state}"
    if result.action == "approve":
        line += f" ({result.approvals} of {result.approvals_required} approvals)"
    if result.action in ("release", "rollback"):
        line += f"; {result.channel}: {result.previous or 'none'} -> {result.ref}"
    console.print(line, highlight=False)
    merged = (result.details or {}).get("merged")
    if merged:
        console.print(
            f"  merged checkpoint: {merged['out']} ({len(merged['files'])} files, sha256 recorded)", highlight=False
        )
    extra = []
    if result.policy_digest:
        extra.append(f"policy {result.policy} {short_digest(result.policy_digest)}")
    if result.signed_with:
        extra.append(f"signed with {result.signed_with[:19]}…")
    if extra:
        console.print("  " + "; ".join(extra), style="dim", highlight=False)


def render_channels(name: str, states: Sequence[ChannelState]) -> None:
    console = stdout_console()
    if not states:
        console.print(f"{name} has not been released to any channel", style="dim")
        return
    for c in states:
        console.print(
            f"[bold]{name}@{c.channel}[/bold] -> {name}:{c.current} ({c.current_state}) {short_digest(c.current_digest)}",
            highlight=False,
        )
        console.print(
            table(
                None,
                ["WHEN", "ACTION", "VERSION", "FROM", "BY", "SIGNED", "POLICY", "REASON"],
                [
                    (
                        m.at[:19].replace("T", " "),
                        m.action,
                        m.version,
                        m.previous,
                        m.actor,
                        {True: "valid", False: "INVALID", None: "no"}[m.signature_valid],
                        short_digest(m.policy_digest),
                        m.reason,
                    )
                    for m in c.history
                ],
            )
        )


def render_policy_check(check: PolicyCheck) -> None:
    console = stdout_console()
    where = f" for a release to {check.channel}" if check.channel else ""
    verdict = "[green]all rules met[/]" if check.passed else "[red]NOT MET[/]"
    console.print(
        f"[bold]{check.ref}[/bold] against policy {check.policy!r} ({short_digest(check.policy_digest)}){where}: {verdict}",
        highlight=False,
    )
    for r in check.results:
        console.print(f"  {_MARK[r.passed]}  [bold]{r.rule}[/]: {r.message}", highlight=False)


def render_audit_log(events: Sequence[Event]) -> None:
    console = stdout_console()
    console.print(
        table(
            None,
            ["SEQ", "WHEN", "ACTOR", "ACTION", "SUBJECT", "HASH"],
            [(e.seq, e.at[:19].replace("T", " "), e.actor, e.action, e.subject, e.hash[:12]) for e in events],
        )
    )


def render_audit_verify(result: AuditVerification) -> None:
    console = stdout_console()
    if result.ok:
        console.print(
            f"[green]audit chain intact[/]: {result.events} events, head {result.head[:16]}…; {result.facts} facts "
            f"match their events, {result.signatures} signatures verify",
            highlight=False,
        )
    else:
        console.print(f"[red]AUDIT CHAIN BROKEN[/]: {result.findings[0].message}", highlight=False)
        for f in result.findings[1:]:
            console.print(f"  also: {f.message}", highlight=False)
    if result.initialised_at is None:
        console.print(
            f"  no root of trust: the {result.events} events were recorded before signed governance "
            "(`adapters init` starts it)",
            highlight=False,
        )
    elif result.unsigned_events:
        console.print(
            f"  {result.unsigned_events} events were recorded before signed governance began (event "
            f"{result.initialised_at}, the registry init)",
            highlight=False,
        )
    for c in result.checkpoints:
        status = "matches" if c["ok"] else "does NOT match"
        console.print(f"  checkpoint {c['path']} ({c['size']} events, {c['at']}) {status}", highlight=False)
    if result.trust:
        console.print(f"  trust file {result.trust['path']}: {'ok' if result.trust['ok'] else 'DOES NOT MATCH'}")
    if result.blobs:
        b = result.blobs
        console.print(f"  blobs ({b['mode']}): {b['checked']} files, {human_size(b['bytes'])} checked", highlight=False)


def render_merge(result: MergeResult) -> None:
    console = stdout_console()
    size = sum(f.size for f in result.files)
    console.print(
        f"[bold]{result.ref}[/bold] merged into {result.base_name} -> {result.out} "
        f"({result.merged_tensors} tensors merged, {result.copied_tensors} copied, {human_size(size)}, {result.seconds:.2f} s)",
        highlight=False,
    )
    console.print(
        table(None, ["FILE", "SIZE", "SHA256"], [(f.path, human_size(f.size), f.sha256) for f in result.files])
    )


def render_evals(recorded: dict[str, Any]) -> None:
    for e in recorded["evals"]:
        dataset = f" on {e['dataset']}" if e["dataset"] else ""
        print(f"{recorded['ref']}  {e['metric']} = {e['value']:g}{dataset}")


def _scope(active: ActivePolicy) -> str:
    return "registry" if active.scope == "*" else f"channel {active.scope}"


def render_policy_set(active: ActivePolicy) -> None:
    scope = "the registry" if active.scope == "*" else f"channel {active.scope}"
    print(f"policy {active.policy.name!r} ({active.policy.digest}) is now active for {scope}")


def render_policy(active: ActivePolicy) -> None:
    origin = "built-in default" if active.builtin else f"set {active.set_at} by {active.set_by}"
    print(f"# policy {active.policy.name!r} for the {_scope(active)} ({origin})\n# digest {active.policy.digest}")
    print(active.policy.content.rstrip())


def render_user(info: UserInfo) -> None:
    removed = f"; removed {info.removed_at} by {info.removed_by}" if info.removed_at else ""
    print(f"{info.name}: roles {', '.join(info.roles) or 'none'}; key {info.key_fingerprint or 'none'}{removed}")


def render_users(infos: Sequence[UserInfo]) -> None:
    stdout_console().print(
        table(
            None,
            ["USER", "ROLES", "KEY", "ADDED", "BY"],
            [(i.name, ", ".join(i.roles), i.key_fingerprint, i.created_at[:19], i.created_by) for i in infos],
        )
    )


def render_keypair(result: dict[str, str], user: str) -> None:
    print(f"private key: {result['private_key']}  (keep it secret; use it with --key or ADAPTERS_KEY)")
    print(f"public key:  {result['public_key']}  ({result['fingerprint']})")
    print(f"register it: adapters users add {user} --public-key {result['public_key']}")


def render_checkpoint(checkpoint: dict[str, Any]) -> None:
    print(
        f"checkpoint of {checkpoint['size']} events, head {checkpoint['head'][:16]}…, signed by {checkpoint['key']}: "
        + ", ".join(checkpoint["paths"])
    )


def render_trust(anchor: dict[str, Any]) -> None:
    print(f"registry {anchor['registry_id']} initialised: admin {anchor['admin']} ({anchor['admin_key']})")
    print(f"  root of trust: event {anchor['init']['seq']} {anchor['init']['hash']}")
    print(f"  registry key:  {anchor['registry_key']}")
    print(f"  trust file:    {anchor['path']}  (keep a copy where the database's administrators cannot write)")
