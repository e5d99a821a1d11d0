"""Diego's crash restart policy, as a pure function of the crash count and the clock.

The 1st and 2nd crash restart at once; after that an instance waits 30 s x 2^(n-3), capped at
16 minutes; after 200 crashes it is never restarted. A crash after 5 minutes of running counts
as the first crash again.
"""

from __future__ import annotations

from dataclasses import dataclass

NS = 1_000_000_000


@dataclass(frozen=True)
class RestartPolicy:
    immediate_restarts: int = 2
    min_backoff_ns: int = 30 * NS
    max_backoff_ns: int = 16 * 60 * NS
    max_restarts: int = 200
    reset_after_ns: int = 5 * 60 * NS

    def crash_count_after_crash(self, crash_count: int, running_for_ns: int) -> int:
        """The crash count to record for a crash, given how long the instance had been RUNNING."""
        if running_for_ns >= self.reset_after_ns:
            return 1
        return crash_count + 1

    def backoff_ns(self, crash_count: int) -> int | None:
        """How long after the crash a restart may happen; None means never restart."""
        if crash_count > self.max_restarts:
            return None
        if crash_count <= self.immediate_restarts:
            return 0
        exponent = crash_count - self.immediate_restarts - 1
        # Cap the exponent before shifting so a count of 200 does not build a huge integer.
        if exponent >= 32:
            return self.max_backoff_ns
        return min(self.min_backoff_ns << exponent, self.max_backoff_ns)

    def restart_at(self, crash_count: int, crashed_at_ns: int) -> int | None:
        """The clock time (ns) at which a crashed instance may restart; None means never."""
        backoff = self.backoff_ns(crash_count)
        return None if backoff is None else crashed_at_ns + backoff


DEFAULT_RESTART_POLICY = RestartPolicy()
