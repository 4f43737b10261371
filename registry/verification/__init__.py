"""Verification: static checks from safetensors headers and a real load of base + adapter."""
