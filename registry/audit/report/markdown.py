"""The audit report as Markdown, for a git repository or a wiki: the same content as the HTML.

The lineage picture is a Mermaid diagram (rendered by GitHub, GitLab and most wikis) and the
metric charts are tables. The last line holds the sha256 of every byte above the marker
``<!-- report-sha256 -->``.

Every string of the report may come from a user (descriptions, comments, reasons, dataset and
file names, training parameters, the policy text), and Markdown passes HTML through. So before
anything is rendered, every string is HTML-escaped (``&``, ``<``, ``>``) and its line breaks are
flattened (only the policy text keeps its lines, inside ``<pre>``); table cells also escape ``|``
(as ``&#124;``, which no table parser splits on), and Mermaid labels escape what ends or shapes a
node (quotes, brackets, parentheses, braces, backticks, ``|``, ``#``) with Mermaid's ``#code;`` entities.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping, Sequence
from typing import Any

from registry.audit.report import phrases

__all__ = ["FOOTER_MARKER", "render_markdown"]

FOOTER_MARKER = "<!-- report-sha256 -->"


#: Markdown's link and image brackets, as entities: recorded text (a note, a tag, a comment) can then
#: not become a link or an image that loads from elsewhere when the report is rendered.
_BRACKETS = str.maketrans({"[": "&#91;", "]": "&#93;"})


def _escaped(value: Any, key: str = "") -> Any:
    """``value`` with every string (dict keys too) HTML-escaped, link and image syntax disarmed and, but for
    the policy text (shown as code), on one line."""
    if isinstance(value, str):
        text = html.escape(value, quote=False)
        return text if key == "content" else " ".join(text.translate(_BRACKETS).splitlines())
    if isinstance(value, Mapping):
        return {_escaped(k): _escaped(v, k if isinstance(k, str) else "") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escaped(v, key) for v in value]
    return value


def _c(value: Any) -> str:
    """A table cell's text (escaped already: see :func:`_escaped`)."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value if v is not None)
    elif isinstance(value, dict):
        value = ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
    return str(value) or "-"


def _code(value: str | None) -> str:
    """A digest as code, or ``-`` when there is none."""
    return f"`{value}`" if value else "-"


def _pair(a: Any, b: Any) -> str:
    """``a / b``, or ``-`` when both are absent."""
    return "-" if _c(a) == _c(b) == "-" else f"{_c(a)} / {_c(b)}"


def _cell(value: Any) -> str:
    """What goes between two ``|``: no pipe, no line break."""
    text = value if isinstance(value, str) else _c(value)
    return " ".join(text.replace("|", "&#124;").splitlines())


def _v(passed: bool | None) -> str:
    return {True: "pass", False: "**FAIL**", None: "n/a"}[passed]


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = "_none recorded_") -> str:
    if not rows:
        return empty + "\n"
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _kv(pairs: Sequence[tuple[str, Any]]) -> str:
    return _table(["fact", "value"], [[k, _c(v)] for k, v in pairs])


_MERMAID = str.maketrans({c: f"#{ord(c)};" for c in "#[](){}`|"} | {'"': "#quot;", "\n": " ", "\r": " "})


def _label(text: Any) -> str:
    """Text inside a Mermaid node's ``"..."`` (HTML-escaped already): nothing that ends or shapes the node."""
    return str(text).translate(_MERMAID)


def _mermaid(lineage: Mapping[str, Any]) -> str:
    ids = {node["id"]: f"n{i}" for i, node in enumerate(lineage["nodes"])}
    shapes = {"base": ("[(", ")]"), "version": ("[", "]"), "dataset": ("[/", "/]")}
    lines = ["```mermaid", "graph LR"]
    for node in lineage["nodes"]:
        left, right = shapes[node["kind"]]
        label = f"{_label(node['label'])}<br/>{_label(node['detail'])}"
        lines.append(f'  {ids[node["id"]]}{left}"{label}"{right}')
    for edge in lineage["edges"]:
        arrow = "-.->" if edge["kind"] == "parent" else "-->"
        lines.append(f"  {ids[edge['from']]} {arrow} {ids[edge['to']]}")
    lines.append("```")
    return "\n".join(lines) + "\n"


def _version(v: Mapping[str, Any]) -> list[str]:
    out = [f"### {v['ref']} ({v['state']})\n"]
    for section in _VERSION_SECTIONS:
        out += section(v)
    return out


