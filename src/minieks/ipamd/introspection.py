"""ipamd's introspection endpoints (upstream pkg/ipamd/introspect.go; spec §8.1), and the small
threaded HTTP server both they and metrics.py listen with.

Observers (curl, the aws-cni-support script, the board) read the datastore here in upstream's
exact JSON: Go struct field order, Go map keys sorted, the IP mask base64 because Go marshals a
byte slice that way, and ContainerID/IfName blanked (v1.23+).
"""

from __future__ import annotations

import base64
import logging
import math
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from minieks.cni import gojson
from minieks.ipamd.config import DEFAULT_INTROSPECTION_ADDRESS, IpamdConfig
from minieks.ipamd.datastore import Datastore
from minieks.ipamd.eni import Address, Cidr, Eni
from minieks.ipamd.rpc_handler import Datastores, datastore_list

log = logging.getLogger("ipamd")

HTTP_TIMEOUT = 5.0  # upstream's read and write timeouts
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
TEXT_PLAIN = "text/plain; charset=utf-8"  # what Go sniffs for a JSON body written without a type

# Respond: (method, path) -> (status, content type, body)
Respond = Callable[[str, str], tuple[int, str, bytes]]


# --- a threaded HTTP server on host:port or unix:/path --------------------------------------

class _UnixHTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_UNIX

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look up a host name in the socket path
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", 0


def parse_bind_address(address: str) -> tuple[str, int] | str:
    """"host:port", ":port" (every interface, as Go reads it), "[v6]:port" or "unix:/path"."""
    if address.startswith("unix:"):
        return address[len("unix:"):]
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"address {address}: missing port in address")
    return host.strip("[]"), int(port)


