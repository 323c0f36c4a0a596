"""How `iptables -S` prints a rule given as the argument list upstream passes to iptables.

Upstream builds rules as argument lists (go-iptables specs) in its own option order; the kernel
stores them in canonical form and `iptables -S` prints that form (spec §6.4, verified with
iptables 1.8.9): address/interface options first, then matches in order, then the target;
addresses masked to their network and never `-d 0.0.0.0/0`; comments quoted unless plain;
CONNMARK `--set-mark X/Y` as `--set-xmark X/(X|Y)` and `--mask M` as `--nfmask M --ctmask M`.
Two specs are the same rule exactly when they render to the same text (that is `iptables -C`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

# Options of the rule's IP header part, in the order iptables prints them.
_BASE_OPTIONS = {
    "-s": "-s", "--source": "-s", "--src": "-s",
    "-d": "-d", "--destination": "-d", "--dst": "-d",
    "-i": "-i", "--in-interface": "-i",
    "-o": "-o", "--out-interface": "-o",
    "-p": "-p", "--protocol": "-p",
}
_BASE_ORDER = ("-s", "-d", "-i", "-o", "-p")
_PLAIN_CHARS = set("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_CT_STATES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
_ALL_ONES = 0xFFFFFFFF


class RuleSpecError(ValueError):
    """A spec iptables itself would reject (what `iptables` prints as "Bad argument")."""


@dataclass
class _Option:
    name: str
    values: list[str] = field(default_factory=list)
    negated: bool = False


@dataclass
class _Module:
    """One `-m name` match or the `-j name` target with the options that follow it."""

    name: str
    options: list[_Option] = field(default_factory=list)


@dataclass
class _ParsedRule:
    base: dict[str, _Option] = field(default_factory=dict)
    matches: list[_Module] = field(default_factory=list)
    target: _Module | None = None


def save_string(value: str) -> str:
    """Quote a value as iptables-save does: bare if plain, else in double quotes with escapes."""
    if value and all(ch in _PLAIN_CHARS for ch in value):
        return value
    escaped = "".join("\\" + ch if ch in "\"\\'" else ch for ch in value)
    return f'"{escaped}"'


def split_saved(line: str) -> list[str]:
    """Split one `iptables -S` line into arguments (double quotes group, backslash escapes)."""
    args: list[str] = []
    current: list[str] = []
    in_word = in_quotes = False
    i = 0
    while i < len(line):
        ch = line[i]
        if in_quotes:
            if ch == "\\" and i + 1 < len(line):
                i += 1
                current.append(line[i])
            elif ch == '"':
                in_quotes = False
            else:
                current.append(ch)
        elif ch == '"':
            in_quotes = in_word = True
        elif ch.isspace():
            if in_word:
                args.append("".join(current))
                current, in_word = [], False
        else:
            current.append(ch)
            in_word = True
        i += 1
    if in_quotes:
        raise RuleSpecError(f"unterminated quote in {line!r}")
    if in_word:
        args.append("".join(current))
    return args


def _takes_value(option: str) -> bool:
    flags = {"--limit-iface-in", "--limit-iface-out", "--random", "--random-fully", "--persistent",
             "--restore-mark", "--save-mark"}
    return option not in flags


def _parse(spec: Sequence[str]) -> _ParsedRule:
    rule = _ParsedRule()
    module: _Module | None = None
    negate = False
    args = list(spec)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "!":
            negate = True
            i += 1
            continue
        if arg in _BASE_OPTIONS:
            if i + 1 >= len(args):
                raise RuleSpecError(f"option {arg!r} requires an argument")
            rule.base[_BASE_OPTIONS[arg]] = _Option(_BASE_OPTIONS[arg], [args[i + 1]], negate)
            negate = False
            i += 2
            continue
        if arg in ("-m", "--match", "-j", "--jump", "-g", "--goto"):
            if i + 1 >= len(args):
                raise RuleSpecError(f"option {arg!r} requires an argument")
            module = _Module(args[i + 1])
            if arg in ("-m", "--match"):
                rule.matches.append(module)
            else:
                if rule.target is not None:
                    raise RuleSpecError("multiple -j flags not allowed")
                rule.target = module
            i += 2
            continue
        if arg.startswith("--") and module is not None:
            option = _Option(arg, [], negate)
            negate = False
            i += 1
            if _takes_value(arg):
                if i >= len(args):
                    raise RuleSpecError(f"option {arg!r} requires an argument")
                option.values.append(args[i])
                i += 1
            module.options.append(option)
            continue
        raise RuleSpecError(f"Bad argument `{arg}'")
    return rule


def _render_address(value: str, family: int) -> str | None:
    net = ipaddress.ip_network(value, strict=False)
    if net.version != family:
        raise RuleSpecError(f"host/network `{value}' not found")
    if net.prefixlen == 0:
        return None
    return f"{net.network_address}/{net.prefixlen}"


def _mark_pair(text: str) -> tuple[int, int | None]:
    value, _, mask = text.partition("/")
    return int(value, 0), (int(mask, 0) if mask else None)


def _render_connmark(options: list[_Option]) -> str:
    names = {o.name: (o.values[0] if o.values else "") for o in options}
    if "--set-xmark" in names:
        mark, mask = _mark_pair(names["--set-xmark"])
        return f"--set-xmark {mark:#x}/{(_ALL_ONES if mask is None else mask):#x}"
    if "--set-mark" in names:
        mark, mask = _mark_pair(names["--set-mark"])
        return f"--set-xmark {mark:#x}/{(_ALL_ONES if mask is None else mask | mark):#x}"
    if "--and-mark" in names:
        return f"--set-xmark 0x0/{~int(names['--and-mark'], 0) & _ALL_ONES:#x}"
    if "--or-mark" in names:
        bits = int(names["--or-mark"], 0)
        return f"--set-xmark {bits:#x}/{bits:#x}"
    if "--xor-mark" in names:
        return f"--set-xmark {int(names['--xor-mark'], 0):#x}/0x0"
    for mode in ("--restore-mark", "--save-mark"):
        if mode in names:
            nfmask = ctmask = _ALL_ONES
            if "--mask" in names:
                nfmask = ctmask = int(names["--mask"], 0)
            if "--nfmask" in names:
                nfmask = int(names["--nfmask"], 0)
            if "--ctmask" in names:
                ctmask = int(names["--ctmask"], 0)
            return f"{mode} --nfmask {nfmask:#x} --ctmask {ctmask:#x}"
    raise RuleSpecError("CONNMARK target: No operation specified")


def _render_options(options: list[_Option], quote: bool = False) -> list[str]:
    out: list[str] = []
    for option in options:
        if option.negated:
            out.append("!")
        out.append(option.name)
        out.extend(save_string(v) if quote else v for v in option.values)
    return out


def _render_match(module: _Module) -> list[str]:
    out = ["-m", module.name]
    if module.name == "comment":
        return out + _render_options(module.options, quote=True)
    if module.name == "addrtype":
        order = {"--src-type": 0, "--dst-type": 1, "--limit-iface-in": 2, "--limit-iface-out": 3}
        options = sorted(module.options, key=lambda o: order.get(o.name, 9))
        return out + _render_options(options)
    if module.name in ("conntrack", "state"):
        options = []
        for option in module.options:
            if option.name in ("--ctstate", "--state"):
                states = option.values[0].split(",")
                ordered = [s for s in _CT_STATES if s in states]
                option = _Option(option.name, [",".join(ordered)], option.negated)
            options.append(option)
        return out + _render_options(options)
    return out + _render_options(module.options)


def _render_target(target: _Module, family: int) -> list[str]:
    out = ["-j", target.name]
    if target.name == "CONNMARK":
        return out + _render_connmark(target.options).split()
    if target.name in ("SNAT", "DNAT"):
        order = {"--to-source": 0, "--to-destination": 0, "--random": 1, "--random-fully": 2,
                 "--persistent": 3}
        return out + _render_options(sorted(target.options, key=lambda o: order.get(o.name, 9)))
    if target.name == "REJECT":
        options = list(target.options)
        if not any(o.name == "--reject-with" for o in options):
            default = "icmp6-port-unreachable" if family == 6 else "icmp-port-unreachable"
            options.append(_Option("--reject-with", [default]))
        return out + _render_options(options)
    return out + _render_options(target.options)


def render_spec(spec: Sequence[str], family: int = 4) -> str:
    """The rule body (everything after `-A CHAIN`) as `iptables -S` prints it."""
    rule = _parse(spec)
    out: list[str] = []
    for name in _BASE_ORDER:
        option = rule.base.get(name)
        if option is None:
            continue
        value = option.values[0]
        if name in ("-s", "-d"):
            rendered = _render_address(value, family)
            if rendered is None:
                continue
            value = rendered
        if option.negated:
            out.append("!")
        out += [name, value]
    for match in rule.matches:
        out += _render_match(match)
    if rule.target is not None:
        out += _render_target(rule.target, family)
    return " ".join(out)


def render_rule(chain: str, spec: Sequence[str], family: int = 4) -> str:
    """One `-A CHAIN ...` line exactly as `iptables -t <table> -S` prints it."""
    body = render_spec(spec, family)
    return f"-A {chain} {body}" if body else f"-A {chain}"
