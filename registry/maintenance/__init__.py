"""Keeping the stores sound: ``adapters fsck`` (every referenced blob present and intact, every version
what it was pushed as)."""
