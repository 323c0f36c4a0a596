"""The pod's story in time order: its Events (scheduler, kubelet) and the ipamd log lines that
matter for addresses in the same window, repeated lines folded into one with a count."""

from __future__ import annotations

from minieks.explain.diagnosis import TimelineEntry
from minieks.explain.evidence import LogRecord, clock, parse_time
from minieks.explain.situation import Situation

MAX_ENTRIES = 40
IPAMD_INFO = ("Trying to allocate", "Created a new ENI", "Successfully freed ENI", "Reconcile and add a new ENI",
              "IP pool manager", "ipamd is running", "Reconcile and delete detached ENI")
IGNORED = ("Handling http request",)
SOURCES = {"default-scheduler": "scheduler"}


def _event_entries(s: Situation) -> list[TimelineEntry]:
    out = []
    for e in s.facts.events:
        first = parse_time(e.get("firstTimestamp") or e.get("eventTime") or e.get("lastTimestamp"))
        count = int(e.get("count") or 1)
        more = f" (×{count}, last {clock(parse_time(e.get('lastTimestamp')))})" if count > 1 else ""
        component = (e.get("source") or {}).get("component") or e.get("reportingComponent") or "?"
        out.append(TimelineEntry(first, SOURCES.get(component, component),
                                 f"{e.get('type', 'Normal')} {e.get('reason', '')}: {e.get('message', '')}{more}"))
    return out


def _relevant(r: LogRecord, sandboxes: list[str], pool_lines: bool) -> bool:
    if r.message.startswith(IGNORED):
        return False
    if not pool_lines:
        return any(sb in r.message for sb in sandboxes)
    if r.level in ("WARNING", "ERROR", "CRITICAL"):
        return True
    return r.message.startswith(IPAMD_INFO) or any(sb in r.message for sb in sandboxes)


def _ipamd_entries(s: Situation) -> list[TimelineEntry]:
    sandboxes = s.sandbox_ids
    folded: dict[str, list] = {}
    for r in s.log:
        if r.time is None or r.time < s.window_start or not _relevant(r, sandboxes, s.state != "Running"):
            continue
        text = r.message.splitlines()[0]
        entry = folded.get(text)
        if entry is None:
            folded[text] = [r.time, r.time, 1]
        else:
            entry[1], entry[2] = r.time, entry[2] + 1
    out = []
    for text, (first, last, count) in folded.items():
        more = f" (×{count}, last {clock(last)})" if count > 1 else ""
        out.append(TimelineEntry(first, "ipamd", f"{text}{more}"))
    return out


def build_timeline(s: Situation) -> list[TimelineEntry]:
    events = _event_entries(s)
    ipamd = sorted(_ipamd_entries(s), key=lambda e: e.time or 0.0)
    room = max(MAX_ENTRIES - len(events), 0)
    ipamd = ipamd[-room:] if room else []
    return sorted(events + ipamd, key=lambda e: (e.time or 0.0, e.source != "scheduler"))
