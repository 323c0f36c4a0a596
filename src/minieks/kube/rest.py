"""The REST layer: one HTTP request (already authenticated) → store calls → a response.

Transport-free: the HTTPS front end (apiserver.py) builds a Request, calls `RestApi.handle`, and
writes the Response; watches and exec come back as WatchStream / ExecUpgrade for the front end to
stream on its socket. Paths follow the Kubernetes API (kubectl-wire.md §2-§9).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from . import openapi, resources, tables
from .errors import ApiError, Cause, bad_request, conflict, invalid, method_not_allowed, path_not_found, \
    unsupported_media_type
from .exec_ws import ExecHandler, ExecRequest, choose_protocol
from .http import DISCOVERY_TYPE, TABLE_TYPE, decode_body, discovery_version, first, flag, version_document, \
    wanted_representation
from .patch import PATCH_TYPES, apply_patch
from .resources import ResourceType
from .selectors import format_label_selector, parse_fields, parse_labels
from .store import Store

JSON = "application/json"


@dataclass
class Request:
    method: str
    target: str                      # path?query as received
    headers: dict[str, str]          # lower-cased names
    body: bytes = b""
    path: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path.rstrip("/") or "/"
        self.query = parse_qs(parts.query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

FOLLOW_SECONDS = 4 * 3600                  # a followed log ends after this: no stream here is unbounded


@dataclass
class Response:
    code: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class WatchStream:
    """A watch to stream: events of `watch` rendered by `render(event, first)`; `error` (a Status)
    is sent as a single ERROR event instead when the watch could not start (410 Gone)."""

    watch: Any
    render: Callable[[Any, bool], dict[str, Any]]
    content_type: str
    timeout: float
    error: dict[str, Any] | None = None


LogReader = Callable[[], "str | None"]
"""What a container wrote since the previous call (all of it the first time); None once it is gone."""


@dataclass
class LogStream:
    """`kubectl logs -f`: `first` now, then what `read` returns, until the container or client goes."""

    first: str
    read: LogReader
    timeout: float


@dataclass
class ExecUpgrade:
    request: ExecRequest
    protocol: str
    key: str


def _dry(req: Request) -> bool:
    """dryRun=All: run every check and return the result, store nothing (kubectl --dry-run=server)."""
    return "All" in req.query.get("dryRun", [])


def _json(code: int, obj: Any, content_type: str = JSON) -> Response:
    return Response(code, json.dumps(obj, separators=(",", ":")).encode(), content_type)


def status_response(err: ApiError) -> Response:
    return _json(err.code, err.status())


@dataclass(frozen=True)
class Route:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool = False


def _route(group: str, version: str, segs: list[str]) -> Route:
    watch_path = False
    if segs and segs[0] == "watch":
        watch_path, segs = True, segs[1:]
    if not segs:
        raise path_not_found()
    namespace = None
    if len(segs) >= 3 and segs[0] == "namespaces" and segs[2] not in ("status", "finalize"):
        namespace, segs = segs[1], segs[2:]
    rt = resources.lookup(group, version, segs[0])
    if rt is None or len(segs) > 3 or (namespace is not None and not rt.namespaced):
        raise path_not_found()
    name = segs[1] if len(segs) > 1 else None
    sub = segs[2] if len(segs) > 2 else None
    if sub is not None and rt.subresource(sub) is None:
        raise path_not_found()
    if name is not None and rt.namespaced and namespace is None:
        raise path_not_found()
    return Route(rt, namespace, name, sub, watch_path)


class RestApi:
    """Serves the Kubernetes API for one Store."""

    def __init__(self, store: Store, *, version: str, server_address: str = "127.0.0.1:443",
                 exec_handler: ExecHandler | None = None,
                 log_handler: Callable[[str, str, str], LogReader] | None = None,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.version = version_document(version)
        self.server_address = server_address
        self.exec_handler = exec_handler
        self.log_handler = log_handler
        self.clock = clock

    # --- entry point -------------------------------------------------------------------------

    def handle(self, req: Request) -> Response | WatchStream | LogStream | ExecUpgrade:
        try:
            return self._dispatch(req)
        except ApiError as err:
            return status_response(err)

    def _dispatch(self, req: Request) -> Response | WatchStream | LogStream | ExecUpgrade:
        path = req.path
        if path == "/version":
            return _json(200, self.version)
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if path == "/api" or path == "/apis":
            return self._discovery(req, core=path == "/api")
        if path == "/api/v1":
            return _json(200, resources.legacy_resource_list("", "v1"))
        if path.startswith("/openapi/"):
            return self._openapi(path)
        segs = path.strip("/").split("/")
        if segs[0] == "api" and len(segs) >= 2:
            if segs[1] != "v1":
                raise path_not_found()
            return self._resource(req, _route("", "v1", segs[2:]))
        if segs[0] == "apis" and len(segs) >= 2:
            if len(segs) == 2:
                group = resources.legacy_group(segs[1])
                if group is None:
                    raise path_not_found()
                return _json(200, group)
            if len(segs) == 3:
                doc = resources.legacy_resource_list(segs[1], segs[2])
                if doc is None:
                    raise path_not_found()
                return _json(200, doc)
            return self._resource(req, _route(segs[1], segs[2], segs[3:]))
        raise path_not_found()

    def _discovery(self, req: Request, core: bool) -> Response:
        if req.method != "GET":
            raise method_not_allowed()
        v = discovery_version(req.header("accept"))
        if v is not None:
            return _json(200, resources.aggregated(core, v), DISCOVERY_TYPE.format(v=v))
        if core:
            return _json(200, resources.legacy_api(self.server_address))
        return _json(200, resources.legacy_groups())

    @staticmethod
    def _openapi(path: str) -> Response:
        if path == "/openapi/v3":
            return _json(200, openapi.index())
        if path.startswith("/openapi/v3/"):
            gv = openapi.lookup(path[len("/openapi/v3/"):])
            if gv is not None:
                return Response(200, openapi.document(*gv), JSON,
                                {"Cache-Control": "public, immutable", "Etag": f'"{openapi.doc_hash(*gv)}"'})
        raise path_not_found()   # /openapi/v2 included: kubectl handles the 404

    # --- resources -----------------------------------------------------------------------

    def _resource(self, req: Request, r: Route) -> Response | WatchStream | LogStream | ExecUpgrade:
        m = req.method
        if r.subresource == "exec":
            if m not in ("GET", "POST"):
                raise method_not_allowed()
            return self._exec(req, r)
        if r.subresource == "log":
            if m != "GET":
                raise method_not_allowed()
            return self._log(req, r)
        if r.subresource == "scale":
            return self._scale(req, r)
        if r.name is None:
            if m == "GET":
                if r.watch_path or flag(req.query, "watch"):
                    return self._watch(req, r)
                return self._list(req, r)
            if m == "POST":
                return self._create(req, r)
            if m == "DELETE" and "deletecollection" in r.rt.verbs:
                return self._delete_collection(req, r)
            raise method_not_allowed()
        if r.watch_path and m == "GET":
            return self._watch(req, r, name=r.name)
        part = "status" if r.subresource == "status" else "main"
        if r.subresource == "finalize":
            part = "all"
        if m == "GET":
            return self._object_response(req, r.rt, self.store.get(r.rt.plural, r.namespace, r.name), 200)
        if m == "PUT":
            return self._update(req, r, part)
        if m == "PATCH":
            return self._patch(req, r, part)
        if m == "DELETE" and r.subresource is None:
            return self._delete(req, r)
        raise method_not_allowed()

    def _object_response(self, req: Request, rt: ResourceType, obj: dict[str, Any], code: int) -> Response:
        kind, version = wanted_representation(req.header("accept"))
        if kind == "Table":
            include = first(req.query, "includeObject") or "Metadata"
            body = tables.table(rt.plural, [obj], obj["metadata"].get("resourceVersion", ""), self.clock(),
                                include=include, version=version)
            return _json(code, body, TABLE_TYPE.format(v=version))
        if kind == "PartialObjectMetadata":
            return _json(code, {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
                                "metadata": obj["metadata"]})
        return _json(code, obj)

    def _selectors(self, req: Request, rt: ResourceType) -> tuple[Any, Any]:
        return (parse_labels(first(req.query, "labelSelector")),
                parse_fields(first(req.query, "fieldSelector"), rt.plural))

    def _list(self, req: Request, r: Route) -> Response:
        labels, fields = self._selectors(req, r.rt)
        items, rv = self.store.list(r.rt.plural, r.namespace, labels=labels, fields=fields)
        kind, version = wanted_representation(req.header("accept"))
        if kind == "Table":
            include = first(req.query, "includeObject") or "Metadata"
            body = tables.table(r.rt.plural, items, rv, self.clock(), include=include, version=version)
            return _json(200, body, TABLE_TYPE.format(v=version))
        if kind == "PartialObjectMetadata":
            return _json(200, {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{version}",
                               "metadata": {"resourceVersion": str(rv)},
                               "items": [{"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
                                          "metadata": i["metadata"]} for i in items]})
        return _json(200, {"kind": r.rt.list_kind, "apiVersion": r.rt.api_version,
                           "metadata": {"resourceVersion": str(rv)}, "items": items})

    def _watch(self, req: Request, r: Route, name: str | None = None) -> WatchStream:
        labels, fields = self._selectors(req, r.rt)
        if name is not None:
            fields = parse_fields(f"metadata.name={name}", r.rt.plural)
        kind, version = wanted_representation(req.header("accept"))
        timeout = float(first(req.query, "timeoutSeconds") or 1800)
        include = first(req.query, "includeObject") or "Metadata"
        rt = r.rt
        content_type = TABLE_TYPE.format(v=version) if kind == "Table" else JSON

        def render(ev: Any, first_event: bool) -> dict[str, Any]:
            obj = ev.object
            if kind == "Table":
                obj = tables.table(rt.plural, [obj], ev.rv, self.clock(), include=include,
                                   with_columns=first_event, version=version)
            elif kind == "PartialObjectMetadata":
                obj = {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
                       "metadata": obj["metadata"]}
            return {"type": ev.type, "object": obj}

        try:
            w = self.store.watch(rt.plural, r.namespace, resource_version=first(req.query, "resourceVersion"),
                                 labels=labels, fields=fields)
        except ApiError as err:
            if err.code != 410:
                raise
            return WatchStream(None, render, content_type, timeout, error=err.status())
        return WatchStream(w, render, content_type, timeout)

    def _body(self, req: Request) -> Any:
        return decode_body(req.body, req.header("content-type"))

    def _create(self, req: Request, r: Route) -> Response:
        body = self._body(req)
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        obj = self.store.create(r.rt.plural, body, namespace=r.namespace, dry_run=_dry(req))
        return _json(201, obj)

    def _update(self, req: Request, r: Route, part: str) -> Response:
        body = self._body(req)
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        assert r.name is not None
        name = (body.get("metadata") or {}).get("name")
        if name and name != r.name:
            raise bad_request(f"the name of the object ({name}) does not match the name on the URL ({r.name})")
        body.setdefault("metadata", {})["name"] = r.name
        obj = self.store.update(r.rt.plural, body, namespace=r.namespace, part=part, dry_run=_dry(req))
        return _json(200, obj)

    def _patch_type(self, req: Request) -> str:
        ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
        if ctype not in PATCH_TYPES:
            raise unsupported_media_type(ctype)
        return PATCH_TYPES[ctype]

    def _patch(self, req: Request, r: Route, part: str) -> Response:
        patch_type = self._patch_type(req)
        body = self._body(req)
        assert r.name is not None
        if patch_type == "apply" and part == "main":
            if self.store.try_get(r.rt.plural, r.namespace, r.name) is None:
                if not isinstance(body, dict):
                    raise bad_request("apply patch must be an object")
                body.setdefault("metadata", {})["name"] = r.name
                return _json(201, self.store.create(r.rt.plural, body, namespace=r.namespace, dry_run=_dry(req)))
        obj = self.store.mutate(r.rt.plural, r.namespace, r.name,
                                lambda cur: apply_patch(cur, body, patch_type, r.rt.kind), part=part,
                                dry_run=_dry(req))
        return _json(200, obj)

    def _delete(self, req: Request, r: Route) -> Response:
        opts = self._body(req) or {}
        if not isinstance(opts, dict):
            raise bad_request("DeleteOptions must be a JSON object")
        grace = opts.get("gracePeriodSeconds", first(req.query, "gracePeriodSeconds"))
        propagation = opts.get("propagationPolicy") or first(req.query, "propagationPolicy")
        if opts.get("orphanDependents") is True:
            propagation = "Orphan"
        pre = opts.get("preconditions") or {}
        assert r.name is not None
        result = self.store.delete(r.rt.plural, r.namespace, r.name,
                                   grace_period=int(grace) if grace is not None else None,
                                   propagation=propagation, precondition_uid=pre.get("uid"),
                                   precondition_rv=pre.get("resourceVersion"),
                                   dry_run=_dry(req) or "All" in (opts.get("dryRun") or []))
        if not result.finished:
            return _json(200, result.object)
        details = {"name": r.name}
        if r.rt.group:
            details["group"] = r.rt.group
        details.update(kind=r.rt.plural, uid=result.object["metadata"].get("uid", ""))
        return _json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                           "details": details})

    def _delete_collection(self, req: Request, r: Route) -> Response:
        labels, fields = self._selectors(req, r.rt)
        opts = self._body(req) or {}
        grace = opts.get("gracePeriodSeconds") if isinstance(opts, dict) else None
        items = self.store.delete_collection(r.rt.plural, r.namespace, labels=labels, fields=fields,
                                             grace_period=grace)
        return _json(200, {"kind": r.rt.list_kind, "apiVersion": r.rt.api_version,
                           "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": items})

    # --- scale -------------------------------------------------------------------------------

    @staticmethod
    def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        selector = spec.get("selector")
        text = format_label_selector(selector) if selector else ""
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                             if k in meta},
                "spec": {"replicas": int(spec.get("replicas", 0))},
                "status": {"replicas": int(status.get("replicas", 0) or 0),
                           "selector": "" if text == "<none>" else text}}

    def _scale(self, req: Request, r: Route) -> Response:
        rt, store = r.rt, self.store
        assert r.name is not None
        if req.method == "GET":
            return _json(200, self._scale_of(store.get(rt.plural, r.namespace, r.name)))
        if req.method not in ("PUT", "PATCH"):
            raise method_not_allowed()
        body = self._body(req)
        patch_type = self._patch_type(req) if req.method == "PATCH" else ""

        def change(cur: dict[str, Any]) -> dict[str, Any]:
            scale = self._scale_of(cur)
            if req.method == "PUT":
                if not isinstance(body, dict):
                    raise bad_request("the body of the request must be a Scale object")
                rv = (body.get("metadata") or {}).get("resourceVersion")
                if rv and rv != cur["metadata"]["resourceVersion"]:
                    raise conflict(rt.plural, rt.group, r.name or "")
                new = body
            else:
                new = apply_patch(scale, body, patch_type, "Scale")
            replicas = (new.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise invalid("Scale", "autoscaling", r.name or "", [Cause(
                    "FieldValueInvalid", f"Invalid value: {replicas}: must be greater than or equal to 0",
                    "spec.replicas")])
            cur.setdefault("spec", {})["replicas"] = replicas
            return cur

        obj = store.mutate(rt.plural, r.namespace, r.name, change, part="all", dry_run=_dry(req))
        return _json(200, self._scale_of(obj))

    # --- pods: exec and log ------------------------------------------------------------------

    def _exec(self, req: Request, r: Route) -> ExecUpgrade:
        assert r.name is not None
        pod = self.store.get("pods", r.namespace, r.name)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = first(req.query, "container") or (containers[0] if containers else "")
        if container not in containers:
            raise bad_request(f"container {container} is not valid for pod {r.name}")
        command = req.query.get("command") or []
        if not command:
            raise bad_request("you must specify at least 1 command")
        if (req.header("upgrade") or "").lower() != "websocket" or req.method != "GET":
            raise bad_request("Upgrade request required: this server speaks exec over WebSocket "
                              "(v5.channel.k8s.io, v4.channel.k8s.io) only")
        key = req.header("sec-websocket-key")
        protocol = choose_protocol(req.header("sec-websocket-protocol"))
        if not key or protocol is None:
            raise bad_request("unable to upgrade connection: no supported subprotocol "
                              "(v5.channel.k8s.io, v4.channel.k8s.io)")
        er = ExecRequest(r.namespace or "", r.name, container, list(command), flag(req.query, "stdin"),
                         flag(req.query, "stdout"), flag(req.query, "stderr"), flag(req.query, "tty"))
        return ExecUpgrade(er, protocol, key)

    def _log(self, req: Request, r: Route) -> Response | LogStream:
        assert r.name is not None
        pod = self.store.get("pods", r.namespace, r.name)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = first(req.query, "container")
        if container and container not in containers:
            raise bad_request(f"container {container} is not valid for pod {r.name}")
        if not container and len(containers) > 1:
            raise bad_request(f"a container name must be specified for pod {r.name}, choose one of: "
                              f"[{' '.join(containers)}]")
        container = container or (containers[0] if containers else "")
        if flag(req.query, "previous"):
            raise bad_request(f'previous terminated container "{container}" in pod "{r.name}" not found')
        tail = first(req.query, "tailLines")
        try:
            lines = int(tail) if tail is not None else -1
        except ValueError:
            raise bad_request(f'tailLines: Invalid value: "{tail}": must be an integer') from None
        read = self.log_handler(r.namespace or "", r.name, container) if self.log_handler else (lambda: None)
        text = read() or ""
        if lines >= 0:
            kept = text.splitlines(keepends=True)
            text = "".join(kept[len(kept) - lines:] if lines else [])
        if flag(req.query, "follow"):
            return LogStream(text, read, timeout=FOLLOW_SECONDS)
        return Response(200, text.encode(), "text/plain")

