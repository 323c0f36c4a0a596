"""Go's number and boolean parsing, so env values are accepted or refused exactly as upstream.

Python's int() takes spaces, underscores and other digits that Go's strconv refuses; getting
these edge cases wrong would make a lab accept config the real aws-node rejects.
"""

from __future__ import annotations

import re

_ATOI = re.compile(r"[+-]?[0-9]+\Z")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def atoi(text: str) -> int:
    """strconv.Atoi: optional sign and ASCII decimal digits only; ValueError otherwise."""
    if not _ATOI.match(text):
        raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax')
    return int(text, 10)


def parse_int_base0(text: str) -> int:
    """strconv.ParseInt(s, 0, 64): 0x/0o/0b prefixes, a leading 0 means octal."""
    sign = 1
    body = text
    if body[:1] in "+-" and body:
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    lowered = body.lower()
    if lowered.startswith(("0x", "0o", "0b")):
        base = {"x": 16, "o": 8, "b": 2}[lowered[1]]
        digits = body[2:]
        if digits.startswith("_"):
            digits = digits[1:]
        if not digits or "__" in digits or digits.endswith("_"):
            raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
        value = int(digits.replace("_", ""), base)
    elif len(body) > 1 and body[0] == "0":
        if not re.fullmatch(r"[0-7_]+", body[1:]) or "__" in body or body.endswith("_"):
            raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
        value = int(body[1:].replace("_", "") or "0", 8)
    else:
        if not re.fullmatch(r"[0-9]+", body):
            raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
        value = int(body, 10)
    value *= sign
    if not -(2**63) <= value < 2**63:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def parse_bool(text: str) -> bool:
    """strconv.ParseBool: 1/t/T/TRUE/true/True and their false forms; ValueError otherwise."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')
