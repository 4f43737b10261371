"""Rendering a gathered report in one of its formats, with the sha256 that seals it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from registry.audit.report.build import seal
from registry.audit.results import AuditReport
from registry.errors import InvalidInput
from registry.types import REPORT_FORMATS

__all__ = ["render"]


def render(data: dict[str, Any], format: str) -> AuditReport:
    """The report ``data`` (from :func:`registry.audit.report.build.build`) as ``html``, ``md`` or ``json``.

    HTML and Markdown carry their own sha256 (of every byte above the footer marker); the JSON
    carries ``report_sha256`` over its canonical form.
    """
    if format not in REPORT_FORMATS:
        raise InvalidInput(f"unknown report format {format!r}; use {', '.join(REPORT_FORMATS)}")
    if format == "json":
        sealed = seal(data)
        text = json.dumps(sealed, indent=2, ensure_ascii=False) + "\n"
        return AuditReport("json", text, sealed, sealed["report_sha256"])
    if format == "md":
        from registry.audit.report.markdown import FOOTER_MARKER, render_markdown

        content = render_markdown(data)
    else:
        from registry.audit.report.html import FOOTER_MARKER, render_html

        content = render_html(data)
    digest = hashlib.sha256(content[: content.index(FOOTER_MARKER)].encode("utf-8")).hexdigest()
    return AuditReport(format, content, data, "sha256:" + digest)
