"""Governance policies shipped with adapters (``default.yaml``, ``regulated.yaml``), documented inline.

This file only lets the YAML files ship inside the installed package, as ``registry._policies``.
"""
