"""The API's endpoints, one module per concept; each has ``routes(app, caller)``."""
