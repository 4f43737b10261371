"""The parts of the :class:`registry.Registry` facade, one module per concept; ``registry._registry``
combines them."""