def _identity(v: Mapping[str, Any]) -> list[str]:
    return [
        "#### Identity\n",
        _kv(
            [
                ("digest", f"`{v['digest']}`"),
                ("created", f"{v['created_at']} by {v['created_by']}"),
                ("description", v["description"]),
                ("size", f"{v['size']:,} bytes in {len(v['files'])} files"),
            ]
        ),
        _table(["file", "size", "sha256"], [[f["path"], f"{f['size']:,}", f"`{f['sha256']}`"] for f in v["files"]]),
    ]


def _adapter(v: Mapping[str, Any]) -> list[str]:
    a = v["adapter"]
    return [
        "#### Adapter\n",
        _kv(
            [
                ("PEFT type", a["peft_type"]),
                ("rank r / alpha", _pair(a["r"], a["lora_alpha"])),
                ("rsLoRA / DoRA", _pair(a["use_rslora"], a["use_dora"])),
                ("target modules", a["target_modules"]),
                ("modules to save", a["modules_to_save"]),
                ("rank / alpha patterns", _pair(a["rank_pattern"], a["alpha_pattern"])),
                (
                    "trainable parameters",
                    f"{a['trainable_parameters']:,} in {a['tensors']} tensors ({_c(a['dtypes'])})",
                ),
            ]
        ),
    ]


def _base(v: Mapping[str, Any]) -> list[str]:
    b, q = v["base"], v["quantization"]
    fingerprint = f"`{b['fingerprint']}`" if b["fingerprint"] else "**none: the base was not found at push**"
    quantization = phrases.quantization(q)
    return [
        "#### Base model\n",
        _kv(
            [
                ("name", b["name"]),
                ("revision", b["revision"]),
                ("fingerprint", fingerprint),
                ("training quantization", quantization),
            ]
        ),
    ]


def _lineage(v: Mapping[str, Any]) -> list[str]:
    lin = v["lineage"]
    parent = lin["parent"]
    return [
        "#### Lineage\n",
        _table(
            ["dataset", "uri", "revision", "sha256", "license", "rows", "split"],
            [
                [
                    d["name"],
                    _c(d["uri"] or d["path"]),
                    _c(d["revision"]),
                    f"`{d['sha256']}`" if d["sha256"] else "-",
                    _c(d["license"]),
                    _c(d["rows"]),
                    _c(d["split"]),
                ]
                for d in lin["datasets"]
            ],
            "_no datasets recorded_",
        ),
        _kv(
            [
                ("training parameters", lin["training"]),
                ("parent version", f"{parent['name']}:{parent['version']} `{parent['digest']}`" if parent else None),
            ]
        ),
    ]


def _evaluation(v: Mapping[str, Any]) -> list[str]:
    rows = [
        [e["metric"], f"{e['value']:g}", _c(e["dataset"]), e["recorded_at"], e["recorded_by"],
         _c(phrases.threshold(e["threshold"])), _v(e["passed"])]
        for e in v["evaluation"]
    ]  # fmt: skip
    return ["#### Evaluation\n", _table(["metric", "value", "dataset", "recorded", "by", "threshold", "result"], rows)]


def _verification(v: Mapping[str, Any]) -> list[str]:
    out = ["#### Verification\n"]
    for r in v["verification"]:
        facts = [f"Report #{r['id']}: {r['mode']} on {r['created_at']} by {r['created_by']}: {_v(r['passed'])}"]
        if r["base"]["fingerprint"]:
            allowed = " (mismatch allowed)" if r["base"]["allow_mismatch"] else ""
            facts.append(f"base {_code(phrases.short(r['base']['fingerprint']))}{allowed}")
        facts += phrases.load_facts(r)
        if r["libraries"]:
            facts.append(f"libraries {_c(r['libraries'])}")
        out.append("; ".join(facts) + "\n\n")
        rows = [[c["name"], _v(c["passed"]), _c(c["message"])] for c in r["checks"]]
        rows += [["not checked", "n/a", _c(n)] for n in r["not_checked"]]
        out.append(_table(["check", "result", "detail"], rows))
    if not v["verification"]:
        out.append("_never verified_\n")
    return out


def _approvals(v: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            x["at"], x["actor"], _c(x["roles"]), x["decision"], _c(x["comment"]), _code(phrases.short(x["policy_digest"])),
            _v(x["signature_valid"]) if x["signature_valid"] is not None else "unsigned",
        ]
        for x in v["approvals"]
    ]  # fmt: skip
    return ["#### Approvals\n", _table(["when", "who", "roles", "decision", "comment", "policy", "signature"], rows)]


