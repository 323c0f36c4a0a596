"""Kubernetes time text: RFC 3339 timestamps (UTC, whole seconds) and the human durations
printed in AGE columns (apimachinery's HumanDuration rules), computed at response time."""

from __future__ import annotations

import datetime as _dt


def rfc3339(ts: float) -> str:
    """Seconds since the epoch as `2026-11-26T23:50:33Z` (fractions dropped, as metav1.Time)."""
    return _dt.datetime.fromtimestamp(int(ts), _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    """`2026-11-26T23:50:33Z` (or with fractions/offset, as MicroTime) to epoch seconds."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return _dt.datetime.fromisoformat(text).timestamp()


def human_duration(seconds: float) -> str:
    """The AGE text: `45s`, `3m20s`, `120m`, `5h10m`, `20h`, `3d4h`, `40d`, `2y10d`, `9y`."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        rest = secs % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: str | None, now: float) -> str:
    """Age of an RFC 3339 timestamp at `now`; `<unknown>` when absent, as kubectl prints it."""
    if not timestamp:
        return "<unknown>"
    try:
        return human_duration(now - parse_rfc3339(timestamp))
    except ValueError:
        return "<unknown>"
