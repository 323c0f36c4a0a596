"""ipamd's Prometheus metrics (upstream utils/prometheusmetrics; spec §8.2) and their endpoint.

Each ipamd owns one CollectorRegistry (many nodes share a process in the planner, so nothing
goes to the global registry). Event counters are prometheus_client metrics that the RPC handler
(through `rpc_hooks()`), the pool loop and the EC2 port bump; datastore gauges are read from
the datastores at scrape time. The text is written as Go's client writes it — counter names
without the `_total` prometheus_client adds, no `_created` series, Go float formatting — so
upstream's dashboards and the cni-metrics-helper queries work unchanged.
"""

from __future__ import annotations

import contextlib
import math
import platform
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from minieks.ipamd.introspection import HttpService
from minieks.ipamd.rpc_handler import VERSION, Datastores, RpcHooks, datastore_list

DEFAULT_METRICS_PORT = 61678
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GO_DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# upstream's bucket choice is not in the spec; these cover a start-up of seconds to minutes
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)


# --- Go text format -------------------------------------------------------------------------

def go_float(value: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 64): shortest digits, exponent form when exp < -4 or ≥ 6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + exponent  # position of the decimal point in the digit string
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        out = f"{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    elif point <= 0:
        out = "0." + "0" * -point + text
    elif point >= len(text):
        out = text + "0" * (point - len(text))
    else:
        out = text[:point] + "." + text[point:]
    return ("-" if sign else "") + out


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


_SUFFIX_ORDER = {"_bucket": 0, "": 0, "_sum": 1, "_count": 2}


def render_go_text(registry: CollectorRegistry, plain_counters: frozenset[str]) -> bytes:
    """The Prometheus text format as Go's expfmt writes it: families sorted by name, series by
    label values, histogram/summary series as buckets, _sum, _count."""
    families: list[tuple[str, Metric]] = []
    for family in registry.collect():
        go_name = family.name
        if family.type == "counter" and family.name not in plain_counters:
            go_name = family.name + "_total"
        families.append((go_name, family))
    out: list[str] = []
    for go_name, family in sorted(families, key=lambda item: item[0]):
        groups: dict[tuple[tuple[str, str], ...], list[tuple[int, str]]] = {}
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            suffix = sample.name[len(family.name):]
            if family.type == "counter":
                name, suffix = go_name, ""
            else:
                name = family.name + suffix
            series = tuple(sorted((k, v) for k, v in sample.labels.items() if k not in ("le", "quantile")))
            labels = list(series)  # Go sorts label pairs by name; le/quantile come last
            for special in ("quantile", "le"):
                if special in sample.labels:
                    labels.append((special, go_float(float(sample.labels[special]))))
            label_text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
            line = f"{name}{{{label_text}}}" if label_text else name
            groups.setdefault(series, []).append(
                (_SUFFIX_ORDER.get(suffix, 0), f"{line} {go_float(sample.value)}\n"))
        if not groups:
            continue  # a labelled metric nobody has touched: Go prints nothing
        mtype = {"unknown": "untyped"}.get(family.type, family.type)
        out.append(f"# HELP {go_name} {_escape_help(family.documentation)}\n")
        out.append(f"# TYPE {go_name} {mtype}\n")
        for series in sorted(groups, key=lambda s: [v for _, v in s]):
            out.extend(line for _, line in sorted(groups[series], key=lambda item: item[0]))
    return "".join(out).encode()


# --- the metrics ----------------------------------------------------------------------------