def _lifecycle(v: Mapping[str, Any]) -> list[str]:
    return [
        "#### Lifecycle\n",
        _table(
            ["when", "who", "what", "reason", "policy", "signature", "merged checkpoint"],
            [_lifecycle_row(x) for x in v["lifecycle"]],
        ),
    ]


def _policy_check(v: Mapping[str, Any]) -> list[str]:
    return [
        "#### Policy check\n",
        f"{v['policy']['name']} {_code(phrases.short(v['policy']['digest']))}: {_v(v['policy']['passed'])}\n\n",
        _table(
            ["rule", "result", "why"],
            [[r["rule"], _v(r["passed"]), _c(r["message"])] for r in v["policy"]["results"]],
            "_the policy has no rules_",
        ),
    ]


def _annotations(v: Mapping[str, Any]) -> list[str]:
    tags, notes = v.get("tags") or {}, v.get("notes") or []
    if not tags and not notes:
        return []
    out = ["#### Tags and notes\n"]
    if tags:
        out.append(" ".join(_code(f"{k}={val}") for k, val in tags.items()) + "\n")
    if notes:
        out.append(_table(["when", "who", "note"], [[n["at"], n["by"], n["text"]] for n in notes]))
    return out


def _refused(v: Mapping[str, Any]) -> list[str]:
    refused = v.get("refused") or []
    if not refused:
        return []
    rows = [
        [r["at"], r["actor"], r["action"] + (f" to {r['channel']}" if r.get("channel") else ""), r["policy"],
         "; ".join(f"**{x['rule']}**: {x['message']}" for x in r["rules"])]
        for r in refused
    ]  # fmt: skip
    return ["#### Refused attempts\n", _table(["when", "who", "attempted", "policy", "rules not met"], rows)]


def _people(report: Mapping[str, Any]) -> list[str]:
    people = report.get("people")
    if not people:
        return []
    users = [
        [u["name"], u["created_at"], u["created_by"],
         f"{u['removed_at']} by {u['removed_by']}" + (f": {u['removal_reason']}" if u["removal_reason"] else "")
         if u["removed_at"] else "active"]
        for u in people["users"]
    ]  # fmt: skip
    grants = [
        [g["user"], g["role"] + (f"@{g['namespace']}" if g.get("namespace") else ""), g["granted_at"], g["granted_by"],
         f"{g['revoked_at']} by {g['revoked_by']}" if g["revoked_at"] else "in force"]
        for g in people["grants"]
    ]  # fmt: skip
    keys = [
        [k["user"], _code(k["fingerprint"]), k["added_at"], k["added_by"], "in force" if k["active"] else "earlier"]
        for k in people["keys"]
    ]  # fmt: skip
    return [
        "## People\n",
        "#### Users\n", _table(["user", "added", "by", "removed"], users),
        "#### Role grants\n", _table(["user", "role", "granted", "by", "revoked"], grants),
        "#### Keys\n", _table(["user", "fingerprint", "registered", "by", "status"], keys),
    ]  # fmt: skip


_VERSION_SECTIONS = (
    _identity, _annotations, _adapter, _base, _lineage, _evaluation, _verification, _approvals, _refused, _lifecycle,
    _policy_check,
)  # fmt: skip


def _lifecycle_row(x: Mapping[str, Any]) -> list[str]:
    if x["kind"] == "transition":
        what, signature = f"{x['action']}: {x['from']} -> {x['to']}", "-"
    else:
        what = f"{x['action']} to {x['channel']}" + (
            f" (replacing version {x['previous']})" if x.get("previous") else ""
        )
        signature = _v(x["signature_valid"]) if x.get("signature_valid") is not None else "unsigned"
    merged = x.get("merged")
    cell = (
        "; ".join(f"{f['path']} {_code(phrases.short(f['sha256']))}" for f in merged["files"])
        + f"; {merged['method']}"
        + (f", dtype {merged['dtype']}" if merged.get("dtype") else "")
        if merged
        else "-"
    )
    return [x["at"], x["actor"], what, _c(x["reason"]), _code(phrases.short(x.get("policy_digest"))), signature, cell]


