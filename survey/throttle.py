"""Limits on wrong guesses of a secret, per client: the survey's admin token.

    gate = AdminGate("the-admin-token")
    gate.check(given, client="203.0.113.7")   # raises AdminRefused, or returns

A client (an IP address, as the web server sees it) that sent `max_failures` wrong
tokens within `window_s` seconds is refused, without its token being compared, until
the oldest of those failures is `window_s` old. Each wrong token is logged as one
line, and so is the first refusal of a locked-out client; nothing else is, so a
client hammering the form cannot flood the log. The clock is a parameter, so tests
step it instead of waiting.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = [
    "ADMIN_MAX_FAILURES",
    "ADMIN_WINDOW_S",
    "AdminGate",
    "AdminRefused",
    "FailureLimiter",
]

log = logging.getLogger(__name__)

ADMIN_MAX_FAILURES = 5  # wrong admin tokens a client may send ...
ADMIN_WINDOW_S = 60.0  # ... within this many seconds
MAX_CLIENTS = 10_000  # clients remembered at once; the stalest are forgotten first


class AdminRefused(Exception):
    """The admin token was missing, wrong, or not checked (too many failures).

    `str(err)` is the one-line message for the person at the form.
    """


class FailureLimiter:
    """Failures per client in a sliding window; thread-safe."""

    def __init__(
        self,
        max_failures: int = ADMIN_MAX_FAILURES,
        window_s: float = ADMIN_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or window_s <= 0:
            raise ValueError("max_failures must be >= 1 and window_s > 0")
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        """The client's failures within the window (older ones dropped)."""
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it may try now."""
        with self._lock:
            now = self._clock()
            failures = self._recent(client, now)
            if len(failures) < self.max_failures:
                return 0.0
            return failures[-self.max_failures] + self.window_s - now

    def fail(self, client: str) -> int:
        """Record a failure of `client`; returns its failures within the window."""
        with self._lock:
            now = self._clock()
            failures = self._recent(client, now)
            failures.append(now)
            self._failures[client] = failures
            if len(self._failures) > MAX_CLIENTS:
                stalest = min(self._failures, key=lambda c: self._failures[c][-1])
                del self._failures[stalest]
            return len(failures)


class AdminGate:
    """The admin token and the limit on wrong guesses of it."""

    def __init__(self, token: str, limiter: FailureLimiter | None = None) -> None:
        if not token:
            raise ValueError("the admin token must not be empty")
        self._token = token.encode("utf-8")
        self.limiter = limiter or FailureLimiter()
        self._locked: set[str] = set()  # clients whose lockout was logged

    def check(self, given: object, client: str) -> None:
        """Return when `given` is the token; raise AdminRefused otherwise.

        client: who is asking (an IP address); "" when unknown, which shares one
        allowance among all unknown clients. Compared in constant time.
        """
        wait = self.limiter.retry_after(client)
        if wait > 0:
            if client not in self._locked:
                if len(self._locked) >= MAX_CLIENTS:
                    self._locked.clear()
                self._locked.add(client)
                log.warning(
                    "admin token: %s locked out for %.0f s after %d wrong tokens",
                    client or "unknown client",
                    wait,
                    self.limiter.max_failures,
                )
            raise AdminRefused(
                "Too many wrong admin tokens from your address. Try again in "
                f"{math.ceil(wait)} seconds."
            )
        self._locked.discard(client)
        if not isinstance(given, str) or not given:
            raise AdminRefused("Enter the admin token to see the results.")
        if not hmac.compare_digest(given.encode("utf-8"), self._token):
            count = self.limiter.fail(client)
            log.warning(
                "admin token: wrong token from %s (%d of %d allowed in %.0f s)",
                client or "unknown client",
                count,
                self.limiter.max_failures,
                self.limiter.window_s,
            )
            raise AdminRefused("Wrong admin token.")
