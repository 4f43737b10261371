"""Services: the catalog (push, pull, ls, show) and what it needs from disk."""
