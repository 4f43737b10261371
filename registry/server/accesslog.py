"""The server's access log: one JSON line per request on stderr (never a token)."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

__all__ = ["AccessLog"]


class AccessLog:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def write(self, request: Any, status: int, seconds: float) -> None:
        state = request.state
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "method": request.method,
            "path": request.url.path,  # the query string is left out: it is where a careless client puts secrets
            "status": status,
            "user": getattr(state, "user", None),
            "token": getattr(state, "token_id", None),
            "client": request.client.host if request.client else None,
            "duration_ms": round(seconds * 1000, 2),
        }
        stream = self.stream or sys.stderr
        stream.write(json.dumps(line, separators=(",", ":")) + "\n")
        stream.flush()