class _DatastoreCollector(Collector):
    """Datastore gauges and counters, read at scrape time (summed over network cards)."""

    def __init__(self, owner: IpamdMetrics):
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        enis = GaugeMetricFamily("awscni_eni_allocated", "The number of ENIs allocated")
        total = GaugeMetricFamily("awscni_total_ip_addresses", "The total number of IP addresses")
        assigned = GaugeMetricFamily("awscni_assigned_ip_addresses",
                                     "The number of IP addresses assigned to pods")
        prefixes = GaugeMetricFamily("awscni_total_ipv4_prefixes", "The total number of IPv4 prefixes")
        per_cidr = GaugeMetricFamily("awscni_assigned_ip_per_cidr",
                                     "The total number of IP addresses assigned per cidr", labels=["cidr"])
        per_eni = GaugeMetricFamily("awscni_assigned_ip_per_eni",
                                    "The number of allocated ips partitioned by eni", labels=["eni"])
        counts = {"enis": 0, "total": 0, "assigned": 0, "prefixes": 0,
                  "force_enis": 0, "force_ips": 0, "no_ip": 0}
        for ds in datastore_list(self.owner.datastores):
            with ds._lock:  # a consistent snapshot of one card
                counts["enis"] += len(ds.enis())
                counts["total"] += ds.total
                counts["assigned"] += ds.assigned
                counts["prefixes"] += ds.allocated_prefixes
                counts["force_enis"] += ds.force_removed_enis
                counts["force_ips"] += ds.force_removed_ips
                counts["no_ip"] += ds.no_available_ip_count
                for eni in ds.enis():
                    per_eni.add_metric([eni.id], eni.assigned_count)
                    for cidr in eni.all_cidrs():
                        per_cidr.add_metric([str(cidr.network)], cidr.assigned_count)
        enis.add_metric([], counts["enis"])
        total.add_metric([], counts["total"])
        assigned.add_metric([], counts["assigned"])
        prefixes.add_metric([], counts["prefixes"])
        yield from (enis, total, assigned, prefixes, per_cidr, per_eni)
        yield CounterMetricFamily("awscni_force_removed_enis",
                                  "The number of ENIs force removed while they had assigned pods",
                                  value=counts["force_enis"])
        yield CounterMetricFamily("awscni_force_removed_ips",
                                  "The number of IPs force removed while they had assigned pods",
                                  value=counts["force_ips"])
        yield CounterMetricFamily("awscni_no_available_ip_addresses",
                                  "The number of pod IP assignments that fail due to no available IP addresses",
                                  value=counts["no_ip"])


