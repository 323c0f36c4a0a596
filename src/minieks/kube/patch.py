"""PATCH bodies applied to stored objects: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
strategic merge patch for built-in kinds, and server-side apply treated as a strategic merge.

kubectl's client-side apply sends strategic merge patches with `$setElementOrder/...` directives
and relies on lists of containers, ports, env... being merged by key (kubectl-wire.md §5.2); the
merge keys below are those of the built-in kinds' Go types (patchMergeKey/patchStrategy tags).
Lists without a merge key (tolerations, args, command) are replaced whole.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer

from .errors import ApiError, bad_request

# list field name -> merge key (patchStrategy "merge"); "ports" depends on where it is
_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "imagePullSecrets": "name", "hostAliases": "ip", "conditions": "type", "ownerReferences": "uid",
    "addresses": "type", "taints": "key", "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name", "podIPs": "ip", "hostIPs": "ip",
}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_PRIMITIVE_MERGE = ("finalizers",)          # primitive lists merged as sets
_DELETE = object()

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply",
}


def merge_key(path: tuple[str, ...]) -> str | None:
    """The strategic merge key of the list at `path` (map keys from the root), or None if atomic."""
    if not path:
        return None
    name = path[-1]
    if name == "ports":
        return "containerPort" if any(p in _CONTAINER_LISTS for p in path[:-1]) else "port"
    return _MERGE_KEYS.get(name)


# --- RFC 7386 ------------------------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    """JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return _copy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- RFC 6902 ------------------------------------------------------------------------------

def json_patch(target: Any, operations: Any) -> Any:
    """JSON patch; a malformed patch is 400, one that does not apply is 422."""
    if not isinstance(operations, list):
        raise bad_request("json patch must be a JSON array of operations")
    try:
        patch = jsonpatch.JsonPatch(operations)
        return patch.apply(target)
    except (jsonpatch.InvalidJsonPatch, TypeError) as exc:
        raise bad_request(f"invalid JSON patch: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {exc}")


# --- strategic merge patch -----------------------------------------------------------------

def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _fresh(value: Any, path: tuple[str, ...]) -> Any:
    """A patch value that has nothing to merge with: directives consumed, nulls dropped."""
    if isinstance(value, dict):
        merged = _smp_map({}, value, path)
        return {} if merged is _DELETE else merged
    if isinstance(value, list):
        return _smp_list(None, value, path)
    return value


def _smp_map(orig: dict[str, Any] | None, patch: dict[str, Any], path: tuple[str, ...]) -> Any:
    patch = dict(patch)
    directive = patch.pop("$patch", None)
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _fresh(patch, path)
    if directive not in (None, "merge"):
        raise bad_request(f"Unknown patch type: {directive!r}")
    retain = patch.pop("$retainKeys", None)
    orders: dict[str, list[Any]] = {}
    removals: dict[str, list[Any]] = {}
    for key in list(patch):
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = patch.pop(key)
        elif key.startswith("$deleteFromPrimitiveList/"):
            removals[key.split("/", 1)[1]] = patch.pop(key)
        elif key.startswith("$"):
            raise bad_request(f"unknown strategic merge patch directive {key!r}")
    result = dict(orig) if isinstance(orig, dict) else {}
    for key, value in patch.items():
        sub = path + (key,)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            merged = _smp_map(current if isinstance(current, dict) else None, value, sub)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            current = result.get(key)
            result[key] = _smp_list(current if isinstance(current, list) else None, value, sub)
        else:
            result[key] = value
    for key, gone_items in removals.items():
        if isinstance(result.get(key), list):
            result[key] = [x for x in result[key] if x not in gone_items]
    for key, order in orders.items():
        if isinstance(result.get(key), list) and isinstance(order, list):
            result[key] = _reorder(result[key], order, merge_key(path + (key,)))
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _smp_list(orig: list[Any] | None, patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    key = merge_key(path)
    if key is None:
        if path and path[-1] in _PRIMITIVE_MERGE:
            result = list(orig or [])
            result.extend(x for x in patch if x not in result)
            return result
        return [_fresh(v, path) for v in patch]
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch):
        return [_fresh(e, path) for e in patch if not (isinstance(e, dict) and e.get("$patch") == "replace")]
    result = list(orig or [])
    for element in patch:
        if not isinstance(element, dict):
            if element not in result:
                result.append(element)
            continue
        wanted = element.get(key)
        matches = [i for i, item in enumerate(result)
                   if isinstance(item, dict) and wanted is not None and item.get(key) == wanted]
        if element.get("$patch") == "delete":
            result = [item for i, item in enumerate(result) if i not in matches]
            continue
        if not matches:
            fresh = _fresh(element, path)
            result.append(fresh)
            continue
        merged = _smp_map(result[matches[0]], element, path)
        if merged is _DELETE:
            result.pop(matches[0])
        else:
            result[matches[0]] = merged
    return result


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """`$setElementOrder`: listed elements first, in the listed order; others keep their order."""
    def ident(x: Any) -> Any:
        return x.get(key) if key and isinstance(x, dict) else x

    rank = {}
    for i, o in enumerate(order):
        rank.setdefault(repr(ident(o)), i)
    listed = sorted((x for x in items if repr(ident(x)) in rank), key=lambda x: rank[repr(ident(x))])
    rest = [x for x in items if repr(ident(x)) not in rank]
    return listed + rest


def strategic_merge_patch(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Strategic merge patch for built-in kinds (directives, merge keys, null removes)."""
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch must be a JSON object")
    merged = _smp_map(original, patch, ())
    if merged is _DELETE:
        raise bad_request("a strategic merge patch cannot delete the whole object")
    return merged


def server_side_apply(current: dict[str, Any], applied: Any) -> dict[str, Any]:
    """Server-side apply without managedFields: the applied configuration merged like a strategic
    merge patch (lists by merge key), fields it omits are left as they are."""
    if not isinstance(applied, dict):
        raise bad_request("apply patch must be an object")
    applied = dict(applied)
    meta = dict(applied.get("metadata") or {})
    for k in ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"):
        meta.pop(k, None)
    applied["metadata"] = meta
    return strategic_merge_patch(current, applied)


def apply_patch(current: dict[str, Any], body: Any, patch_type: str, kind: str = "") -> dict[str, Any]:
    """Apply `body` of `patch_type` ("merge", "strategic", "json", "apply" or the media type)."""
    kind_of_patch = PATCH_TYPES.get(patch_type, patch_type)
    if kind_of_patch == "merge":
        result = merge_patch(current, body)
    elif kind_of_patch == "strategic":
        result = strategic_merge_patch(current, body)
    elif kind_of_patch == "json":
        result = json_patch(current, body)
    elif kind_of_patch == "apply":
        result = server_side_apply(current, body)
    else:
        raise bad_request(f"unknown patch type {patch_type!r}")
    if not isinstance(result, dict):
        raise bad_request("the patched object is not a JSON object")
    return result
