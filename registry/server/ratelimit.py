"""Failed authentication, limited per client address: guessing tokens costs time.

Each server process keeps its own counts (in memory): behind a load balancer the limit applies
per process, which still bounds guesses to a few per minute per address and process.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from registry.errors import Unauthenticated

__all__ = ["FailedAuthLimiter"]


class TooManyFailures(Unauthenticated):
    """Too many failed authentications from one address (HTTP 429)."""


class FailedAuthLimiter:
    def __init__(self, limit: int = 20, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        q = self._failures[client]
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def check(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            q = self._recent(client, now)
            if len(q) >= self.limit:
                wait = int(q[0] + self.window_s - now) + 1
                raise TooManyFailures(
                    f"too many failed authentications from {client}; wait {wait}s, then log in with a valid token"
                )

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client, time.monotonic()).append(time.monotonic())
