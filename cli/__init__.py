"""The `adapters` command line (click + rich)."""
