"""The client's calls, one module per concept, each a mixin of :class:`registry.remote.client.RemoteRegistry`."""
