"""The HTML report's stylesheet: inline in the document (its Content-Security-Policy allows inline
styles only), for the screen and for print (a page break before each version)."""

from __future__ import annotations

__all__ = ["CSS"]

CSS = """
:root { --bad: #b3261e; --warn: #8a5300; --ok: #137333; --line: #d5d5d5; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f1f1f; margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 18px 0 6px; } h4 { font-size: 14px; margin: 14px 0 4px; color: #444; }
.meta { color: #555; margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.k { width: 22%; font-weight: 600; background: #fafafa; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.nowrap { white-space: nowrap; } /* timestamps, digests, fingerprints, refs: never broken over lines */
.wide { overflow-x: auto; } /* a table wider than the page scrolls rather than breaking those */
.alerts { border: 2px solid var(--bad); background: #fce8e6; padding: 10px 16px; border-radius: 6px; }
.alerts.clean { border-color: var(--ok); background: #e6f4ea; }
.alerts h2 { border: 0; margin-top: 4px; color: var(--bad); } .alerts.clean h2 { color: var(--ok); }
.critical { color: var(--bad); font-weight: 600; } .warning { color: var(--warn); font-weight: 600; }
.pass { color: var(--ok); font-weight: 600; } .fail { color: var(--bad); font-weight: 600; } .na { color: #777; }
.state { display: inline-block; padding: 1px 8px; border-radius: 10px; background: #eee; font-size: 12px; }
.state.released { background: #e6f4ea; } .state.revoked, .state.rejected { background: #fce8e6; }
section.version { border-top: 1px solid var(--line); margin-top: 18px; }
svg { max-width: 100%; height: auto; } .charts svg { margin: 0 12px 8px 0; }
footer { margin-top: 32px; color: #555; font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  section.version { page-break-before: always; break-before: page; }
  table, svg, .alerts { page-break-inside: avoid; break-inside: avoid; }
  .wide { overflow-x: visible; }
  a { color: inherit; text-decoration: none; }
}
"""
