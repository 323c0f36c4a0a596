"""The lab's stand-in internet services: an HTTP host and the VPC's DNS resolver.

Both are threads of the fabric's own process whose listening sockets were opened inside a lab
namespace (a socket stays in the namespace it was made in), so they add no process to clean up and
die with the fabric. Only documentation addresses and names under example.com are ever served
(DESIGN.md principle 4); the resolver also answers EC2's `ip-a-b-c-d.<region>.compute.internal`
names for addresses inside the VPC, as the Amazon-provided resolver does.
"""

from __future__ import annotations

import ipaddress
import re
import socketserver
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from minieks.fabric import netns

DOC_RANGES = tuple(ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
DEFAULT_RECORDS: dict[str, tuple[str, ...]] = {
    "example.com": ("203.0.113.10",),
    "www.example.com": ("203.0.113.10",),
    "api.example.com": ("203.0.113.20",),
}
_EC2_NAME = re.compile(r"^ip-(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})\.([a-z0-9-]+\.)?compute\.internal$")
POLL = 0.05   # how often a serving loop looks for shutdown


def check_records(records: Mapping[str, tuple[str, ...] | list[str]]) -> dict[str, tuple[str, ...]]:
    """Names under example.com pointing at documentation addresses only; lowercased, no final dot."""
    out = {}
    for name, ips in records.items():
        key = name.lower().rstrip(".")
        if key != "example.com" and not key.endswith(".example.com"):
            raise ValueError(f"the lab resolver only serves names under example.com, not {name!r}")
        for ip in ips:
            if not any(ipaddress.IPv4Address(ip) in net for net in DOC_RANGES):
                raise ValueError(f"{name} -> {ip}: stand-in hosts live on documentation ranges only")
        out[key] = tuple(ips)
    return out


# ------------------------------------------------------------------------------------------ DNS
@dataclass(frozen=True)
class Zone:
    """What the resolver knows: the example.com map and the VPC range for EC2 host names."""

    records: dict[str, tuple[str, ...]]
    vpc_cidr: str

    def lookup(self, name: str) -> tuple[str, ...] | None:
        """Addresses for a name; () for a name that exists without addresses; None: no such name."""
        name = name.lower().rstrip(".")
        if name in self.records:
            return self.records[name]
        if any(k.endswith("." + name) for k in self.records):
            return ()                         # an empty non-terminal (e.g. example.com's parents)
        match = _EC2_NAME.match(name)
        if match and all(int(o) < 256 for o in match.groups()[:4]):
            address = ".".join(match.groups()[:4])
            if ipaddress.IPv4Address(address) in ipaddress.IPv4Network(self.vpc_cidr):
                return (address,)
        return None


def answer(query: bytes, zone: Zone) -> bytes | None:
    """The reply to one DNS query: A records, NODATA for other types, NXDOMAIN for unknown names."""
    from dnslib import QTYPE, RCODE, RR, A, DNSRecord

    try:
        request = DNSRecord.parse(query)
    except Exception:   # malformed (DNSError and friends): drop it, as resolvers do
        return None
    reply = request.reply(ra=1, aa=0)
    if not request.questions:
        reply.header.rcode = RCODE.FORMERR
        return reply.pack()
    question = request.q
    found = zone.lookup(str(question.qname))
    if found is None:
        reply.header.rcode = RCODE.NXDOMAIN
    elif question.qtype in (QTYPE.A, QTYPE.ANY):
        for address in found:
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=60))
    return reply.pack()


class _DnsHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        reply = answer(data, self.server.zone)
        if reply:
            sock.sendto(reply, self.client_address)


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = True


# ----------------------------------------------------------------------------------------- HTTP
class _HttpHandler(BaseHTTPRequestHandler):
    server_version = "minieks-stand-in/1"

    def do_GET(self) -> None:
        self._reply(head=False)

    def do_HEAD(self) -> None:
        self._reply(head=True)

    def _reply(self, head: bool) -> None:
        local = self.connection.getsockname()[0]
        client, port = self.client_address[:2]
        body = (f"minieks stand-in internet host {local}\n"
                f"client {client} port {port}\n"
                f"path {self.path}\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:   # quiet: the lab's output is its own
        pass


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks getfqdn() for its name: a DNS lookup from inside a lab
        # namespace that could only time out. Bind without it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "stand-in", self.server_address[1]


# -------------------------------------------------------------------------------------- running
@dataclass
class Services:
    """Serving threads started in lab namespaces; stop() closes every socket and joins."""

    servers: list[socketserver.BaseServer] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def _run(self, namespace: str, make) -> socketserver.BaseServer:
        with netns.entered(namespace):
            server = make()             # the listening socket is created here, inside
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL},
                                  name=f"{namespace}-{type(server).__name__}", daemon=True)
        thread.start()
        self.servers.append(server)
        self.threads.append(thread)
        return server

    def http(self, namespace: str, port: int = 80) -> None:
        self._run(namespace, lambda: _HttpServer(("0.0.0.0", port), _HttpHandler))

    def dns(self, namespace: str, address: str, zone: Zone) -> None:
        def make() -> _UdpServer:
            server = _UdpServer((address, 53), _DnsHandler)
            server.zone = zone
            return server
        self._run(namespace, make)

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=5)
        self.servers.clear()
        self.threads.clear()

    @property
    def running(self) -> bool:
        return bool(self.servers)
