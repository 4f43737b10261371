"""Human renderings of the library's results (rich). One function per result type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cli._output import human_size, short_digest, stdout_console, table

if TYPE_CHECKING:
    from registry import PullResult, PushResult, VerificationReport, VersionInfo, VersionSummary

__all__ = ["render_ls", "render_pull", "render_push", "render_show", "render_verification"]

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
            ["REF", "STATE", "PEFT", "R", "BASE", "QUANT", "SIZE", "CREATED", "BY", "DIGEST"],
            [
                (
                    r.ref,
                    r.state,
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
    m = info.manifest
    p = m.peft
    console.print(f"[bold]{info.ref}[/bold]  {info.digest}  [{info.state}]")
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
    console.print("\n[bold underline]Base model[/]")
    q = m.quantization
    quant = q.method
    if q.double_quant is not None or q.compute_dtype:
        quant += f" (double quant: {q.double_quant}, compute dtype: {q.compute_dtype})"
    console.print(
        _kv(
            [
                ("name", m.base.name),
                ("revision", m.base.revision),
                ("fingerprint", m.base.fingerprint or "none (not found locally at push)"),
                ("found in", m.base.source),
                ("training quantization", quant),
            ]
        )
    )
    if m.datasets:
        console.print()
        console.print(
            table(
                "Datasets",
                ["NAME", "SPLIT", "ROWS", "LICENSE", "REVISION", "SHA256", "URI / PATH"],
                [
                    (d.name, d.split, d.rows, d.license, d.revision, short_digest(d.sha256, 16), d.uri or d.path)
                    for d in m.datasets
                ],
            )
        )
    if m.training:
        console.print("\n[bold underline]Training[/]")
        console.print(_kv(list(m.training.items())))
    if info.evals:
        console.print()
        console.print(
            table(
                "Evaluations",
                ["METRIC", "VALUE", "DATASET", "RECORDED", "BY"],
                [
                    (e.metric, f"{e.value:g}", e.dataset, e.recorded_at[:19].replace("T", " "), e.recorded_by)
                    for e in info.evals
                ],
            )
        )
    console.print()
    if info.verifications:
        console.print()
        console.print(
            table(
                "Verifications",
                ["#", "WHEN", "BY", "MODE", "RESULT", "BASE", "DEVICE", "FAILED CHECKS"],
                [
                    (
                        v.id,
                        v.created_at[:19].replace("T", " "),
                        v.created_by,
                        v.mode,
                        "pass" if v.passed else "FAIL",
                        short_digest(v.base_fingerprint),
                        v.device or "-",
                        ", ".join(c.name for c in v.failures) or "-",
                    )
                    for v in info.verifications
                ],
            )
        )
    console.print()
    console.print(table("Files", ["PATH", "SIZE", "SHA256"], [(f.path, human_size(f.size), f.sha256) for f in m.files]))


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
