"""Reading the raw evidence: Prometheus text, ipamd log lines, the /v1/enis document, EC2 error
codes in log messages, and the times Kubernetes and Go write.

Plain functions over strings and dicts, used by diagnose.py; nothing here decides a cause.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

# EC2 error codes ipamd meets when growing the pool, and what family each belongs to
SUBNET_FULL_CODES = ("InsufficientFreeAddressesInSubnet", "InsufficientCidrBlocks")
THROTTLE_CODES = ("RequestLimitExceeded", "Throttling", "ThrottlingException")
KNOWN_CODES = (*SUBNET_FULL_CODES, *THROTTLE_CODES, "PrivateIpAddressLimitExceeded", "AttachmentLimitExceeded",
               "UnauthorizedOperation", "InvalidParameterValue", "NetworkInterfaceLimitExceeded")
SUBNET_FULL_LINE = "subnet doesn't seem to have enough IPs/Prefixes"
INSUFFICIENT_CIDR_WAIT = "Recently we had InsufficientCidr error"
ENI_LIMIT_LINE = "Skipping ENI allocation as the max ENI limit is already reached"


# --------------------------------------------------------------------------------- times
def parse_time(text: str | None) -> float | None:
    """RFC 3339 (Kubernetes' and Go's, nanoseconds allowed) to Unix seconds; Go's zero time is None."""
    if not text or text.startswith("0001-01-01"):
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if not m:
        return None
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    fraction = float("0." + m.group(2)) if m.group(2) else 0.0
    return base.timestamp() + fraction


def clock(seconds: float | None) -> str:
    """HH:MM:SS in UTC, as the timeline prints times."""
    if seconds is None:
        return "--:--:--"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%H:%M:%S")


def duration(seconds: float) -> str:
    """kubectl's short age: 45s, 3m12s, 2h5m."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds < 600 else f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60}m"


# ------------------------------------------------------------------------------- metrics
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass
class Metrics:
    """Samples of one /metrics scrape: (name, labels, value)."""

    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def series(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(labels, value) for n, labels, value in self.samples if n == name]

    def value(self, name: str, **labels: str) -> float | None:
        """The sum over series matching the labels given; None when the metric is absent."""
        found = [v for lab, v in self.series(name) if all(lab.get(k) == want for k, want in labels.items())]
        return sum(found) if found else None


def parse_metrics(text: str | None) -> Metrics:
    out = Metrics()
    for line in (text or "").splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        labels = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(m.group(2) or "")}
        out.samples.append((m.group(1), labels, value))
    return out


# ---------------------------------------------------------------------------------- log
@dataclass
class LogRecord:
    time: float | None
    level: str
    logger: str
    message: str


_TEXT_LINE = re.compile(r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)(?:[,.](\d+))? (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
                        r"(\S+) (.*)$")


def parse_log(lines: Iterable[str], utc_offset: float = 0.0) -> list[LogRecord]:
    """ipamd.log in minieks' text format (local times) or upstream's JSON lines (`ts`, `level`, `msg`);
    a line that starts no record (a traceback) is added to the one before."""
    records: list[LogRecord] = []
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        m = _TEXT_LINE.match(line)
        if m:
            stamp = datetime.fromisoformat(m.group(1).replace(" ", "T")).replace(tzinfo=timezone.utc).timestamp()
            stamp += float("0." + m.group(2)) if m.group(2) else 0.0
            records.append(LogRecord(stamp - utc_offset, m.group(3), m.group(4), m.group(5)))
            continue
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and "msg" in doc:
                records.append(LogRecord(parse_time(str(doc.get("ts", ""))), str(doc.get("level", "info")).upper(),
                                         str(doc.get("logger", "ipamd")), str(doc["msg"])))
                continue
        if records:
            last = records[-1]
            records[-1] = LogRecord(last.time, last.level, last.logger, f"{last.message}\n{line}")
    return records


@dataclass(frozen=True)
class Ec2ErrorSeen:
    """An EC2 error code named in an ipamd log line."""

    time: float | None
    api: str
    code: str
    message: str


_BOTO_ERROR = re.compile(r"An error occurred \(([\w.]+)\) when calling the (\w+) operation")
_GO_ERROR = re.compile(r"operation error EC2: (\w+),.*?api error ([\w.]+)")


def ec2_errors(records: Iterable[LogRecord]) -> list[Ec2ErrorSeen]:
    """Every EC2 error code ipamd logged (boto3's and aws-sdk-go-v2's wording, or a bare known code)."""
    found = []
    for r in records:
        m = _BOTO_ERROR.search(r.message)
        if m:
            found.append(Ec2ErrorSeen(r.time, m.group(2), m.group(1), r.message))
            continue
        m = _GO_ERROR.search(r.message)
        if m:
            found.append(Ec2ErrorSeen(r.time, m.group(1), m.group(2), r.message))
            continue
        code = next((c for c in KNOWN_CODES if c in r.message), None)
        if code:
            found.append(Ec2ErrorSeen(r.time, "", code, r.message))
    return found


# ------------------------------------------------------------------------------ /v1/enis
@dataclass
class EniView:
    """One ENI in ipamd's datastore, counted in the pool's mode (/32s, or /28 prefixes under PD)."""

    id: str
    device: int
    primary: bool
    excluded: bool
    subnet_id: str
    slots: int = 0                       # CIDRs of the mode: secondary IPs, or prefixes
    addresses: int = 0                   # addresses those CIDRs hold
    assigned: int = 0
    cooldown: int = 0
    cooldown_ends: list[float] = field(default_factory=list)
    pods: dict[str, str] = field(default_factory=dict)   # "namespace/name" -> address


@dataclass
class PoolView:
    """ipamd's datastore for network card 0, as GetIPStats counts it."""

    pd: bool
    enis: list[EniView] = field(default_factory=list)

    @property
    def usable(self) -> list[EniView]:
        return [e for e in self.enis if not e.excluded]

    @property
    def total(self) -> int:
        return sum(e.addresses for e in self.usable)

    @property
    def assigned(self) -> int:
        return sum(e.assigned for e in self.usable)

    @property
    def cooldown(self) -> int:
        return sum(e.cooldown for e in self.usable)

    @property
    def free(self) -> int:
        """Addresses a pod could get right now (cooldown ones cannot be handed out)."""
        return self.total - self.assigned - self.cooldown

    @property
    def first_cooldown_end(self) -> float | None:
        ends = [t for e in self.usable for t in e.cooldown_ends]
        return min(ends) if ends else None

    def find_pod(self, namespace: str, name: str) -> tuple[EniView, str] | None:
        for eni in self.enis:
            ip = eni.pods.get(f"{namespace}/{name}")
            if ip:
                return eni, ip
        return None


