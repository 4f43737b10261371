"""The audit report as one self-contained HTML file: no scripts, fonts or images from anywhere
(a Content-Security-Policy forbids every external load), readable on screen and printable
(a print stylesheet, a page break before each version). Problems come first.

The footer holds the report's own sha256: of the document's bytes up to the footer marker,
so ``python -c "import hashlib,sys; d=open(sys.argv[1],'rb').read(); print(hashlib.sha256(
d[:d.index(b'<footer id=\\"report-sha256\\"')]).hexdigest())" report.html`` re-derives it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from html import escape
from typing import Any

from registry.audit.report import phrases
from registry.audit.report.htmlparts import anchor as _anchor
from registry.audit.report.htmlparts import e as _e
from registry.audit.report.htmlparts import kv as _kv
from registry.audit.report.htmlparts import mono as _mono
from registry.audit.report.htmlparts import pair as _pair
from registry.audit.report.htmlparts import ref as _ref
from registry.audit.report.htmlparts import short as _short
from registry.audit.report.htmlparts import table as _table
from registry.audit.report.htmlparts import verdict as _verdict
from registry.audit.report.htmlparts import when as _when
from registry.audit.report.htmlpeople import annotations_html, people_html, refused_html
from registry.audit.report.stylesheet import CSS as _CSS
from registry.audit.report.svg import lineage_svg, metric_svg

__all__ = ["FOOTER_MARKER", "render_html"]

FOOTER_MARKER = '<footer id="report-sha256">'


def _alerts(report: Mapping[str, Any]) -> str:
    alerts = report["alerts"]
    if not alerts:
        return (
            '<section id="alerts" class="alerts clean"><h2>No problems found</h2><p>The audit chain verifies, every '
            "signature verifies, no revoked version was served, and every approved or released version meets the "
            "policy in force.</p></section>"
        )
    items = "".join(
        f'<li><span class="{escape(a["severity"])}">{escape(a["severity"].upper())}</span> '
        f"<b>{escape(a['kind'])}</b> ({escape(a['subject'])}): {escape(a['message'])}</li>"
        for a in alerts
    )
    return f'<section id="alerts" class="alerts"><h2>Problems found ({len(alerts)})</h2><ul>{items}</ul></section>'


def _integrity(report: Mapping[str, Any]) -> str:
    i = report["integrity"]
    cp = i["checkpoint"]
    checkpoint = (
        f"{_e(cp['path'])}: {_e(cp['size'])} events, signed {_when(cp['at'])}; signature "
        f"{_verdict(cp['signature_valid'])}, matches the log {_verdict(cp['ok'])}"
        if cp
        else '<span class="warning">no checkpoint available: take one with <code>adapters audit checkpoint</code></span>'
    )
    return (
        '<section id="integrity"><h2>Integrity of the audit log</h2>'
        + _kv(
            [
                ("chain", _verdict(i["ok"]) + f" ({i['events']} events recomputed at report time)"),
                ("head hash", _mono(i["head"])),
                ("last checkpoint", checkpoint),
                ("registry key", _mono(i["registry_key"])),
            ]
        )
        + "</section>"
    )


def _policy(report: Mapping[str, Any]) -> str:
    p = report["policy"]
    origin = "built-in default" if p["builtin"] else f"set {_when(p['set_at'])} by {_e(p['set_by'])}"
    return (
        '<section id="policy"><h2>Policy in force</h2>'
        + _kv([("name", _e(p["name"])), ("digest", _mono(p["digest"])), ("scope", _e(p["scope"])), ("origin", origin)])
        + f"<details><summary>policy text</summary><pre>{escape(p['content'] or '')}</pre></details></section>"
    )


def _inventory(report: Mapping[str, Any]) -> str:
    rows = [
        [
            f'<a href="#adapter-{escape(a["name"])}">{escape(a["name"])}</a>',
            str(a["versions"]),
            _e(a["latest"]),
            _e(a["states"]),
            _e(a["channels"]),
            _e(a["owners"]),
        ]
        for a in report["inventory"]
    ]
    return (
        '<section id="inventory"><h2>Inventory</h2>'
        + _table(
            ["adapter", "versions", "latest", "states", "channels (current version)", "owners"], rows, "no adapters"
        )
        + "</section>"
    )


def _channels(adapter: Mapping[str, Any]) -> str:
    if not adapter["channels"]:
        return '<p class="na">never released to a channel</p>'
    out = []
    for c in adapter["channels"]:
        rows = [
            [
                _when(m["at"]),
                _e(m["action"]),
                f'<a class="nowrap" href="#{_anchor(m["ref"])}">{escape(m["ref"])}</a>',
                _e(m["previous"]),
                _e(m["actor"]),
                _verdict(m["signature_valid"])
                if m["signature_valid"] is not None
                else '<span class="na">unsigned</span>',
                _short(m["policy_digest"]),
                _e(m["reason"]),
                _e(len(m["merged"]["files"])) + " files" if m.get("merged") else _e(None),
            ]
            for m in c["history"]
        ]
        out.append(
            f"<h4>{escape(adapter['name'])}@{escape(c['channel'])} &rarr; {_ref(c['ref'])}</h4>"
            + _table(
                ["when", "action", "version", "from", "by", "signature", "policy", "reason", "merged checkpoint"], rows
            )
        )
    return "".join(out)


def _version(v: Mapping[str, Any]) -> str:
    head = (
        f'<section class="version" id="{_anchor(v["ref"])}"><h3>{escape(v["ref"])} '
        f'<span class="state {escape(v["state"])}">{escape(v["state"])}</span></h3>'
    )
    return head + "".join(section(v) for section in _SECTIONS) + "</section>"


def _identity(v: Mapping[str, Any]) -> str:
    return "".join(
        [
            "<h4>Identity</h4>",
            _kv(
                [
                    ("digest", _mono(v["digest"])),
                    ("created", f"{_when(v['created_at'])} by {_e(v['created_by'])}"),
                    ("description", _e(v["description"])),
                    ("size", f"{v['size']:,} bytes in {len(v['files'])} files"),
                ]
            ),
            _table(
                ["file", "size", "sha256"], [[_e(f["path"]), f"{f['size']:,}", _mono(f["sha256"])] for f in v["files"]]
            ),
        ]
    )


def _adapter_facts(v: Mapping[str, Any]) -> str:
    a = v["adapter"]
    return "".join(
        [
            "<h4>Adapter</h4>",
            _kv(
                [
                    ("PEFT type", _e(a["peft_type"])),
                    ("rank r / alpha", _pair(a["r"], a["lora_alpha"])),
                    ("rsLoRA / DoRA", _pair(a["use_rslora"], a["use_dora"])),
                    ("target modules", _e(a["target_modules"])),
                    ("modules to save", _e(a["modules_to_save"])),
                    ("rank / alpha patterns", _pair(a["rank_pattern"], a["alpha_pattern"])),
                    (
                        "trainable parameters",
                        f"{a['trainable_parameters']:,} in {a['tensors']} tensors ({_e(a['dtypes'])})",
                    ),
                ]
            ),
        ]
    )


def _base(v: Mapping[str, Any]) -> str:
    b = v["base"]
    q = v["quantization"]
    return "".join(
        [
            "<h4>Base model</h4>",
            _kv(
                [
                    ("name", _e(b["name"])),
                    ("revision", _e(b["revision"])),
                    (
                        "fingerprint",
                        _mono(b["fingerprint"])
                        if b["fingerprint"]
                        else '<span class="warning">none: the base was not found at push</span>',
                    ),
                    ("training quantization", _e(phrases.quantization(q))),
                ]
            ),
        ]
    )


def _lineage_tables(v: Mapping[str, Any]) -> str:
    lin = v["lineage"]
    return "".join(
        [
            "<h4>Lineage</h4>",
            _table(
                ["dataset", "uri", "revision", "sha256", "license", "rows", "split"],
                [
                    [
                        _e(d["name"]),
                        _e(d["uri"] or d["path"]),
                        _e(d["revision"]),
                        _mono(d["sha256"]),
                        f'<span class="nowrap">{_e(d["license"])}</span>',  # cc-by-4.0, not cc-by- / 4.0
                        _e(d["rows"]),
                        _e(d["split"]),
                    ]
                    for d in lin["datasets"]
                ],
                "no datasets recorded",
            ),
            _kv(
                [
                    ("training parameters", _e(lin["training"])),
                    (
                        "parent version",
                        _ref("{name}:{version}".format(**lin["parent"])) + " " + _mono(lin["parent"]["digest"])
                        if lin["parent"]
                        else _e(None),
                    ),
                ]
            ),
        ]
    )


def _evaluation(v: Mapping[str, Any]) -> str:
    return "".join(
        [
            "<h4>Evaluation</h4>",
            _table(
                ["metric", "value", "dataset", "recorded", "by", "threshold", "result"],
                [
                    [
                        _e(e["metric"]),
                        f"{e['value']:g}",
                        _e(e["dataset"]),
                        _when(e["recorded_at"]),
                        _e(e["recorded_by"]),
                        f'<span class="nowrap">{_e(phrases.threshold(e["threshold"]))}</span>',
                        _verdict(e["passed"]),
                    ]
                    for e in v["evaluation"]
                ],
            ),
        ]
    )


def _verifications(v: Mapping[str, Any]) -> str:
    return "".join(
        [
            "<h4>Verification</h4>",
            "".join(_verification(r) for r in v["verification"]) or '<p class="na">never verified</p>',
        ]
    )


def _approvals(v: Mapping[str, Any]) -> str:
    return "".join(
        [
            "<h4>Approvals</h4>",
            _table(
                ["when", "who", "roles", "decision", "comment", "policy", "signature"],
                [
                    [
                        _when(x["at"]),
                        _e(x["actor"]),
                        _e(x["roles"]),
                        _e(x["decision"]),
                        _e(x["comment"]),
                        _short(x["policy_digest"]),
                        (
                            _verdict(x["signature_valid"])
                            + (f" {_short(x['key_fingerprint'])}" if x["key_fingerprint"] else "")
                        )
                        if x["signature_valid"] is not None
                        else '<span class="na">unsigned</span>',
                    ]
                    for x in v["approvals"]
                ],
            ),
        ]
    )


def _lifecycle(v: Mapping[str, Any]) -> str:
    return "".join(
        [
            "<h4>Lifecycle</h4>",
            _table(
                ["when", "who", "what", "reason", "policy", "signature", "merged checkpoint"],
                [_lifecycle_row(x) for x in v["lifecycle"]],
            ),
        ]
    )


def _policy_check(v: Mapping[str, Any]) -> str:
    return "".join(
        [
            "<h4>Policy check</h4>",
            f"<p>{escape(v['policy']['name'])} {_short(v['policy']['digest'])}: {_verdict(v['policy']['passed'])}</p>",
            _table(
                ["rule", "result", "why"],
                [[_e(r["rule"]), _verdict(r["passed"]), _e(r["message"])] for r in v["policy"]["results"]],
                "the policy has no rules",
            ),
        ]
    )


_SECTIONS = (
    _identity,
    annotations_html,
    _adapter_facts,
    _base,
    _lineage_tables,
    _evaluation,
    _verifications,
    _approvals,
    refused_html,
    _lifecycle,
    _policy_check,
)


def _lifecycle_row(x: Mapping[str, Any]) -> list[str]:
    if x["kind"] == "transition":
        what = f"{escape(x['action'])}: {escape(x['from'])} &rarr; {escape(x['to'])}"
        signature = '<span class="na">-</span>'
    else:
        what = f"{escape(x['action'])} to {escape(x['channel'])}" + (
            f" (replacing version {escape(str(x['previous']))})" if x.get("previous") else ""
        )
        signature = (
            _verdict(x["signature_valid"])
            if x.get("signature_valid") is not None
            else '<span class="na">unsigned</span>'
        )
    merged = x.get("merged")
    merged_cell = (
        "<br>".join(f"{_e(f['path'])} {_short(f['sha256'])}" for f in merged["files"])
        + f"<br>{_e(merged['method'])}"
        + (f", dtype {_e(merged['dtype'])}" if merged.get("dtype") else "")
        if merged
        else _e(None)
    )
    return [
        _when(x["at"]),
        _e(x["actor"]),
        what,
        _e(x["reason"]),
        _short(x.get("policy_digest")),
        signature,
        merged_cell,
    ]


def _verification(r: Mapping[str, Any]) -> str:
    facts = [
        f"<b>#{_e(r['id'])}</b> {_e(r['mode'])} on {_when(r['created_at'])} by {_e(r['created_by'])}: {_verdict(r['passed'])}"
    ]
    if r["base"]["fingerprint"]:
        allowed = " (mismatch allowed)" if r["base"]["allow_mismatch"] else ""
        facts.append(f"base {_short(r['base']['fingerprint'])}{allowed}")
    facts += [escape(fact) for fact in phrases.load_facts(r)]
    if r["libraries"]:
        facts.append(f"libraries {_e(r['libraries'])}")
    rows = [[_e(c["name"]), _verdict(c["passed"]), _e(c["message"])] for c in r["checks"]]
    rows += [[_e("not checked"), _verdict(None), _e(n)] for n in r["not_checked"]]
    return f"<p>{'; '.join(facts)}</p>" + _table(["check", "result", "detail"], rows)


def _adapter(a: Mapping[str, Any]) -> str:
    charts = "".join(metric_svg(metric, points) for metric, points in a["metrics"].items() if len(points) > 1)
    return (
        f'<section class="adapter" id="adapter-{escape(a["name"])}"><h2>Adapter {escape(a["name"])}</h2>'
        f"<h4>Channels</h4>{_channels(a)}"
        f"<h4>Lineage</h4>{lineage_svg(a['lineage'], 'lineage of ' + a['name'])}"
        + (f'<h4>Metrics across versions</h4><div class="charts">{charts}</div>' if charts else "")
        + "".join(_version(v) for v in a["versions"])
        + "</section>"
    )


def render_html(report: Mapping[str, Any]) -> str:
    window = report["window"]
    scope = " · ".join(f"{k} {v}" for k, v in window.items() if v) or "all time"
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report['title'])}</title><style>{_CSS}</style></head><body>\n"
        f'<header><h1>{escape(report["title"])}</h1><p class="meta">generated {escape(report["generated_at"])} by '
        f"{escape(report['generated_by'])} · database {escape(report['registry'].get('db', ''))} · {escape(scope)} · "
        f"report schema {report['schema_version']} · times in UTC</p></header>\n"
    )
    body = [_alerts(report), _integrity(report), _policy(report)]
    if report["kind"] == "registry":
        body.append(_inventory(report))
    body.extend(_adapter(a) for a in report["adapters"])
    body.append(people_html(report))
    document = head + "\n".join(body) + "\n"
    digest = hashlib.sha256(document.encode("utf-8")).hexdigest()
    return (
        document
        + f'{FOOTER_MARKER}report sha256 (of everything above this footer): <span class="mono">{digest}</span></footer>\n</body></html>\n'
    )
