"""What a container image does in the lab, where pods are network namespaces, not containers.

Commands run in a pod come from the host (as the netshoot image would have them). Images that
serve (nginx, httpd, ...) answer HTTP on their container ports with their usual page, from a
thread whose listening socket was opened inside the pod's namespace. And, because grace periods
show when deleting pods, an image whose main process ignores SIGTERM (a shell, `tail -f
/dev/null`, `sleep`) waits out terminationGracePeriodSeconds, while servers stop at once.
What nginx would write to its stdout (its start-up lines, then one access-log line per request)
is kept per pod for `kubectl logs`.
"""

from __future__ import annotations

import collections
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from minieks.fabric import netns

NGINX_PAGE = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""
SERVING = ("nginx", "httpd", "caddy", "traefik/whoami", "hashicorp/http-echo")
NGINX_VERSION = "1.27.3"
LOG_LINES = 1000                     # per pod; older lines go, as a rotated container log would
NGINX_START = ("/docker-entrypoint.sh: Configuration complete; ready for start up",
               '{t} [notice] 1#1: using the "epoll" event method', "{t} [notice] 1#1: nginx/" + NGINX_VERSION,
               "{t} [notice] 1#1: start worker processes")


def image_name(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    for registry in ("docker.io/library/", "docker.io/", "public.ecr.aws/docker/library/", "public.ecr.aws/nginx/"):
        if name.startswith(registry):
            name = name[len(registry):]
    return name


def serves(image: str) -> bool:
    return image_name(image) in SERVING


def stops_on_sigterm(container: dict) -> bool:
    """Whether the container's main process exits on SIGTERM (so deletion need not wait the grace).

    Servers (nginx, CoreDNS, ...) do; a shell, `tail -f` or `sleep` as PID 1 ignores it."""
    command = " ".join([*(container.get("command") or []), *(container.get("args") or [])])
    return not any(word in command for word in ("tail -f", "sleep", "/bin/sh", "bash"))


class _Handler(BaseHTTPRequestHandler):
    server_version = "nginx/" + NGINX_VERSION

    def do_GET(self) -> None:
        body = NGINX_PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.log.append(access_line(self.client_address[0], time.time(), self.requestline, 200, len(body),
                                           self.headers.get("Referer"), self.headers.get("User-Agent")))

    def log_message(self, format: str, *args) -> None:
        pass


def access_line(client: str, when: float, request: str, status: int, size: int, referer: str | None,
                agent: str | None) -> str:
    """The docker nginx image's log_format main: combined plus X-Forwarded-For."""
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(when))
    return f'{client} - - [{stamp}] "{request}" {status} {size} "{referer or "-"}" "{agent or "-"}" "-"'


def nginx_start_lines(when: float) -> list[str]:
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(when))
    return [line.format(t=stamp) for line in NGINX_START]


class ContainerLog:
    """The last LOG_LINES lines a container wrote, and how many it ever wrote (so a reader that
    follows the log knows which lines are new even after old ones were dropped)."""

    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self.written = 0
        self._lock = threading.Lock()

    def append(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)
            self.written += 1

    def snapshot(self) -> tuple[list[str], int]:
        with self._lock:
            return list(self.lines), self.written


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    log: ContainerLog

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)          # no getfqdn(): no DNS from inside a pod
        self.server_name, self.server_port = "nginx", self.server_address[1]


class ImageServers:
    """HTTP servers of serving images, per pod namespace."""

    def __init__(self) -> None:
        self._servers: dict[str, list[_Server]] = {}
        self._logs: dict[tuple[str, str], ContainerLog] = {}
        self._lock = threading.Lock()

    def start(self, pod_netns: str, containers: list[dict]) -> None:
        with self._lock:
            if pod_netns in self._servers:
                return
            started = []
            for container in containers:
                if not serves(container.get("image", "")):
                    continue
                log = ContainerLog()
                if image_name(container.get("image", "")) == "nginx":
                    for line in nginx_start_lines(time.time()):
                        log.append(line)
                self._logs[(pod_netns, container.get("name", ""))] = log
                ports = [p.get("containerPort") for p in container.get("ports") or [] if p.get("containerPort")] or [80]
                for port in ports:
                    with netns.entered(pod_netns):
                        server = _Server(("0.0.0.0", int(port)), _Handler)
                    server.log = log
                    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                                     name=f"{pod_netns}-{port}").start()
                    started.append(server)
            self._servers[pod_netns] = started

    def logs(self, pod_netns: str, container: str) -> tuple[list[str], int]:
        """The container's stdout as kept (nothing for images that do not serve), and its line count."""
        with self._lock:
            log = self._logs.get((pod_netns, container))
        return log.snapshot() if log else ([], 0)

    def stop(self, pod_netns: str) -> None:
        with self._lock:
            servers = self._servers.pop(pod_netns, [])
            for key in [k for k in self._logs if k[0] == pod_netns]:
                del self._logs[key]
        for server in servers:
            server.shutdown()
            server.server_close()

    def stop_all(self) -> None:
        for name in list(self._servers):
            self.stop(name)