@dataclass
class HttpService:
    """One listening HTTP server run on a daemon thread; start() binds, stop() closes."""

    address: str
    respond: Respond
    log_requests: bool = False
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        bind = parse_bind_address(self.address)
        handler = _handler_class(self.respond, self.log_requests)
        if isinstance(bind, str):
            if os.path.lexists(bind):
                os.unlink(bind)
            self._server = _UnixHTTPServer(bind, handler)
        else:
            server_class = ThreadingHTTPServer
            if ":" in bind[0]:
                server_class = type("V6Server", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
            self._server = server_class(bind, handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name=f"http {self.address}", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The bound TCP port (useful with port 0); 0 on a unix socket."""
        if self._server is None or self._server.address_family == socket.AF_UNIX:
            return 0
        return self._server.server_address[1]

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._server.address_family == socket.AF_UNIX and os.path.lexists(self._server.server_address):
            os.unlink(self._server.server_address)
        self._server = self._thread = None


def _handler_class(respond: Respond, log_requests: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = HTTP_TIMEOUT
        server_version = "minieks"
        sys_version = ""

        def _serve(self) -> None:
            if log_requests:
                peer = self.client_address
                source = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "@"
                log.info("Handling http request: %s, from: %s, URI: %s", self.command, source, self.path)
            status, ctype, body = respond(self.command, self.path)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if ctype == TEXT_PLAIN and status >= 400:
                self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log.debug("http: " + format, *args)

    return Handler


# --- the introspection JSON ----------------------------------------------------------------

def go_time(unix_seconds: float | None) -> str:
    """time.Time as Go's MarshalJSON writes it (RFC 3339, nanoseconds trimmed, UTC)."""
    if unix_seconds is None:
        return GO_ZERO_TIME
    whole = math.floor(unix_seconds)  # split first: Unix nanoseconds exceed a double's precision
    return go_time_ns(whole * 1_000_000_000 + round((unix_seconds - whole) * 1_000_000_000))


def go_time_ns(unix_ns: int) -> str:
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{stamp}{fraction}Z"


def _address_json(addr: Address, offset: float) -> dict[str, object]:
    metadata: dict[str, object] = {}
    if addr.metadata.k8s_pod_namespace:
        metadata["k8sPodNamespace"] = addr.metadata.k8s_pod_namespace
    if addr.metadata.k8s_pod_name:
        metadata["k8sPodName"] = addr.metadata.k8s_pod_name
    if addr.metadata.interfaces_count:
        metadata["interfacesCount"] = addr.metadata.interfaces_count
    if addr.allocation_ns:
        assigned = go_time_ns(addr.allocation_ns)
    else:
        assigned = go_time(None if addr.assigned_time is None else addr.assigned_time + offset)
    return {
        "Address": addr.address,
        # v1.23+ scrubs the container id and interface name
        "IPAMKey": {"networkName": addr.key.network_name, "containerID": "", "ifName": ""},
        "IPAMMetadata": metadata,
        "AssignedTime": assigned,
        "UnassignedTime": go_time(None if addr.unassigned_time is None else addr.unassigned_time + offset),
    }


def _cidr_json(cidr: Cidr, offset: float) -> dict[str, object]:
    network = cidr.network
    return {
        "Cidr": {"IP": str(network.network_address),
                 "Mask": base64.b64encode(network.netmask.packed).decode()},
        "IPAddresses": {ip: _address_json(cidr.addresses[ip], offset) for ip in sorted(cidr.addresses)},
        "IsPrefix": cidr.is_prefix,
        "AddressFamily": "",  # not copied by GetENIInfos
    }


def _eni_json(eni: Eni, offset: float) -> dict[str, object]:
    return {
        "ID": eni.id,
        "IsPrimary": eni.is_primary,
        "IsTrunk": eni.is_trunk,
        "IsEFA": eni.is_efa,
        "DeviceNumber": eni.device_number,
        "AvailableIPv4Cidrs": {k: _cidr_json(eni.ipv4_cidrs[k], offset) for k in sorted(eni.ipv4_cidrs)},
        "IPv6Cidrs": {k: _cidr_json(eni.ipv6_cidrs[k], offset) for k in sorted(eni.ipv6_cidrs)},
        "IsExcludedForPodIPs": eni.excluded_for_pod_ips,
        "RouteTableID": eni.route_table_id,
        "SubnetID": eni.subnet_id,
    }


def eni_infos(ds: Datastore) -> dict[str, object]:
    """GetENIInfos of one datastore: upstream's counters and a copy of every ENI."""
    with ds._lock:  # one consistent snapshot while pods come and go
        enis = {e.id: e for e in ds.enis()}
        return {"TotalIPs": ds.total, "AssignedIPs": ds.assigned,
                "ENIs": {i: _eni_json(enis[i], ds.unix_offset) for i in sorted(enis)}}


def enis_document(datastores: Datastores) -> dict[str, object]:
    """/v1/enis: network card (as a string, Go's map key) → ENIInfos, keys sorted as Go does."""
    cards = {str(ds.network_card): ds for ds in datastore_list(datastores)}
    return {card: eni_infos(cards[card]) for card in sorted(cards)}


@dataclass
class Introspection:
    """The endpoints; `eni_config_name` returns the node's ENIConfig name, or None when the Node
    cannot be read (404). Map order of AvailableCommands is upstream's random order; ours is sorted."""

    datastores: Datastores
    config: IpamdConfig = field(default_factory=IpamdConfig)
    eni_config_name: Callable[[], str | None] | None = None
    address: str = DEFAULT_INTROSPECTION_ADDRESS
    _service: HttpService | None = field(default=None, init=False, repr=False)

    def routes(self) -> dict[str, Callable[[], object]]:
        return {
            "/v1/enis": lambda: enis_document(self.datastores),
            "/v1/eni-configs": self._eni_config,
            "/v1/networkutils-env-settings": self.config.networkutils_env_settings,
            "/v1/ipamd-env-settings": self.config.ipamd_env_settings,
        }

    def _eni_config(self) -> object:
        try:
            name = self.eni_config_name() if self.eni_config_name is not None else None
        except Exception as err:  # the API server did not answer
            log.error("Failed to get ENI config: %s", err)
            name = None
        if name is None:
            raise LookupError("ENIConfig")
        return name

    def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        routes = self.routes()
        route = routes.get(path.split("?", 1)[0])
        if route is None:
            body: object = {"AvailableCommands": sorted(routes)}
        else:
            try:
                body = route()
            except LookupError:
                return 404, TEXT_PLAIN, b"Not Found\n"
        return 200, TEXT_PLAIN, gojson.dumps(body).encode()

    def start(self) -> None:
        self._service = HttpService(self.address, self.respond, log_requests=True)
        self._service.start()
        log.info("Serving introspection endpoints on %s", self.address)

    @property
    def port(self) -> int:
        return self._service.port if self._service is not None else 0

    def stop(self) -> None:
        if self._service is not None:
            self._service.stop()
            self._service = None
