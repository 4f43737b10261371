"""The catalog: push, pull, list, show and resolve versions."""