@dataclass
class IpamdMetrics:
    """Every awscni_* metric of one ipamd, in its own registry."""

    datastores: Datastores = ()
    version: str = VERSION
    process_metrics: bool = True
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        reg = self.registry
        self.ipamd_error_count = Counter("awscni_ipamd_error_count",
                                         "The number of errors encountered in ipamd", ["fn"], registry=reg)
        self.ipamd_action_inprogress = Gauge("awscni_ipamd_action_inprogress",
                                             "The number of ipamd actions in progress", ["fn"], registry=reg)
        self.eni_max = Gauge("awscni_eni_max", "The maximum number of ENIs that can be attached to the "
                             "instance, accounting for unmanaged ENIs", registry=reg)
        self.ip_max = Gauge("awscni_ip_max", "The maximum number of IP addresses that can be allocated "
                            "to the instance", registry=reg)
        self.reconcile_count = Counter("awscni_reconcile_count", "The number of times ipamd reconciles "
                                       "on ENIs and IP/Prefix addresses", ["fn"], registry=reg)
        self.add_ip_req_count = Counter("awscni_add_ip_req_count",
                                        "The number of add IP address requests", registry=reg)
        self.del_ip_req_count = Counter("awscni_del_ip_req_count",
                                        "The number of delete IP address requests", ["reason"], registry=reg)
        self.pod_eni_error_count = Counter("awscni_pod_eni_error_count",
                                           "The number of errors encountered for pod ENIs", ["fn"], registry=reg)
        self.aws_api_latency_ms = Summary("awscni_aws_api_latency_ms", "AWS API call latency in ms",
                                          ["api", "error", "status"], registry=reg)
        self.aws_api_error_count = Counter("awscni_aws_api_error_count",
                                           "The number of times AWS API returns an error",
                                           ["api", "error"], registry=reg)
        self.aws_utils_error_count = Counter("awscni_aws_utils_error_count",
                                             "The number of errors not handled in awsutils library",
                                             ["fn", "error"], registry=reg)
        self.ec2api_req_count = Counter("awscni_ec2api_req_count",
                                        "The number of requests made to EC2 APIs by CNI", ["fn"], registry=reg)
        self.ec2api_error_count = Counter("awscni_ec2api_error_count",
                                          "The number of failed EC2 APIs requests", ["fn"], registry=reg)
        self.startup_duration = Histogram(
            "awscni_ipamd_startup_duration_seconds", "Time taken for ipamd to start up",
            ["success", "with_api_server", "failure_reason"], buckets=DURATION_BUCKETS, registry=reg)
        self.node_init_duration = Histogram(
            "awscni_ipamd_node_initialization_duration_seconds", "Time taken for ipamd node initialization",
            ["success"], buckets=DURATION_BUCKETS, registry=reg)
        self.connmark_backend = Gauge("awscni_connmark_backend",
                                      "The connmark backend in use (1 for the active one)", ["backend"],
                                      registry=reg)
        self.connmark_reconcile_total = Counter("awscni_connmark_reconcile_total",
                                                "The number of connmark rule reconciliations", ["result"],
                                                registry=reg)
        for result in ("success", "error"):
            self.connmark_reconcile_total.labels(result)
        self.build_info = Gauge("awscni_build_info", "A metric with a constant '1' value labeled by "
                                "version and goversion from which amazon-vpc-cni-k8s was built",
                                ["version", "goversion"], registry=reg)
        self.build_info.labels(self.version, f"python{platform.python_version()}").set(1)
        reg.register(_DatastoreCollector(self))
        if self.process_metrics:
            ProcessCollector(registry=reg)
        # counters whose Go name has no _total (all of ours but connmark_reconcile_total)
        self._plain_counters = frozenset({
            "awscni_ipamd_error_count", "awscni_reconcile_count", "awscni_add_ip_req_count",
            "awscni_del_ip_req_count", "awscni_pod_eni_error_count", "awscni_aws_api_error_count",
            "awscni_aws_utils_error_count", "awscni_ec2api_req_count", "awscni_ec2api_error_count",
            "awscni_force_removed_enis", "awscni_force_removed_ips", "awscni_no_available_ip_addresses",
        })

    # --- hooks for the handler, the pool loop and the EC2 port ---

    def rpc_hooks(self, base: RpcHooks | None = None) -> RpcHooks:
        """RpcHooks that count AddNetwork and DelNetwork{reason}; other hooks taken from `base`."""
        hooks = base or RpcHooks()
        hooks.add_ip_request = self.add_ip_req_count.inc
        hooks.del_ip_request = lambda reason: self.del_ip_req_count.labels(reason).inc()
        return hooks

    def ipamd_error(self, fn: str) -> None:
        self.ipamd_error_count.labels(fn).inc()

    def reconcile(self, fn: str) -> None:
        self.reconcile_count.labels(fn).inc()

    @contextlib.contextmanager
    def action(self, fn: str) -> Iterator[None]:
        """awscni_ipamd_action_inprogress{fn} is 1 while the block runs."""
        gauge = self.ipamd_action_inprogress.labels(fn)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def set_limits(self, eni_max: int, ip_max: int) -> None:
        self.eni_max.set(eni_max)
        self.ip_max.set(ip_max)

    def aws_api_call(self, api: str, latency_ms: float, error: str = "", status: str = "") -> None:
        """One EC2/IMDS call: latency{api,error,status}; an error code also counts an API error."""
        self.aws_api_latency_ms.labels(api, "true" if error else "false", status).observe(latency_ms)
        if error:
            self.aws_api_error_count.labels(api, error).inc()

    def ec2_request(self, fn: str, failed: bool = False) -> None:
        self.ec2api_req_count.labels(fn).inc()
        if failed:
            self.ec2api_error_count.labels(fn).inc()

    def set_connmark_backend(self, backend: str) -> None:
        self.connmark_backend.labels(backend).set(1)

    # --- exposition ---

    def render(self) -> bytes:
        """/metrics text, as upstream's Go client writes it."""
        return render_go_text(self.registry, self._plain_counters)

    def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        if path.split("?", 1)[0] != "/metrics":
            return 404, "text/plain; charset=utf-8", b"404 page not found\n"
        return 200, CONTENT_TYPE, self.render()


@dataclass
class MetricsServer:
    """/metrics on host:port (upstream ":61678", every interface of the node's namespace)."""

    metrics: IpamdMetrics
    port: int = DEFAULT_METRICS_PORT
    host: str = ""
    _service: HttpService | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        self._service = HttpService(address, self.metrics.respond)
        self._service.start()

    @property
    def bound_port(self) -> int:
        return self._service.port if self._service is not None else 0

    def stop(self) -> None:
        if self._service is not None:
            self._service.stop()
            self._service = None
