"""The kubelet's container restart back-off (CrashLoopBackOff), one policy for every container the lab
runs: pods' containers and aws-node's ipamd alike.

The kubelet waits 10 s before restarting a container that exited, doubles the wait after each further
exit, caps it at 5 minutes, and forgets the count once a container has run for 10 minutes. While it
waits, the container is `waiting` with reason CrashLoopBackOff and the message below; `kubectl get pod`
shows CrashLoopBackOff in STATUS and the restart count in RESTARTS.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_SECONDS = 10.0
MAX_SECONDS = 300.0
RESET_AFTER_SECONDS = 600.0
REASON = "CrashLoopBackOff"


def go_duration(seconds: float) -> str:
    """Whole seconds as Go's time.Duration prints them: `10s`, `1m20s`, `5m0s`, `1h0m0s`."""
    secs = int(seconds)
    hours, rest = divmod(secs, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def message(wait_seconds: float, container: str, pod: str, namespace: str, uid: str) -> str:
    """The waiting message, in the kubelet's words."""
    return f"back-off {go_duration(wait_seconds)} restarting failed container={container} pod={pod}_{namespace}({uid})"


@dataclass
class RestartBackoff:
    """One container's restart count and back-off, on a given clock (seconds)."""

    restarts: int = 0
    wait: float = 0.0
    started_at: float | None = None
    not_before: float = 0.0

    def started(self, now: float) -> None:
        self.started_at = now

    def exited(self, now: float) -> float:
        """The container stopped at `now`: the time the next start may happen."""
        if self.started_at is not None and now - self.started_at >= RESET_AFTER_SECONDS:
            self.wait = 0.0
        self.wait = INITIAL_SECONDS if self.wait == 0.0 else min(self.wait * 2, MAX_SECONDS)
        self.started_at = None
        self.not_before = now + self.wait
        return self.not_before

    def restart(self, now: float) -> bool:
        """Whether the container may start again at `now`; counts the restart when it may."""
        if now < self.not_before:
            return False
        self.restarts += 1
        self.started(now)
        return True
