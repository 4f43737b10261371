"""Keeping the stores sound: the records and the blob store checked against each other."""
