"""Label and field selectors: parse the query text, match objects, format spec.selector.

Lists and watches filter with these (kubectl `-l`, `describe`'s involvedObject field selector,
rollout status's metadata.name). A bad selector is a 400 BadRequest (errors.bad_request).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                     r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str                     # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return has and value == self.values[0]
        if self.op == "!=":
            return not has or value != self.values[0]
        if self.op == "in":
            return has and value in self.values
        if self.op == "notin":
            return not has or value not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("gt", "lt") and has:
            try:
                n, bound = int(value or ""), int(self.values[0])
            except ValueError:
                return False
            return n > bound if self.op == "gt" else n < bound
        return False

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return "!" + self.key
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(sorted(self.values))})"
        if self.op in ("gt", "lt"):
            return f"{self.key}{'>' if self.op == 'gt' else '<'}{self.values[0]}"
        return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """AND of requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_TOKEN_RE = re.compile(r"\s*(==|!=|=|\(|\)|,|!|>|<|[^\s=!(),<>]+)")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            break
        if m.group(1):
            out.append(m.group(1))
        pos = m.end()
        if not text[pos:].strip():
            break
    return out


def _check_key(key: str) -> None:
    if not _KEY_RE.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise bad_request(f'unable to parse requirement: invalid label key "{key}": name part must consist '
                          "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                          "alphanumeric character")


def _check_value(value: str) -> None:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise bad_request(f'unable to parse requirement: invalid label value: "{value}": a valid label must be '
                          "an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
                          "start and end with an alphanumeric character")


def parse_labels(text: str | None) -> LabelSelector:
    """`app=x,tier!=db,env in (a,b),!legacy` → LabelSelector; raises 400 ApiError when malformed."""
    if not text or not text.strip():
        return LabelSelector()
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def expect(cond: bool, found: str, wanted: str) -> None:
        if not cond:
            raise bad_request(f"unable to parse requirement: found '{found}', expected: {wanted}")

    while i < len(toks):
        tok = toks[i]
        if tok == "!":
            expect(i + 1 < len(toks), "", "identifier after '!'")
            key = toks[i + 1]
            _check_key(key)
            reqs.append(Requirement(key, "!"))
            i += 2
        else:
            expect(tok not in ("=", "==", "!=", "(", ")", ",", ">", "<"), tok, "!, identifier, or 'end of string'")
            key = tok
            _check_key(key)
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append(Requirement(key, "exists"))
            else:
                op = toks[i]
                i += 1
                if op in ("=", "==", "!=", ">", "<"):
                    value = ""
                    if i < len(toks) and toks[i] not in (",", "(", ")"):
                        value = toks[i]
                        i += 1
                    if op in (">", "<"):
                        expect(value.isdigit(), value, "an integer")
                    else:
                        _check_value(value)
                    name = {"==": "=", ">": "gt", "<": "lt"}.get(op, op)
                    reqs.append(Requirement(key, name, (value,)))
                elif op in ("in", "notin"):
                    expect(i < len(toks) and toks[i] == "(", toks[i] if i < len(toks) else "", "'('")
                    i += 1
                    values: list[str] = []
                    while i < len(toks) and toks[i] != ")":
                        if toks[i] != ",":
                            _check_value(toks[i])
                            values.append(toks[i])
                        i += 1
                    expect(i < len(toks), "end of string", "')'")
                    i += 1
                    reqs.append(Requirement(key, op, tuple(values) or ("",)))
                else:
                    expect(False, op, "'=', '!=', '==', 'in', notin'")
        if i < len(toks):
            expect(toks[i] == ",", toks[i], "',' or 'end of string'")
            i += 1
            expect(i < len(toks), "end of string", "identifier")
    return LabelSelector(tuple(reqs))


def from_label_selector(sel: dict[str, Any] | None) -> LabelSelector:
    """A metav1.LabelSelector object (matchLabels/matchExpressions) as a LabelSelector."""
    if not sel:
        return LabelSelector()
    reqs = [Requirement(k, "=", (str(v),)) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in sel.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            raise bad_request(f"{expr.get('operator')!r} is not a valid label selector operator")
        reqs.append(Requirement(expr.get("key", ""), op, tuple(expr.get("values") or ())))
    reqs.sort(key=lambda r: r.key)
    return LabelSelector(tuple(reqs))


def format_label_selector(sel: dict[str, Any] | None) -> str:
    """spec.selector as kubectl's Selector column shows it (`app=nginx`, `<none>` if empty)."""
    text = str(from_label_selector(sel))
    return text or "<none>"


# --- field selectors -------------------------------------------------------------------------

_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "events": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
               "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    "nodes": ("spec.unschedulable",),
    "namespaces": ("status.phase",),
    "replicasets": ("status.replicas",),
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str          # "=" or "!="
    value: str


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: dict[str, Any]) -> bool:
        for r in self.requirements:
            actual = field_value(obj, r.field)
            if (actual == r.value) != (r.op == "="):
                return False
        return True

    def empty(self) -> bool:
        return not self.requirements

    def exact_name(self) -> str | None:
        """The name a `metadata.name=X` requirement pins, for a direct store lookup."""
        for r in self.requirements:
            if r.field == "metadata.name" and r.op == "=":
                return r.value
        return None


def field_value(obj: dict[str, Any], path: str) -> str:
    """The text a field selector compares: missing → "", booleans → true/false."""
    if path == "source":
        return str((obj.get("source") or {}).get("component", ""))
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, i = [], "", 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur += text[i:i + 2]
            i += 2
            continue
        if c == sep:
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur)
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_fields(text: str | None, resource: str = "") -> FieldSelector:
    """`metadata.name=x,status.phase!=Running` → FieldSelector; 400 on bad syntax or an unsupported
    field for `resource` (the store key, e.g. "pods")."""
    if not text or not text.strip():
        return FieldSelector()
    reqs = []
    allowed = _COMMON_FIELDS + _FIELDS.get(resource, ())
    for part in _split_unescaped(text, ","):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([^=!]+?)\s*(==|!=|=)(.*)$", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        name, op, value = m.group(1).strip(), m.group(2), _unescape(m.group(3).strip())
        if resource and name not in allowed:
            raise bad_request(f'field label not supported: {name}')
        reqs.append(FieldRequirement(name, "!=" if op == "!=" else "=", value))
    return FieldSelector(tuple(reqs))
