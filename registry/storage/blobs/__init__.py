"""Blob stores: the content-addressed byte store, one implementation per URL scheme."""
