"""The EC2 Query protocol codec: form parameters in, XML out, driven by botocore's EC2 model.

The HTTP server (server.py) hands this module the flat `Name.1.Value` parameters of a request
and gets back the boto3-style input dict for `Ec2Service.call`; it hands back the service's
output dict (or an Ec2Error) and gets EC2's XML document. Nothing here is written per action:
every name, nesting and type comes from botocore's `ec2` service model, compiled once per
operation into small plans (decode tries and render closures) so a call costs little.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import threading
import uuid
from typing import Any, Callable, Iterable, Mapping

import botocore.session
from botocore.model import ListShape, OperationModel, ServiceModel, Shape, StructureShape

from minieks.ec2.errors import Ec2Error

XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'

# Request keys that carry the protocol or a signature, never an operation parameter.
ENVELOPE_KEYS = frozenset({
    "Action", "Version", "AWSAccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
    "Timestamp", "Expires", "SecurityToken", "X-Amz-Algorithm", "X-Amz-Credential",
    "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature",
    "X-Amz-Security-Token",
})

Writer = Callable[[str], None]
Render = Callable[[Any, Writer], None]


@functools.lru_cache(maxsize=1)
def ec2_model() -> ServiceModel:
    """botocore's EC2 model; loading it takes about a second, so do it once per process."""
    return botocore.session.get_session().get_service_model("ec2")


def unknown_parameter(name: str) -> Ec2Error:
    return Ec2Error("UnknownParameter", f"The parameter {name} is not recognized")


def invalid_action(action: str) -> Ec2Error:
    return Ec2Error("InvalidAction", f"The action {action} is not valid for this web service.")


# ---------------------------------------------------------------------------------------------
# Decoding: flat query parameters -> input dict


class _Items(dict):
    """A list being assembled from `Name.N` keys (index -> element); turned into a list last."""


class _In:
    """Decode plan for one shape: a structure's serialized names, a list's element, a scalar."""

    __slots__ = ("kind", "fields", "element", "coerce")

    def __init__(self, kind: str):
        self.kind = kind  # "structure" | "list" | "scalar"
        self.fields: dict[str, tuple[str, _In]] = {}
        self.element: _In | None = None
        self.coerce: Callable[[str, str], Any] = _as_str


def _query_name(member_name: str, shape: Shape) -> str:
    """The wire name EC2 uses: queryName, else capitalised locationName, else the member name."""
    ser = shape.serialization
    if "queryName" in ser:
        return ser["queryName"]
    name = ser.get("name")
    if name:
        return name[0].upper() + name[1:]
    return member_name


def _as_str(value: str, key: str) -> str:
    return value


