"""The client side of a team registry: the same commands against ``adapters serve`` over HTTPS.

:class:`~registry.remote.client.RemoteRegistry` speaks the server's API (httpx);
:mod:`registry.remote.credentials` keeps the tokens ``adapters login`` was given (mode 0600).
"""
