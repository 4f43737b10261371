"""Audit reports: the facts gathered once, rendered as HTML, Markdown or JSON."""
