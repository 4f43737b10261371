"""The tamper-evident audit log, its checkpoints and the audit reports."""
