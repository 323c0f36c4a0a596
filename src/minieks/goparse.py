"""Go's string-to-value rules (strconv, net.ParseCIDR), which decide what upstream accepts in env.

ipamd and the CNI read their configuration with Go's parsers, so `" 5"`, `"5_0"` or `"yes"` mean something
different there than to Python's `int()`; config.py uses these so an env value behaves the same here.
"""

from __future__ import annotations

import ipaddress
import re

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_DECIMAL = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_bool(value: str) -> bool:
    """strconv.ParseBool: only the twelve spellings Go knows; anything else is an error."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def atoi(value: str) -> int:
    """strconv.Atoi: optional sign and decimal digits, nothing else (no spaces, no underscores)."""
    if not _DECIMAL.fullmatch(value):
        raise ValueError(f'strconv.Atoi: parsing "{value}": invalid syntax')
    number = int(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise ValueError(f'strconv.Atoi: parsing "{value}": value out of range')
    return number


_BASE_PREFIX = {"0x": 16, "0o": 8, "0b": 2}
_DIGITS = {16: "0-9a-fA-F", 10: "0-9", 8: "0-7", 2: "01"}


def parse_int_base0(value: str) -> int:
    """strconv.ParseInt(s, 0, 64): 0x/0o/0b prefixes, a bare leading 0 means octal, `_` between digits."""
    sign, body = 1, value
    if body[:1] in "+-" and body:
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    base, digits, prefixed = 10, body, False
    if body[:2].lower() in _BASE_PREFIX:
        base, digits, prefixed = _BASE_PREFIX[body[:2].lower()], body[2:], True
    elif len(body) > 1 and body[0] == "0":
        base, digits, prefixed = 8, body[1:], True
    allowed = _DIGITS[base]
    # Go allows underscores only with base 0, each between digits (or right after a base prefix).
    pattern = rf"_?[{allowed}]+(_[{allowed}]+)*" if prefixed else rf"[{allowed}]+(_[{allowed}]+)*"
    if not digits or not re.fullmatch(pattern, digits):
        raise ValueError(f'strconv.ParseInt: parsing "{value}": invalid syntax')
    number = sign * int(digits.replace("_", ""), base)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise ValueError(f'strconv.ParseInt: parsing "{value}": value out of range')
    return number


def parse_cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """net.ParseCIDR, returning the network (host bits cleared) as upstream stores it.

    Requires an explicit `/bits` (Go rejects a bare address and netmask notation).
    """
    address, slash, bits = value.partition("/")
    if not slash or not bits.isascii() or not bits.isdigit() or len(bits) > 3:
        raise ValueError(f"invalid CIDR address: {value}")
    try:
        return ipaddress.ip_network(f"{address}/{int(bits)}", strict=False)
    except ValueError as err:
        raise ValueError(f"invalid CIDR address: {value}") from err
