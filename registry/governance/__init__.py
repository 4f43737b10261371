"""Governance: the lifecycle, approvals, channels and releases (with a merged checkpoint)."""
