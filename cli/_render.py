"""Human renderings of the library's results (rich). One function per result type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cli._output import human_size, stdout_console
from cli._render_show import quantization_text, render_show, serving_text, when
from cli._tables import prose, render_table, short_digest, whole

if TYPE_CHECKING:
    from rich.text import Text

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

_MARK = {True: "[green]✓ pass[/]", False: "[red]✗ FAIL[/]", None: "[yellow]· n/a[/]"}


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
    columns = [
        whole("REF"), whole("STATE"), prose("CHANNELS", drop=8), whole("PEFT", drop=5), whole("R", drop=3), prose("BASE", drop=1),
        whole("QUANT", drop=7), whole("SIZE", drop=4), prose("CREATED", drop=2), prose("BY", drop=6), whole("DIGEST"),
    ]  # fmt: skip
    rows_ = [
        (r.ref, r.state, ",".join(r.channels) or "-", r.peft_type, r.r, _short_base(r.base), r.quantization, human_size(r.size),
         when(r.created_at), r.created_by, short_digest(r.digest))
        for r in rows
    ]  # fmt: skip
    render_table(console, None, columns, rows_)


def _short_base(name: str | None, width: int = 40) -> str:
    if not name:
        return "-"
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def render_verification(report: VerificationReport) -> None:
    from rich.text import Text

    console = stdout_console()
    verdict = "[green]PASSED[/]" if report.passed else "[red]FAILED[/]"
    console.print(f"[bold]verify {report.ref}[/bold] ({report.mode}) against {report.base_name}: {verdict}")
    if report.serving:
        _indented(console, Text(f"serving targets: {serving_text(report.serving)}"))
    _checklist(
        console,
        [(c.passed, c.name, c.message, c.details[1:] if c.passed is False else ()) for c in report.checks],
    )
    for note in report.not_checked:
        _indented(console, Text.assemble(("· not checked", "yellow"), ": ", note))
    if report.device:
        _indented(console, Text(_load_facts(report)))
    _indented(console, Text(f"report #{report.id} recorded at {report.created_at} by {report.created_by}", "dim"))


def _indented(console: Any, text: Text) -> None:
    """A line two spaces in, its continuation lines too."""
    from rich.padding import Padding

    console.print(Padding(text, (0, 0, 0, 2)))


def _load_facts(report: VerificationReport) -> str:
    """Where and how the load check ran, saying only what is known."""
    q = report.quantization or {}
    parts = [f"device {report.device}" + (f" ({report.device_name})" if report.device_name else "")]
    if q.get("method") == "none":  # the load check's base not quantized: in its own dtype (or --compute-dtype)
        parts.append(f"full precision ({q.get('compute_dtype') or 'its own dtype'})")
    elif q.get("method"):
        parts.append(quantization_text(q.get("method"), q.get("double_quant"), q.get("compute_dtype")))
    if report.load_seconds is not None:
        parts.append(f"load {report.load_seconds:.2f} s")
    if report.peak_memory_bytes is not None:
        kind = "CUDA max allocated" if report.peak_memory_kind == "cuda_max_allocated" else "process peak RSS"
        parts.append(f"peak memory {human_size(report.peak_memory_bytes)} ({kind})")
    return "; ".join(parts)


def _checklist(console: Any, items: Sequence[tuple[bool | None, str, str, Sequence[str]]]) -> None:
    """``  ✓ pass  name: message`` per item, a long message wrapping under itself, not under the mark."""
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for passed, name, message, details in items:
        body = Text.assemble((name, "bold"), ": ", message)  # Text: a message is never read as markup
        for detail in details:
            body.append("\n   " + detail)
        grid.add_row(Text.from_markup(_MARK[passed]), body)
    console.print(Padding(grid, (0, 0, 0, 2)))


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
        extra.append(f"signed with {short_digest(result.signed_with)}")
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
        columns = [prose("WHEN", drop=2), whole("ACTION"), whole("VERSION"), whole("FROM", drop=3), prose("BY", drop=4),
                   whole("SIGNED", drop=5), whole("POLICY", drop=6), prose("REASON", drop=1)]  # fmt: skip
        signed = {True: "valid", False: "INVALID", None: "no"}
        rows = [
            (when(m.at), m.action, m.version, m.previous, m.actor, signed[m.signature_valid],
             short_digest(m.policy_digest), m.reason)
            for m in c.history
        ]  # fmt: skip
        render_table(console, None, columns, rows)


def render_policy_check(check: PolicyCheck) -> None:
    console = stdout_console()
    where = f" for a release to {check.channel}" if check.channel else ""
    verdict = "[green]all rules met[/]" if check.passed else "[red]NOT MET[/]"
    console.print(
        f"[bold]{check.ref}[/bold] against policy {check.policy!r} ({short_digest(check.policy_digest)}){where}: {verdict}",
        highlight=False,
    )
    _checklist(console, [(r.passed, r.rule, r.message, ()) for r in check.results])


def render_audit_log(events: Sequence[Event]) -> None:
    console = stdout_console()
    render_table(
        console,
        None,
        [whole("SEQ"), prose("WHEN", drop=1), prose("ACTOR", drop=2), whole("ACTION"), whole("SUBJECT"), whole("HASH")],
        [(e.seq, when(e.at), e.actor, e.action, e.subject, short_digest(e.hash)) for e in events],
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
    files = [(f.path, human_size(f.size), short_digest(f.sha256)) for f in result.files]
    render_table(console, None, [prose("FILE"), whole("SIZE", drop=1), whole("SHA256")], files)


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
    render_table(
        stdout_console(),
        None,
        [whole("USER"), prose("ROLES", drop=2), whole("KEY"), prose("ADDED", drop=3), prose("BY", drop=4)],
        [
            (i.name, ", ".join(i.roles), short_digest(i.key_fingerprint), when(i.created_at), i.created_by)
            for i in infos
        ],
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
