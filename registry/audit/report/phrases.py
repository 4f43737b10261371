"""How a report's compound values read, shared by the HTML and Markdown renderers.

An absent value is left out, never printed as ``None`` or as a dash inside a phrase:
``none`` rather than ``none (double quant -, compute -)``; ``device cpu (AMD EPYC)`` only when
the device is known. The functions return plain text; each renderer escapes it its own way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["load_facts", "moment", "quantization", "short", "threshold"]

_ISO = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def threshold(t: Mapping[str, Any] | None) -> str | None:
    """``≥ 0.85``, ``≤ 0.2`` or ``≥ 0.8 and ≤ 0.9``; None when there is no threshold."""
    if not t:
        return None
    parts = []
    if t.get("min") is not None:
        parts.append(f"≥ {_number(t['min'])}")
    if t.get("max") is not None:
        parts.append(f"≤ {_number(t['max'])}")
    return " and ".join(parts) or None


def quantization(q: Mapping[str, Any] | None) -> str | None:
    """``nf4 (double quant, compute bfloat16)``, ``none``, or None when nothing is recorded."""
    if not q or not q.get("method"):
        return None
    details = []
    if q.get("double_quant") is not None:
        details.append("double quant" if q["double_quant"] else "no double quant")
    if q.get("compute_dtype"):
        details.append(f"compute {q['compute_dtype']}")
    return f"{q['method']} ({', '.join(details)})" if details else str(q["method"])


def load_facts(report: Mapping[str, Any]) -> list[str]:
    """Where and how a verification's load ran (``device cpu (AMD EPYC)``, ``nf4 (...)``): only what is known."""
    facts = []
    if report.get("device"):
        name = report.get("device_name")
        facts.append(f"device {report['device']}" + (f" ({name})" if name else ""))
    q = report.get("quantization") or {}
    quant = f"full precision ({q.get('compute_dtype') or 'its own dtype'})" if q.get("method") == "none" else None
    quant = quant or quantization(q)
    if quant:
        facts.append(quant)
    return facts


def short(digest: str | None, n: int = 12) -> str | None:
    """The first ``n`` hex digits of a digest or fingerprint, ``sha256:`` dropped, marked as cut."""
    if not digest:
        return None
    hex_ = digest.removeprefix("sha256:")
    return hex_ if len(hex_) <= n else hex_[:n] + "…"


def moment(at: str | None) -> str | None:
    """``2026-11-22 10:00:00`` for a recorded ISO time in UTC (to the second; the exact time is kept
    elsewhere); another zone is named after the time."""
    if not at:
        return None
    m = _ISO.match(at)
    if m is None:
        return at
    day, time, zone = m.groups()
    return f"{day} {time}" + ("" if zone in (None, "Z", "+00:00") else f" {zone}")
