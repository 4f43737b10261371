"""``adapters show``: every fact of one version, section by section (rich)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cli._output import human_size, stdout_console
from cli._tables import prose, render_table, short_digest, whole

if TYPE_CHECKING:
    from registry import VersionInfo

__all__ = ["quantization_text", "render_show", "serving_text", "when"]


def when(at: str) -> str:
    """A recorded time as people read it: ``2026-11-22 10:00:00`` (UTC)."""
    return at[:19].replace("T", " ")


def quantization_text(method: str | None, double_quant: bool | None, compute_dtype: str | None) -> str:
    """``nf4 (double quant, compute bfloat16)``: only what is known, never ``None``."""
    details = []
    if double_quant is not None:
        details.append("double quant" if double_quant else "no double quant")
    if compute_dtype:
        details.append(f"compute {compute_dtype}")
    text = method or "-"
    return f"{text} ({', '.join(details)})" if details else text


def _kv(pairs: Sequence[tuple[str, Any]]) -> Any:
    from rich.table import Table
    from rich.text import Text

    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for k, v in pairs:
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v) or "-"
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items()) or "-"
        t.add_row(k, Text("-" if v is None or v == "" else str(v)))
    return t


def render_show(info: VersionInfo) -> None:
    console = stdout_console()
    sections = (_show_identity, _show_adapter, _show_base, _show_lineage, _show_records, _show_notes, _show_history)
    for section in sections:
        section(console, info)
    console.print()
    files = [(f.path, human_size(f.size), short_digest(f.sha256)) for f in info.manifest.files]
    render_table(console, "Files", [prose("PATH"), whole("SIZE", drop=1), whole("SHA256")], files)


def _show_identity(console: Any, info: VersionInfo) -> None:
    m = info.manifest
    channels = f"  channels: {', '.join(info.channels)}" if info.channels else ""
    console.print(f"[bold]{info.ref}[/bold]  {info.digest}  \\[{info.state}]{channels}", highlight=False)
    console.print(
        _kv(
            [
                ("created", f"{m.created_at} by {m.created_by}"),
                ("description", m.description),
                ("tags", dict(info.tags) or None),
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
                ("trainable parameters", f"{p.trainable_parameters:,}" if p.trainable_parameters is not None else None),
                ("parameters", f"{p.parameters:,} in the weights file"),
                ("peft version", p.peft_version),
            ]
        )
    )


def _show_base(console: Any, info: VersionInfo) -> None:
    m = info.manifest
    q = m.quantization
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
                ("training quantization", quantization_text(q.method, q.double_quant, q.compute_dtype)),
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
            (d.name, d.split, d.rows, d.license, d.revision, short_digest(d.sha256), d.uri or d.path)
            for d in m.datasets
        ]
        columns = [prose("NAME"), whole("SPLIT", drop=3), whole("ROWS", drop=4), whole("LICENSE"),
                   prose("REVISION", drop=5), whole("SHA256"), prose("URI / PATH", drop=1)]  # fmt: skip
        render_table(console, "Datasets", columns, rows)
    if m.training:
        console.print("\n[bold underline]Training[/]")
        console.print(_kv(list(m.training.items())))


def _show_records(console: Any, info: VersionInfo) -> None:
    if info.evals:
        console.print()
        evals = [(e.metric, f"{e.value:g}", e.dataset, when(e.recorded_at), e.recorded_by) for e in info.evals]
        columns = [whole("METRIC"), whole("VALUE"), prose("DATASET", drop=1), prose("RECORDED", drop=2),
                   prose("BY", drop=3)]  # fmt: skip
        render_table(console, "Evaluations", columns, evals)
    if info.verifications:
        console.print()
        reports = [
            (v.id, when(v.created_at), v.created_by, v.mode, "pass" if v.passed else "FAIL",
             short_digest(v.base_fingerprint), v.device, serving_text(v.serving), ", ".join(c.name for c in v.failures))
            for v in info.verifications
        ]  # fmt: skip
        columns = [whole("#"), prose("WHEN", drop=2), prose("BY", drop=4), whole("MODE"), whole("RESULT"),
                   whole("BASE", drop=3), whole("DEVICE", drop=5), prose("SERVING", drop=6),
                   prose("FAILED CHECKS", drop=1)]  # fmt: skip
        render_table(console, "Verifications", columns, reports)
    if info.approvals:
        console.print()
        signed = {True: "valid", False: "INVALID", None: "no"}
        approvals = [
            (when(a.at), a.actor, ", ".join(a.roles), a.decision, signed[a.signature_valid],
             short_digest(a.policy_digest), a.comment)
            for a in info.approvals
        ]  # fmt: skip
        columns = [prose("WHEN", drop=3), prose("WHO"), prose("ROLES", drop=5), whole("DECISION"),
                   whole("SIGNED", drop=4), whole("POLICY", drop=2), prose("COMMENT", drop=1)]  # fmt: skip
        render_table(console, "Approvals", columns, approvals)


def _show_notes(console: Any, info: VersionInfo) -> None:
    if not info.notes:
        return
    console.print()
    rows = [(when(n.at), n.by, n.text) for n in info.notes]
    render_table(console, "Notes", [prose("WHEN", drop=1), prose("BY", drop=2), prose("NOTE")], rows)


def _show_history(console: Any, info: VersionInfo) -> None:
    if not (info.history or info.releases):
        return
    console.print()
    rows = [(t.at, t.actor, f"{t.action}: {t.from_state} -> {t.to_state}", t.reason) for t in info.history]
    rows += [(m.at, m.actor, f"{m.action} to {m.channel}", m.reason) for m in info.releases]
    render_table(
        console,
        "History",
        [prose("WHEN"), prose("WHO", drop=1), prose("WHAT"), prose("WHY", drop=2)],
        [(when(a), b, c, d) for a, b, c, d in sorted(rows)],
    )


def serving_text(profiles: Sequence[Mapping[str, Any]]) -> str:
    """The serving targets a report checked, short: ``vllm (max rank 16), lorax``."""
    out = []
    for p in profiles:
        limits = [f"max rank {p['max_lora_rank']}"] if p.get("max_lora_rank") is not None else []
        if p.get("lora_target_modules"):
            limits.append("modules " + " ".join(p["lora_target_modules"]))
        out.append(str(p.get("engine")) + (f" ({', '.join(limits)})" if limits else ""))
    return ", ".join(out)
