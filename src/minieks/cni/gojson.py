"""JSON text as Go's encoding/json writes it (HTML characters escaped, MarshalIndent layout).

The plugin's stdout and the conflist are read by runtimes and people; matching Go's bytes keeps
diffs against a real node empty.
"""

from __future__ import annotations

import json
from typing import Any

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def dumps(obj: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    """json.Marshal (indent None) or json.MarshalIndent(obj, "", " " * indent)."""
    if indent is None:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    else:
        text = json.dumps(obj, ensure_ascii=False, indent=indent, sort_keys=sort_keys)
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def type_name(value: Any) -> str:
    """The JSON type word Go uses in "cannot unmarshal X into ..." errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