def _prefix_size(cidr: str) -> int:
    bits = int(cidr.rsplit("/", 1)[1]) if "/" in cidr else 32
    return 2 ** (32 - bits)


def pool_view(doc: dict | None, now: float, cooldown_period: float, pd: bool | None = None) -> PoolView | None:
    """The /v1/enis document of card 0 as counts; `pd` None means: infer it from the CIDRs."""
    if not doc:
        return None
    card = doc.get("0") or next(iter(doc.values()), None)
    if not isinstance(card, dict):
        return None
    enis_doc = card.get("ENIs") or {}
    if pd is None:
        pd = any(c.get("IsPrefix") for e in enis_doc.values() for c in (e.get("AvailableIPv4Cidrs") or {}).values())
    view = PoolView(pd=pd)
    for eni_id in sorted(enis_doc, key=lambda i: (enis_doc[i].get("DeviceNumber", 0), i)):
        e = enis_doc[eni_id]
        ev = EniView(id=e.get("ID", eni_id), device=int(e.get("DeviceNumber", 0)), primary=bool(e.get("IsPrimary")),
                     excluded=bool(e.get("IsExcludedForPodIPs")), subnet_id=e.get("SubnetID", ""))
        for cidr, info in (e.get("AvailableIPv4Cidrs") or {}).items():
            if bool(info.get("IsPrefix")) != pd:
                continue
            ev.slots += 1
            ev.addresses += _prefix_size(cidr)
            for ip, addr in (info.get("IPAddresses") or {}).items():
                key = addr.get("IPAMKey") or {}
                meta = addr.get("IPAMMetadata") or {}
                if key.get("networkName") or key.get("containerID"):
                    ev.assigned += 1
                    if meta.get("k8sPodName"):
                        ev.pods[f"{meta.get('k8sPodNamespace', '')}/{meta['k8sPodName']}"] = addr.get("Address", ip)
                    continue
                released = parse_time(addr.get("UnassignedTime"))
                if released is not None and now - released <= cooldown_period:
                    ev.cooldown += 1
                    ev.cooldown_ends.append(released + cooldown_period)
        view.enis.append(ev)
    return view