def render_markdown(report: Mapping[str, Any]) -> str:
    report = _escaped(report)
    out = _head(report) + _integrity(report) + _policy_in_force(report) + _inventory(report)
    for a in report["adapters"]:
        out += _adapter_section(a)
        for v in a["versions"]:
            out += _version(v)
    out += _people(report)
    document = "\n".join(out) + "\n---\n"
    digest = hashlib.sha256(document.encode("utf-8")).hexdigest()
    return document + f"{FOOTER_MARKER}\nReport sha256 (of everything above the marker): `{digest}`\n"


def _head(report: Mapping[str, Any]) -> list[str]:
    window = " · ".join(f"{k} {v}" for k, v in report["window"].items() if v) or "all time"
    out = [
        f"# {report['title']}\n",
        f"Generated {report['generated_at']} by {report['generated_by']} · database {report['registry'].get('db', '')} · {window} · report schema {report['schema_version']}\n",
    ]
    if report["alerts"]:
        out.append(f"## Problems found ({len(report['alerts'])})\n")
        out += [
            f"- **{a['severity'].upper()}** {a['kind']} ({a['subject']}): {a['message']}\n" for a in report["alerts"]
        ]
        out.append("")
    else:
        out.append(
            "## No problems found\n\nThe audit chain verifies, every signature verifies, no revoked version was served, and every approved or released version meets the policy in force.\n"
        )
    return out


def _integrity(report: Mapping[str, Any]) -> list[str]:
    i = report["integrity"]
    cp = i["checkpoint"]
    checkpoint = (
        f"{cp['path']}: {cp['size']} events, signed {cp['at']}; signature {_v(cp['signature_valid'])}, matches the log {_v(cp['ok'])}"
        if cp
        else "**no checkpoint available**: take one with `adapters audit checkpoint`"
    )
    return [
        "## Integrity of the audit log\n",
        _kv(
            [
                ("chain", f"{_v(i['ok'])} ({i['events']} events recomputed at report time)"),
                ("head hash", f"`{i['head']}`"),
                ("last checkpoint", checkpoint),
                ("registry key", f"`{i['registry_key']}`" if i["registry_key"] else None),
            ]
        ),
    ]


def _policy_in_force(report: Mapping[str, Any]) -> list[str]:
    p = report["policy"]
    origin = "built-in default" if p["builtin"] else f"set {p['set_at']} by {p['set_by']}"
    return [
        "## Policy in force\n",
        _kv([("name", p["name"]), ("digest", f"`{p['digest']}`"), ("scope", p["scope"]), ("origin", origin)]),
        # <pre>, not a ``` fence: the escaped text is shown as written, and it cannot close the block
        "<details><summary>policy text</summary>\n\n<pre>\n" + (p["content"] or "").rstrip() + "\n</pre>\n</details>\n",
    ]


def _inventory(report: Mapping[str, Any]) -> list[str]:
    if report["kind"] != "registry":
        return []
    rows = [
        [a["name"], str(a["versions"]), _c(a["latest"]), _c(a["states"]), _c(a["channels"]), _c(a["owners"])]
        for a in report["inventory"]
    ]
    headers = ["adapter", "versions", "latest", "states", "channels (current version)", "owners"]
    return ["## Inventory\n", _table(headers, rows, "_no adapters_")]


def _adapter_section(a: Mapping[str, Any]) -> list[str]:
    out = [f"## Adapter {a['name']}\n", "#### Channels\n"]
    if not a["channels"]:
        out.append("_never released to a channel_\n")
    headers = ["when", "action", "version", "from", "by", "signature", "policy", "reason", "merged checkpoint"]
    for c in a["channels"]:
        out.append(f"**{a['name']}@{c['channel']} -> {c['ref']}**\n\n")
        rows = [
            [
                m["at"], m["action"], m["ref"], _c(m["previous"]), m["actor"],
                _v(m["signature_valid"]) if m["signature_valid"] is not None else "unsigned",
                _code(phrases.short(m["policy_digest"])), _c(m["reason"]),
                f"{len(m['merged']['files'])} files" if m.get("merged") else "-",
            ]
            for m in c["history"]
        ]  # fmt: skip
        out.append(_table(headers, rows))
    out += ["#### Lineage\n", _mermaid(a["lineage"])]
    charts = {k: v for k, v in a["metrics"].items() if len(v) > 1}
    if charts:
        out.append("#### Metrics across versions\n")
        for metric, points in charts.items():
            rows = [[f"v{p['version']}", f"{p['value']:g}", _c(phrases.threshold(p["threshold"]))] for p in points]
            out.append(f"**{metric}**\n\n" + _table(["version", "value", "threshold"], rows))
    return out