def _as_int(value: str, key: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Ec2Error("InvalidParameterValue",
                       f"Value ({value}) for parameter {key} is invalid. Expected an integer.") from None


def _as_float(value: str, key: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise Ec2Error("InvalidParameterValue",
                       f"Value ({value}) for parameter {key} is invalid. Expected a number.") from None


def _as_bool(value: str, key: str) -> bool:
    low = value.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    raise Ec2Error("InvalidParameterValue",
                   f"Value ({value}) for parameter {key} is invalid. Expected: 'true' or 'false'.")


def _as_timestamp(value: str, key: str) -> dt.datetime:
    try:
        if value.replace(".", "", 1).isdigit():
            return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Ec2Error("InvalidParameterValue",
                       f"Value ({value}) for parameter {key} is invalid. Expected a timestamp.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _as_blob(value: str, key: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise Ec2Error("InvalidParameterValue",
                       f"Value for parameter {key} is invalid. Expected base64.") from None


_COERCE = {"integer": _as_int, "long": _as_int, "boolean": _as_bool, "double": _as_float,
           "float": _as_float, "timestamp": _as_timestamp, "blob": _as_blob}


def _decode_plan(shape: Shape, memo: dict[str, _In]) -> _In:
    """Compile (once per shape name; recursion-safe) how a shape's query keys are decoded."""
    plan = memo.get(shape.name)
    if plan is not None:
        return plan
    if isinstance(shape, StructureShape):
        plan = memo[shape.name] = _In("structure")
        for member_name, member in shape.members.items():
            plan.fields[_query_name(member_name, member)] = (member_name, _decode_plan(member, memo))
    elif isinstance(shape, ListShape):
        plan = memo[shape.name] = _In("list")
        plan.element = _decode_plan(shape.member, memo)
    else:
        plan = memo[shape.name] = _In("scalar")
        plan.coerce = _COERCE.get(shape.type_name, _as_str)
    return plan


def _finish(value: Any) -> Any:
    """Turn every _Items (index -> element) into a list in index order, depth first."""
    if isinstance(value, _Items):
        return [_finish(value[i]) for i in sorted(value)]
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict):
                value[k] = _finish(v)
    return value


def _decode(root: _In, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    nested = False
    for key, value in pairs:
        if key in ENVELOPE_KEYS and key not in root.fields:
            continue
        plan, container, slot = root, result, None
        for seg in key.split("."):
            if slot is not None:  # step into the previous segment's container
                nested = True
                inner = container.get(slot)
                if inner is None:
                    inner = container[slot] = _Items() if plan.kind == "list" else {}
                elif not isinstance(inner, dict):
                    raise unknown_parameter(seg)
                container = inner
            if plan.kind == "structure":
                field = plan.fields.get(seg)
                if field is None:
                    raise unknown_parameter(seg)
                slot, plan = field
            elif plan.kind == "list":
                if not seg.isdigit() or seg[0] == "0":
                    raise unknown_parameter(seg)
                slot, plan = int(seg), plan.element  # type: ignore[assignment]
            else:
                raise unknown_parameter(seg)
        if plan.kind == "scalar":
            container[slot] = plan.coerce(value, key)
        elif plan.kind == "list" and value == "":
            container.setdefault(slot, _Items())  # an explicitly empty list
        else:
            raise unknown_parameter(key)
    return _finish(result) if nested else result


# ---------------------------------------------------------------------------------------------
# Encoding: output dict -> XML


def _esc(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def _str_text(value: Any) -> str:
    return _esc(value if type(value) is str else str(value))


def _bool_text(value: Any) -> str:
    if isinstance(value, str):
        return value.lower()
    return "true" if value else "false"


def _num_text(value: Any) -> str:
    return str(value)


def _float_text(value: Any) -> str:
    return repr(float(value))


def timestamp_text(value: Any) -> str:
    """ISO 8601 in UTC with milliseconds and Z, as EC2 writes every timestamp."""
    if isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    elif isinstance(value, str):
        return _esc(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _blob_text(value: Any) -> str:
    return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode()


_TEXT = {"boolean": _bool_text, "integer": _num_text, "long": _num_text, "double": _float_text,
         "float": _float_text, "timestamp": timestamp_text, "blob": _blob_text}


def _render_plan(shape: Shape, memo: dict[str, Render]) -> Render:
    """Compile (once per shape name; recursion-safe) a function writing a value's XML body."""
    render = memo.get(shape.name)
    if render is not None:
        return render
    if isinstance(shape, StructureShape):
        members: dict[str, tuple[str, str, Render | None, Callable[[Any], str] | None]] = {}

        def render_structure(value: Mapping[str, Any], w: Writer) -> None:
            for name, item in value.items():
                spec = members.get(name)
                if spec is None or item is None:
                    continue
                open_tag, close_tag, nested, text = spec
                if text is not None:
                    w(open_tag + text(item) + close_tag)
                else:
                    w(open_tag)
                    nested(item, w)  # type: ignore[misc]
                    w(close_tag)

        memo[shape.name] = render_structure
        for member_name, member in shape.members.items():
            tag = member.serialization.get("name", member_name)
            if isinstance(member, (StructureShape, ListShape)):
                members[member_name] = (f"<{tag}>", f"</{tag}>", _render_plan(member, memo), None)
            else:
                members[member_name] = (f"<{tag}>", f"</{tag}>", None,
                                        _TEXT.get(member.type_name, _str_text))
        return render_structure
    if isinstance(shape, ListShape):
        tag = shape.member.serialization.get("name", "member")
        open_tag, close_tag = f"<{tag}>", f"</{tag}>"
        element = shape.member
        if isinstance(element, (StructureShape, ListShape)):
            nested = _render_plan(element, memo)

            def render_list(value: Iterable[Any], w: Writer) -> None:
                for item in value:
                    w(open_tag)
                    nested(item, w)
                    w(close_tag)
        else:
            text = _TEXT.get(element.type_name, _str_text)

            def render_list(value: Iterable[Any], w: Writer) -> None:
                for item in value:
                    w(open_tag + text(item) + close_tag)

        memo[shape.name] = render_list
        return render_list
    text = _TEXT.get(shape.type_name, _str_text)

    def render_scalar(value: Any, w: Writer) -> None:
        w(text(value))

    memo[shape.name] = render_scalar
    return render_scalar


# ---------------------------------------------------------------------------------------------
# The codec


class OperationPlan:
    """Everything needed per call of one action, compiled once from the model."""

    __slots__ = ("name", "decoder", "render", "open_tag", "close_tag")

    def __init__(self, op: OperationModel, decode_memo: dict[str, _In], render_memo: dict[str, Render]):
        self.name = op.name
        self.decoder = _decode_plan(op.input_shape, decode_memo) if op.input_shape else _In("structure")
        self.render = _render_plan(op.output_shape, render_memo) if op.output_shape else None
        self.open_tag = f'{XML_DECL}<{op.name}Response xmlns="{XMLNS}"><requestId>'
        self.close_tag = f"</{op.name}Response>"


class QueryCodec:
    """Decodes EC2 Query requests and encodes EC2 XML responses for any action in the model."""

    def __init__(self, model: ServiceModel | None = None):
        self.model = model or ec2_model()
        self._actions = frozenset(self.model.operation_names)
        self._plans: dict[str, OperationPlan] = {}
        self._decode_memo: dict[str, _In] = {}
        self._render_memo: dict[str, Render] = {}
        self._lock = threading.Lock()

    def plan(self, action: str) -> OperationPlan:
        """The compiled plan of an action; InvalidAction if the model does not know it."""
        plan = self._plans.get(action)
        if plan is None:
            if action not in self._actions:
                raise invalid_action(action)
            with self._lock:  # memos hold half-built plans while compiling; one thread at a time
                plan = self._plans.get(action) or OperationPlan(
                    self.model.operation_model(action), self._decode_memo, self._render_memo)
                self._plans[action] = plan
        return plan

    def warm(self, actions: Iterable[str] | None = None) -> None:
        """Compile plans ahead of the first call (all actions if none given)."""
        for action in actions if actions is not None else self._actions:
            self.plan(action)

    def decode(self, pairs: Iterable[tuple[str, str]]) -> tuple[str, dict[str, Any]]:
        """(action, input dict) from the request's decoded key/value pairs."""
        pairs = list(pairs)
        action = next((v for k, v in pairs if k == "Action"), None)
        if action is None:
            raise Ec2Error("MissingAction", "The request must contain the parameter Action")
        return action, _decode(self.plan(action).decoder, pairs)

    def decode_params(self, action: str, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """The input dict of `action` from flat query pairs (envelope keys are skipped)."""
        return _decode(self.plan(action).decoder, pairs)

    def encode(self, action: str, output: Mapping[str, Any] | None,
               request_id: str | None = None) -> bytes:
        """EC2's `<{Action}Response>` document for an output dict keyed by member names."""
        plan = self.plan(action)
        parts = [plan.open_tag, request_id or str(uuid.uuid4()), "</requestId>"]
        if plan.render is None:
            parts.append("<return>true</return>")  # what EC2 sends for actions without output
        elif output:
            plan.render(output, parts.append)
        parts.append(plan.close_tag)
        return "".join(parts).encode()


def encode_error(error: Ec2Error, request_id: str | None = None) -> bytes:
    """EC2's error document (`<Response><Errors><Error>...`); send it with `error.status`."""
    return (f"{XML_DECL}<Response><Errors><Error><Code>{_esc(error.code)}</Code>"
            f"<Message>{_esc(error.message)}</Message></Error></Errors>"
            f"<RequestID>{request_id or uuid.uuid4()}</RequestID></Response>").encode()


@functools.lru_cache(maxsize=1)
def default_codec() -> QueryCodec:
    """One shared codec per process (its plans are read-only once built, so threads share it)."""
    return QueryCodec()
