"""What `minieks explain` concludes about one pod: its state, the causes (first is the one that
blocks it now), the timeline that led there, and the numbers; rendered as text or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from minieks.explain.evidence import clock


@dataclass
class Cause:
    code: str                       # e.g. "eni-limit"; see diagnose.CAUSE_CODES
    title: str                      # one line an expert would say
    evidence: list[str] = field(default_factory=list)
    remedy: list[str] = field(default_factory=list)
    numbers: dict[str, object] = field(default_factory=dict)


@dataclass
class TimelineEntry:
    time: float | None
    source: str                     # scheduler, kubelet, ipamd, ...
    text: str


@dataclass
class Diagnosis:
    pod: str                        # namespace/name
    state: str                      # as kubectl's STATUS column says it
    node: str | None
    headline: str
    causes: list[Cause] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)

    @property
    def codes(self) -> list[str]:
        return [c.code for c in self.causes]

    def cause(self, code: str) -> Cause | None:
        return next((c for c in self.causes if c.code == code), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def render(self) -> str:
        """The text a user reads: headline, causes with evidence and remedies, numbers, timeline."""
        out = [self.headline]
        if self.codes == ["running"]:
            out.extend(f"  {line}" for line in self.causes[0].evidence)
        for n, cause in enumerate(c for c in self.causes if c.code != "running"):
            out.append("")
            out.append(f"{'Cause' if n == 0 else 'Also'}: {cause.title}")
            out.extend(f"  {line}" for line in cause.evidence)
            if cause.remedy:
                out.append("  What helps:")
                out.extend(f"    - {line}" for line in cause.remedy)
        if self.numbers:
            out.append("")
            out.append("Numbers:")
            out.extend(f"  {line}" for line in self.numbers)
        if self.timeline:
            out.append("")
            out.append("Timeline (UTC):")
            width = max(len(e.source) for e in self.timeline)
            for e in self.timeline:
                text = e.text.splitlines()[0] if e.text else ""
                out.append(f"  {clock(e.time)}  {e.source:<{width}}  {text}")
        return "\n".join(out) + "\n"
