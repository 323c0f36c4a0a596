"""The cluster's object store: every Kubernetes object, its resourceVersion history and watches.

Objects are JSON dicts keyed by (resource, namespace, name); `resource` is the plural store key
from resources.py ("pods", "deployments", "eniconfigs"...), namespace "" for cluster-scoped kinds.
One global resourceVersion counter orders every change; each change is written to an embedded
SQLite file before the call returns, appended to an in-memory event log (for watches that resume
from a version) and offered to the open watches and subscriptions.

The store is the registry a real API server has behind its REST layer: it sets system metadata
(uid, creationTimestamp, resourceVersion, generation), applies defaults and validation, performs
graceful deletion of pods and ownerReference garbage collection. The HTTP layer (apiserver.py) and
in-process controllers call the same methods.

Deletion in short:
- `delete()` on a bound pod (spec.nodeName set, not finished) sets `deletionTimestamp` (now +
  grace) and `deletionGracePeriodSeconds` and keeps the pod: the kubelet stops it and then calls
  `finalize_delete()` (a real kubelet's DELETE with grace 0). `grace_period=0` removes at once.
  `expire_graceful()` finalizes pods whose grace has run out, for labs without a kubelet.
- Objects with `metadata.finalizers` stay (with deletionTimestamp) until an update empties them.
- When an object is removed, its dependents (ownerReferences by uid) are deleted in the
  background policy's order (owner first, then dependents, pods gracefully); "Orphan" strips the
  references instead, "Foreground" deletes dependents before the owner.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from . import defaults, validation
from .errors import ApiError, already_exists, bad_request, conflict, forbidden, gone, not_found
from .resources import BY_PLURAL, ResourceType, resource as resource_type
from .selectors import FieldSelector, LabelSelector, parse_fields, parse_labels
from .timefmt import parse_rfc3339, rfc3339
from .watch import Subscription, Watch, WatchEvent

INITIAL_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
PROTECTED_NAMESPACES = ("default", "kube-public", "kube-system")
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Key = tuple[str, str]          # (namespace, name) inside one resource


def clone(obj: Any) -> Any:
    """Deep copy of JSON data (faster than copy.deepcopy for dicts/lists/scalars)."""
    if isinstance(obj, dict):
        return {k: clone(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [clone(v) for v in obj]
    return obj


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


@dataclass(frozen=True)
class DeleteResult:
    """What DELETE did: `object` is the last state; `finished` False while deletion is pending."""

    object: dict[str, Any]
    finished: bool


class Store:
    """Thread-safe object store with resourceVersions, watches and SQLite persistence.

    `path` is the SQLite file (None: in memory only). `clock` gives wall-clock seconds for
    timestamps. `rng` (optional) makes uids and generated names reproducible in tests.
    `history` is how many events the watch log keeps; older versions get 410 Gone.
    """

    def __init__(self, path: str | None = None, *, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None, history: int = 10000):
        self._lock = threading.RLock()
        self._clock = clock
        self._rng = rng
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {r: {} for r in BY_PLURAL}
        self._dependents: dict[str, set[tuple[str, str, str]]] = {}
        self._uids: dict[str, tuple[str, Key]] = {}      # uid -> where the object lives
        self._log: deque[WatchEvent] = deque()
        self._history = history
        self._watches: set[Watch] = set()
        self._subscriptions: list[Subscription] = []
        self._rv = 0
        self._dry = threading.local()
        self._dry.active = False
        self._db = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        self._init_db(bool(path))
        self._floor = self._rv          # every change after this version is in the log
        for ns in INITIAL_NAMESPACES:
            if ("", ns) not in self._objects["namespaces"]:
                self.create("namespaces", {"metadata": {"name": ns}})

    # --- persistence -----------------------------------------------------------------------

    def _init_db(self, on_disk: bool) -> None:
        db = self._db
        if on_disk:
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS objects (resource TEXT NOT NULL, namespace TEXT NOT NULL, "
                   "name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (resource, namespace, name))")
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = db.execute("SELECT value FROM meta WHERE key='resourceVersion'").fetchone()
        self._rv = int(row[0]) if row else 0
        for res, ns, name, body in db.execute("SELECT resource, namespace, name, body FROM objects"):
            if res in self._objects:
                obj = json.loads(body)
                self._objects[res][(ns, name)] = obj
                self._index_owners(res, None, obj)
                self._uids[obj["metadata"]["uid"]] = (res, (ns, name))

    def _persist(self, rv: int, res: str, key: Key, obj: dict[str, Any] | None) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if obj is None:
                db.execute("DELETE FROM objects WHERE resource=? AND namespace=? AND name=?", (res, *key))
            else:
                db.execute("INSERT OR REPLACE INTO objects VALUES (?,?,?,?)",
                           (res, key[0], key[1], json.dumps(obj, separators=(",", ":"))))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('resourceVersion', ?)", (str(rv),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Stop subscriptions, end watches and close the database."""
        for sub in list(self._subscriptions):
            sub.close()
        with self._lock:
            for w in list(self._watches):
                w.close()
            self._db.close()

    # --- small helpers ---------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The version of the latest change (what a list returns as metadata.resourceVersion)."""
        return self._rv

    @contextlib.contextmanager
    def _dry_run(self, active: bool) -> Iterator[None]:
        """While active (this thread, under the lock), _commit changes nothing and publishes nothing."""
        before = getattr(self._dry, "active", False)
        self._dry.active = before or active
        try:
            yield
        finally:
            self._dry.active = before

    def _now(self) -> str:
        return rfc3339(self._clock())

    def _uid(self) -> str:
        if self._rng is None:
            return str(uuid.uuid4())
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _suffix(self) -> str:
        rng = self._rng or random.SystemRandom()
        return "".join(rng.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5))

    @staticmethod
    def _rt(resource: str) -> ResourceType:
        try:
            return resource_type(resource)
        except KeyError as exc:
            raise bad_request(str(exc)) from None

    @staticmethod
    def _key(rt: ResourceType, namespace: str | None, name: str) -> Key:
        return ((namespace or "") if rt.namespaced else "", name)

    def _index_owners(self, res: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        for obj, add in ((old, False), (new, True)):
            if not obj:
                continue
            meta = obj.get("metadata") or {}
            entry = (res, meta.get("namespace") or "", meta.get("name") or "")
            for ref in meta.get("ownerReferences") or []:
                uid = ref.get("uid") if isinstance(ref, dict) else None
                if not uid:
                    continue
                deps = self._dependents.setdefault(uid, set())
                if add:
                    deps.add(entry)
                else:
                    deps.discard(entry)
                    if not deps:
                        del self._dependents[uid]

    def _commit(self, res: str, key: Key, type_: str, new: dict[str, Any] | None,
                old: dict[str, Any] | None) -> dict[str, Any]:
        """Give the change the next version, make it durable, then publish it.

        `new` is the state to store (None removes); for a removal `old` is the last state to
        publish in the DELETED event."""
        if getattr(self._dry, "active", False):
            return new if new is not None else clone(old)   # type: ignore[return-value]
        rv = self._rv + 1
        stored = self._objects[res].get(key)
        snapshot = new if new is not None else clone(old)
        assert snapshot is not None
        _meta(snapshot)["resourceVersion"] = str(rv)
        self._persist(rv, res, key, new)
        self._rv = rv
        if new is None:
            self._objects[res].pop(key, None)
            if stored is not None:
                self._uids.pop(stored["metadata"].get("uid", ""), None)
        else:
            self._objects[res][key] = new
            self._uids[new["metadata"]["uid"]] = (res, key)
        self._index_owners(res, stored, new)
        ev = WatchEvent(type_, res, snapshot, stored, rv)
        self._log.append(ev)
        while len(self._log) > self._history:
            self._floor = self._log.popleft().rv
        for w in list(self._watches):
            w.offer(ev)
        return snapshot

    # --- reads -----------------------------------------------------------------------------

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        """A copy of the object; 404 ApiError if absent."""
        rt = self._rt(resource)
        with self._lock:
            obj = self._objects[resource].get(self._key(rt, namespace, name))
            if obj is None:
                raise not_found(rt.plural, rt.group, name)
            return clone(obj)

    def try_get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.get(resource, namespace, name)
        except ApiError:
            return None

    def list(self, resource: str, namespace: str | None = None, *,
             labels: str | LabelSelector | None = None,
             fields: str | FieldSelector | None = None) -> tuple[list[dict[str, Any]], int]:
        """Copies of the matching objects ordered by namespace then name, and the list's version."""
        rt = self._rt(resource)
        lsel = labels if isinstance(labels, LabelSelector) else parse_labels(labels)
        fsel = fields if isinstance(fields, FieldSelector) else parse_fields(fields, resource)
        with self._lock:
            items = [clone(o) for o in self._select(rt, namespace, lsel, fsel)]
            return items, self._rv

    def _select(self, rt: ResourceType, namespace: str | None, lsel: LabelSelector,
                fsel: FieldSelector) -> list[dict[str, Any]]:
        objs = self._objects[rt.plural]
        ns = (namespace or None) if rt.namespaced else None
        name = fsel.exact_name()
        if name is not None and ns is not None:
            one = objs.get((ns, name))
            candidates = [((ns, name), one)] if one is not None else []
        else:
            candidates = sorted(objs.items())
        out = []
        for (ons, _), obj in candidates:
            if ns is not None and ons != ns:
                continue
            if lsel.matches(obj["metadata"].get("labels")) and fsel.matches(obj):
                out.append(obj)
        return out

    # --- create ----------------------------------------------------------------------------

    def create(self, resource: str, obj: dict[str, Any], *, namespace: str | None = None,
               dry_run: bool = False) -> dict[str, Any]:
        """Store a new object (a copy of `obj`) and return it as stored.

        `namespace` defaults to obj.metadata.namespace (then "default"); metadata.generateName
        works as on a real server. Raises 409 AlreadyExists, 422 Invalid, 404 for a missing
        namespace, 400 for a body of another kind. `dry_run`: every check, nothing written."""
        rt = self._rt(resource)
        new = clone(obj)
        if not isinstance(new, dict):
            raise bad_request("the body of the request must be a JSON object")
        self._check_type(rt, new)
        meta = _meta(new)
        body_ns = meta.get("namespace")
        if rt.namespaced:
            if namespace and body_ns and body_ns != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace "
                                  "sent on the request")
            meta["namespace"] = namespace or body_ns or "default"
        else:
            meta.pop("namespace", None)
        with self._lock, self._dry_run(dry_run):
            if not meta.get("name") and meta.get("generateName"):
                for _ in range(16):
                    candidate = str(meta["generateName"]) + self._suffix()
                    if self._key(rt, meta.get("namespace"), candidate) not in self._objects[resource]:
                        meta["name"] = candidate
                        break
            self._system_fields_for_create(rt, new)
            if rt.plural == "services":
                self._allocate_cluster_ip(new)
            defaults.apply(rt.kind, new)
            validation.validate(rt, new)
            if rt.namespaced:
                self._check_namespace(rt, meta["namespace"], meta["name"])
            key = self._key(rt, meta.get("namespace"), meta["name"])
            if key in self._objects[resource]:
                raise already_exists(rt.plural, rt.group, meta["name"])
            return clone(self._commit(resource, key, "ADDED", new, None))

    @staticmethod
    def _check_type(rt: ResourceType, obj: dict[str, Any]) -> None:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind and kind != rt.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        if api_version and api_version != rt.api_version:
            raise bad_request(f"the API version in the data ({api_version}) does not match the expected "
                              f"API version ({rt.api_version})")
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version

    def _system_fields_for_create(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "managedFields", "selfLink"):
            meta.pop(key, None)
        meta["uid"] = self._uid()
        meta["creationTimestamp"] = self._now()
        if rt.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.plural == "namespaces" and isinstance(meta.get("name"), str):
            meta.setdefault("labels", {})
            if isinstance(meta["labels"], dict):
                meta["labels"]["kubernetes.io/metadata.name"] = meta["name"]

    def _allocate_cluster_ip(self, svc: dict[str, Any]) -> None:
        spec = svc.setdefault("spec", {})
        if not isinstance(spec, dict) or spec.get("type") == "ExternalName" or spec.get("clusterIP"):
            return
        used = ((o.get("spec") or {}).get("clusterIP") for o in self._objects["services"].values())
        spec["clusterIP"] = defaults.next_cluster_ip(ip for ip in used if ip)

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns = self._objects["namespaces"].get(("", namespace))
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise forbidden(f'{rt.qualified} "{name}" is forbidden: unable to create new content in '
                            f"namespace {namespace} because it is being terminated",
                            {"name": name, "group": rt.group, "kind": rt.plural})

    # --- update ----------------------------------------------------------------------------

    def update(self, resource: str, obj: dict[str, Any], *, namespace: str | None = None,
               part: str = "all", dry_run: bool = False) -> dict[str, Any]:
        """Replace an object (PUT). `part` says what the caller may change:

        - "all": everything but system metadata (in-process controllers);
        - "main": as PUT on the resource: status is kept for kinds with a status subresource;
        - "status": as PUT on .../status: only status changes.
        A metadata.resourceVersion in `obj` must equal the stored one (409 Conflict otherwise)."""
        rt = self._rt(resource)
        meta = (obj or {}).get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise bad_request("name is required in metadata")
        ns = namespace if namespace is not None else meta.get("namespace")
        if rt.namespaced and namespace and meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on "
                              "the request")
        body = clone(obj)
        return self.mutate(resource, ns, name, lambda _cur: body, part=part, dry_run=dry_run)

    def update_status(self, resource: str, obj: dict[str, Any], *, namespace: str | None = None) -> dict[str, Any]:
        """Replace only the status (PUT .../status)."""
        return self.update(resource, obj, namespace=namespace, part="status")

    def mutate(self, resource: str, namespace: str | None, name: str,
               fn: Callable[[dict[str, Any]], dict[str, Any] | None], *, part: str = "all",
               dry_run: bool = False) -> dict[str, Any]:
        """Atomic read-modify-write: `fn` gets a copy of the current object and returns the new one
        (or changes it in place and returns None). Runs under the store lock: keep it short and
        do not wait on other threads in it. A no-op change writes nothing and keeps the version."""
        rt = self._rt(resource)
        with self._lock, self._dry_run(dry_run):
            key = self._key(rt, namespace, name)
            old = self._objects[resource].get(key)
            if old is None:
                raise not_found(rt.plural, rt.group, name)
            draft = clone(old)
            result = fn(draft)
            new = draft if result is None else result
            if not isinstance(new, dict):
                raise bad_request("the result of the update is not a JSON object")
            return clone(self._replace(rt, key, old, new, part))

    def _replace(self, rt: ResourceType, key: Key, old: dict[str, Any], new: dict[str, Any],
                 part: str) -> dict[str, Any]:
        self._check_type(rt, new)
        meta = _meta(new)
        old_meta = old["metadata"]
        if meta.get("name") not in (None, old_meta["name"]):
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the "
                              f"URL ({old_meta['name']})")
        rv = meta.get("resourceVersion")
        if rv not in (None, "") and str(rv) != old_meta["resourceVersion"]:
            raise conflict(rt.plural, rt.group, old_meta["name"])
        uid = meta.get("uid")
        if uid not in (None, "") and uid != old_meta["uid"]:
            raise conflict(rt.plural, rt.group, old_meta["name"],
                           f"Precondition failed: UID in precondition: {uid}, UID in object meta: {old_meta['uid']}")
        if part == "status":
            status = new.get("status")
            new = clone(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            meta = new["metadata"]
        elif part == "main" and rt.has_status:
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        for k in ("name", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if k in old_meta:
                meta[k] = old_meta[k]
            else:
                meta.pop(k, None)
        if rt.namespaced:
            meta["namespace"] = old_meta["namespace"]
        else:
            meta.pop("namespace", None)
        meta.pop("managedFields", None)
        meta.pop("selfLink", None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if rt.tracks_generation:
            gen = old_meta.get("generation", 1)
            meta["generation"] = gen + 1 if new.get("spec") != old.get("spec") else gen
        if rt.plural == "namespaces":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = old_meta["name"]
        defaults.apply(rt.kind, new)
        if part != "status":
            validation.validate(rt, new, old)
            if rt.plural == "services":
                self._allocate_cluster_ip(new)
        if new == old:
            return old
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and (
                rt.plural != "pods" or meta.get("deletionGracePeriodSeconds") == 0):
            return self._remove(rt, key, new, "Background")
        return self._commit(rt.plural, key, "MODIFIED", new, old)

    def patch(self, resource: str, namespace: str | None, name: str, body: Any, patch_type: str = "merge",
              *, part: str = "all", dry_run: bool = False) -> dict[str, Any]:
        """Apply a patch ("merge", "strategic", "json"; see patch.py) atomically."""
        from .patch import apply_patch
        kind = self._rt(resource).kind
        return self.mutate(resource, namespace, name, lambda cur: apply_patch(cur, body, patch_type, kind),
                           part=part, dry_run=dry_run)

    # --- delete ----------------------------------------------------------------------------

    def delete(self, resource: str, namespace: str | None, name: str, *, grace_period: int | None = None,
               propagation: str | None = None, precondition_uid: str | None = None,
               precondition_rv: str | None = None, dry_run: bool = False) -> DeleteResult:
        """Delete (DELETE): pods bound to a node are deleted gracefully, objects with finalizers wait
        for them; dependents are garbage collected per `propagation` (Background by default)."""
        rt = self._rt(resource)
        with self._lock, self._dry_run(dry_run):
            key = self._key(rt, namespace, name)
            obj = self._objects[resource].get(key)
            if obj is None:
                raise not_found(rt.plural, rt.group, name)
            meta = obj["metadata"]
            if precondition_uid and precondition_uid != meta["uid"]:
                raise conflict(rt.plural, rt.group, name, f"Precondition failed: UID in precondition: "
                               f"{precondition_uid}, UID in object meta: {meta['uid']}")
            if precondition_rv and precondition_rv != meta["resourceVersion"]:
                raise conflict(rt.plural, rt.group, name)
            if rt.plural == "namespaces" and name in PROTECTED_NAMESPACES:
                raise forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                {"name": name, "kind": "namespaces"})
            return self._delete(rt, key, grace_period, propagation or "Background")

    def _grace(self, rt: ResourceType, obj: dict[str, Any], requested: int | None) -> int:
        if rt.plural != "pods":
            return 0
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return max(0, int(requested))
        return int(spec.get("terminationGracePeriodSeconds", 30))

    def _delete(self, rt: ResourceType, key: Key, grace_period: int | None, propagation: str) -> DeleteResult:
        obj = self._objects[rt.plural][key]
        meta = obj["metadata"]
        grace = self._grace(rt, obj, grace_period)
        if propagation == "Orphan":
            self._orphan(meta["uid"])
        if meta.get("deletionTimestamp"):
            # already terminating: a shorter grace period (0 = now) takes over
            current = meta.get("deletionGracePeriodSeconds")
            if grace == 0 and not meta.get("finalizers"):
                return DeleteResult(clone(self._remove(rt, key, obj, propagation)), True)
            if current is not None and grace < current:
                new = clone(obj)
                new["metadata"]["deletionGracePeriodSeconds"] = grace
                new["metadata"]["deletionTimestamp"] = rfc3339(self._clock() + grace)
                obj = self._commit(rt.plural, key, "MODIFIED", new, obj)
            return DeleteResult(clone(obj), False)
        if propagation == "Foreground":
            self._collect(meta["uid"], "Foreground")
        if rt.plural == "namespaces":
            return self._delete_namespace(key, obj)
        if grace > 0 or meta.get("finalizers"):
            new = clone(obj)
            new["metadata"]["deletionTimestamp"] = rfc3339(self._clock() + grace)
            new["metadata"]["deletionGracePeriodSeconds"] = grace
            return DeleteResult(clone(self._commit(rt.plural, key, "MODIFIED", new, obj)), False)
        return DeleteResult(clone(self._remove(rt, key, obj, propagation)), True)

    def _remove(self, rt: ResourceType, key: Key, obj: dict[str, Any], propagation: str) -> dict[str, Any]:
        """Remove for good, then collect dependents and finish a terminating namespace."""
        last = self._commit(rt.plural, key, "DELETED", None, obj)
        if propagation != "Orphan":
            self._collect(obj["metadata"]["uid"], "Background")
        if rt.namespaced:
            self._maybe_finish_namespace(key[0])
        return last

    def _dependents_of(self, uid: str) -> list[tuple[str, str, str]]:
        return sorted(self._dependents.get(uid, ()))

    def _collect(self, owner_uid: str, propagation: str) -> None:
        """Garbage-collect the dependents of a removed (or foreground-deleted) owner."""
        for res, ns, name in self._dependents_of(owner_uid):
            rt = BY_PLURAL[res]
            key = (ns, name)
            dep = self._objects[res].get(key)
            if dep is None:
                continue
            refs = dep["metadata"].get("ownerReferences") or []
            others = [r for r in refs if r.get("uid") != owner_uid and self._uid_exists(r.get("uid"))]
            if others:
                new = clone(dep)
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
                self._commit(res, key, "MODIFIED", new, dep)
            elif not dep["metadata"].get("deletionTimestamp") or propagation == "Foreground":
                self._delete(rt, key, None, propagation)

    def _uid_exists(self, uid: str | None) -> bool:
        where = self._uids.get(uid or "")
        if where is None:
            return False
        obj = self._objects[where[0]].get(where[1])
        return obj is not None and not obj["metadata"].get("deletionTimestamp")

    def _orphan(self, owner_uid: str) -> None:
        for res, ns, name in self._dependents_of(owner_uid):
            dep = self._objects[res].get((ns, name))
            if dep is None:
                continue
            new = clone(dep)
            refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid]
            if refs:
                new["metadata"]["ownerReferences"] = refs
            else:
                new["metadata"].pop("ownerReferences", None)
            self._commit(res, (ns, name), "MODIFIED", new, dep)

    def _delete_namespace(self, key: Key, ns_obj: dict[str, Any]) -> DeleteResult:
        name = key[1]
        new = clone(ns_obj)
        new["metadata"]["deletionTimestamp"] = self._now()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new.setdefault("status", {})["phase"] = "Terminating"
        marked = self._commit("namespaces", key, "MODIFIED", new, ns_obj)
        for rt in BY_PLURAL.values():
            if not rt.namespaced:
                continue
            for ckey in [k for k in self._objects[rt.plural] if k[0] == name]:
                if ckey in self._objects[rt.plural]:
                    child = self._objects[rt.plural][ckey]
                    if not child["metadata"].get("deletionTimestamp"):
                        self._delete(rt, ckey, None, "Background")
        if key not in self._objects["namespaces"]:
            return DeleteResult(clone(marked), True)
        if self._namespace_empty(name):
            return DeleteResult(clone(self._commit("namespaces", key, "DELETED", None,
                                                   self._objects["namespaces"][key])), True)
        return DeleteResult(clone(marked), False)

    def _namespace_empty(self, name: str) -> bool:
        return not any(k[0] == name for rt in BY_PLURAL.values() if rt.namespaced
                       for k in self._objects[rt.plural])

    def _maybe_finish_namespace(self, name: str) -> None:
        ns = self._objects["namespaces"].get(("", name))
        if ns and ns["metadata"].get("deletionTimestamp") and self._namespace_empty(name):
            self._commit("namespaces", ("", name), "DELETED", None, ns)

    def finalize_delete(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Finish a pending deletion now (the kubelet's grace-0 DELETE once containers are gone).

        Returns the last state, or None if the object was already gone. Objects that still carry
        finalizers stay until an update removes them."""
        rt = self._rt(resource)
        with self._lock:
            key = self._key(rt, namespace, name)
            obj = self._objects[resource].get(key)
            if obj is None:
                return None
            if obj["metadata"].get("finalizers"):
                new = clone(obj)
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                new["metadata"].setdefault("deletionTimestamp", self._now())
                return clone(self._commit(resource, key, "MODIFIED", new, obj))
            return clone(self._remove(rt, key, obj, "Background"))

    def expire_graceful(self, now: float | None = None) -> list[str]:
        """Finalize pods whose deletionTimestamp has passed (stands in for an absent kubelet).

        Returns `namespace/name` of the pods removed."""
        now = self._clock() if now is None else now
        done = []
        with self._lock:
            for (ns, name), pod in list(self._objects["pods"].items()):
                ts = pod["metadata"].get("deletionTimestamp")
                if ts and parse_rfc3339(ts) <= now:
                    self.finalize_delete("pods", ns, name)
                    done.append(f"{ns}/{name}")
        return done

    def delete_collection(self, resource: str, namespace: str | None = None, *,
                          labels: str | LabelSelector | None = None,
                          fields: str | FieldSelector | None = None,
                          grace_period: int | None = None) -> list[dict[str, Any]]:
        """Delete every match (DELETE on a list path); returns the objects as left by delete()."""
        items, _ = self.list(resource, namespace, labels=labels, fields=fields)
        out = []
        for item in items:
            meta = item["metadata"]
            try:
                out.append(self.delete(resource, meta.get("namespace"), meta["name"],
                                       grace_period=grace_period).object)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return out

    # --- watches and subscriptions ---------------------------------------------------------

    def watch(self, resource: str | None, namespace: str | None = None, *,
              resource_version: str | int | None = None,
              labels: str | LabelSelector | None = None,
              fields: str | FieldSelector | None = None) -> Watch:
        """Open a Watch (resource None: every resource).

        resource_version None/""/"0": synthetic ADDED for every current match, then live changes.
        N: every change after N (410 Gone ApiError if N is older than the log keeps)."""
        if resource is not None:
            self._rt(resource)
        lsel = labels if isinstance(labels, LabelSelector) else parse_labels(labels)
        fsel = fields if isinstance(fields, FieldSelector) else parse_fields(fields, resource or "")
        with self._lock:
            w = Watch(resource, namespace, lsel, fsel, on_close=self._forget_watch)
            if resource_version in (None, "", "0", 0):
                rts = [BY_PLURAL[resource]] if resource else list(BY_PLURAL.values())
                for rt in rts:
                    for obj in self._select(rt, namespace, lsel, fsel):
                        w.push(WatchEvent("ADDED", rt.plural, obj, None,
                                          int(obj["metadata"]["resourceVersion"])))
            else:
                try:
                    since = int(resource_version)
                except (TypeError, ValueError):
                    raise bad_request(f'invalid resource version "{resource_version}"') from None
                if since < self._floor:
                    raise gone(f"too old resource version: {since} ({self._floor + 1})")
                for ev in self._log:
                    if ev.rv > since:
                        w.offer(ev)
            self._watches.add(w)
            return w

    def _forget_watch(self, w: Watch) -> None:
        with self._lock:
            self._watches.discard(w)

    def subscribe(self, callback: Callable[[WatchEvent], None], resource: str | None = None,
                  namespace: str | None = None, *, resource_version: str | int | None = None,
                  labels: str | None = None, fields: str | None = None,
                  on_error: Callable[[BaseException], None] | None = None) -> Subscription:
        """Call `callback(WatchEvent)` on a dedicated thread for each change (controllers).

        Starts with ADDED for current objects unless `resource_version` is given. Close the
        returned Subscription to stop; `wait_idle()` waits until queued events are handled."""
        w = self.watch(resource, namespace, resource_version=resource_version, labels=labels, fields=fields)
        sub = Subscription(w, callback, clone, on_error, name=f"kube-sub-{resource or 'all'}")
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
