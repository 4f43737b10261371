"""Keeping the stores sound: ``adapters fsck`` (every referenced blob present and intact, every version
what it was pushed as) and ``adapters gc`` (blobs no version references, and abandoned uploads, removed
after a grace period, without ever racing a push)."""
