"""``adapters serve``: the team registry's server (FastAPI on uvicorn), and what it shares with its client.

Only :func:`registry.server.app.create_app` imports FastAPI; nothing here is imported by
``adapters --help`` or the embedded registry.
"""
