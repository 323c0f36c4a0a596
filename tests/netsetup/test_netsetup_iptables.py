"""iptables: `-S` rendering, SetupHostNetwork's resulting rule sets, connmark, restore input.

Vectors: iptables_render, host_network_setup, connmark_iptables; plus the verified §6.4 dump.
"""

from pathlib import Path

import pytest
import yaml

from minieks.netsetup import iptables as ipt
from minieks.netsetup import rules
from minieks.netsetup.iptables_render import RuleSpecError, render_rule, render_spec, save_string, split_saved
from minieks.netsetup.iptables_state import Change, IptablesState, IptablesStateError, restore_text

VECTORS = yaml.safe_load((Path(__file__).parents[1] / "data" / "conformance-vectors.yaml").read_text())
HOST = {v["id"]: v for v in VECTORS["host_network_setup"]}

# Verified output of spec §6.4 (legacy iptables, default settings), verbatim.
SPEC_NAT_S = """-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-N AWS-CONNMARK-CHAIN-0
-N AWS-SNAT-CHAIN-0
-A PREROUTING -i eni+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0
-A PREROUTING -m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
-A AWS-CONNMARK-CHAIN-0 -d 10.12.0.0/16 -m comment --comment "AWS CONNMARK CHAIN" -j RETURN
-A AWS-CONNMARK-CHAIN-0 -d 100.64.0.0/16 -m comment --comment "AWS CONNMARK CHAIN" -j RETURN
-A AWS-CONNMARK-CHAIN-0 -d 192.168.0.0/16 -m comment --comment "AWS CONNMARK CHAIN" -j RETURN
-A AWS-CONNMARK-CHAIN-0 -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark 0x80/0x80
-A AWS-SNAT-CHAIN-0 -d 10.12.0.0/16 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN
-A AWS-SNAT-CHAIN-0 -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 192.168.1.10 --random-fully"""

SPEC_MANGLE_S = """-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-A PREROUTING -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80
-A PREROUTING -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
-A PREROUTING -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80"""

SPEC_CONFIG = ipt.HostIptablesConfig(
    primary_iface="eth0", primary_ip="192.168.1.10",
    vpc_cidrs=("192.168.0.0/16", "100.64.0.0/16"), exclude_snat_cidrs=("10.12.0.0/16",))


def _config(given: dict, **overrides) -> ipt.HostIptablesConfig:
    """The Go tests' fixture: primary interface "lo", IP 10.10.10.20, SNAT type none."""
    values = dict(
        primary_iface="lo", primary_ip="10.10.10.20", randomize_snat="none",
        vpc_cidrs=tuple(given.get("vpc_cidrs") or ()),
        exclude_snat_cidrs=tuple(given.get("exclude_snat_cidrs") or ()),
        external_snat=given.get("external_snat", False),
        node_port_support=given.get("node_port_support", True),
        veth_prefix=given.get("veth_prefix", "eni"),
        # The Go tests mock the connmark backend unless they name iptables; the nftables
        # backend leaves no connmark rules in iptables, which is what those mocks show.
        connmark_backend=given.get("connmark_backend", "nftables"),
        ipv6=given.get("v6_enabled", False),
        v6_egress=given.get("ipv6_egress", False),
    )
    values.update(overrides)
    return ipt.HostIptablesConfig(**values)


def _merged(result: ipt.HostIptables) -> dict[str, dict[str, list]]:
    """Table → chain → [["-N", chain]?, spec...] across both families, like the Go mock's store."""
    merged: dict[str, dict[str, list]] = {}
    for state in result.states.values():
        for table, chains in state.tables.items():
            for chain in chains.values():
                if chain.builtin and not chain.rules:
                    continue
                entry = [] if chain.builtin else [["-N", chain.name]]
                merged.setdefault(table, {})[chain.name] = entry + [list(r) for r in chain.rules]
    return merged


def _assert_matches(result: ipt.HostIptables, expected: dict) -> None:
    merged = _merged(result)
    for table, chains in expected.items():
        want = {name: rules for name, rules in chains.items() if rules}
        assert merged.get(table, {}) == want, table


# --- rendering ------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", VECTORS["iptables_render"]["rules"],
                         ids=lambda v: v.get("iptables_S") or v.get("ip6tables_S"))
def test_iptables_render(vector):
    family = 6 if "ip6tables_S" in vector else 4
    expected = vector.get("iptables_S") or vector["ip6tables_S"]
    chain = expected.split()[1]
    assert render_rule(chain, vector["spec"], family) == expected


@pytest.mark.parametrize("line", SPEC_NAT_S.splitlines() + SPEC_MANGLE_S.splitlines())
def test_saved_lines_round_trip(line):
    """A rule read back from `-S` renders to the same line (so `-C` matches it)."""
    if line.startswith("-A "):
        args = split_saved(line)
        assert render_rule(args[1], args[2:]) == line


def test_render_details():
    assert save_string("AWS") == "AWS"
    assert save_string("AWS SNAT") == '"AWS SNAT"'
    assert save_string('a"b') == '"a\\"b"'
    assert save_string("") == '""'
    assert render_spec(["-d", "10.0.1.1/20", "-j", "RETURN"]) == "-d 10.0.0.0/20 -j RETURN"
    assert render_spec(["-s", "10.0.0.1", "-j", "ACCEPT"]) == "-s 10.0.0.1/32 -j ACCEPT"
    assert render_spec(["-j", "CONNMARK", "--set-mark", "0x80"]) == "-j CONNMARK --set-xmark 0x80/0xffffffff"
    assert render_spec(["-j", "CONNMARK", "--set-mark", "0x1/0x80"]) == "-j CONNMARK --set-xmark 0x1/0x81"
    assert render_spec(["-j", "CONNMARK", "--restore-mark"]) == \
        "-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff"
    assert render_spec(["-m", "conntrack", "--ctstate", "ESTABLISHED,NEW", "-j", "ACCEPT"]) == \
        "-m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT"
    with pytest.raises(RuleSpecError):
        render_spec(["-j", "RETURN", "-j", "ACCEPT"])


@pytest.mark.parametrize("randomize,fully,flag", [
    ("prng", True, " --random-fully"), ("prng", False, " --random"),
    ("hashrandom", True, " --random"), ("none", True, ""),
])
def test_snat_randomization(randomize, fully, flag):
    cfg = ipt.HostIptablesConfig("eth0", "192.168.1.10", ("192.168.0.0/16",),
                                 randomize_snat=randomize, random_fully_supported=fully)
    last = ipt.plan_host_iptables(cfg).dump("nat").splitlines()[-1]
    assert last.endswith("--to-source 192.168.1.10" + flag)


# --- the verified §6.4 state ----------------------------------------------------------------

def test_spec_verified_iptables_s():
    result = ipt.plan_host_iptables(SPEC_CONFIG)
    assert result.dump("nat") == SPEC_NAT_S
    assert result.dump("mangle") == SPEC_MANGLE_S


def test_spec_state_is_a_fixed_point():
    """Reconciling against the verified dump changes nothing (upstream's restart case)."""
    current = IptablesState.parse({"nat": SPEC_NAT_S, "mangle": SPEC_MANGLE_S})
    result = ipt.plan_host_iptables(SPEC_CONFIG, {4: current})
    assert result.changes[4] == []
    assert result.restore() == ""


def test_restore_batch_reproduces_state():
    result = ipt.plan_host_iptables(SPEC_CONFIG)
    text = result.restore()
    assert text.startswith("*nat\n:AWS-SNAT-CHAIN-0 - [0:0]\n:AWS-CONNMARK-CHAIN-0 - [0:0]\n")
    assert "-I AWS-SNAT-CHAIN-0 1 -d 192.168.0.0/16 -m comment --comment \"AWS SNAT CHAIN\" -j RETURN" in text
    assert text.count("COMMIT") == 2 and text.endswith("COMMIT\n")
    # Replaying the batch's lines on an empty rule set gives the verified dump.
    state = IptablesState()
    table = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            state.apply(Change("new_chain", table, line[1:].split()[0]))
        elif line.startswith(("-A ", "-I ")):
            args = split_saved(line)
            spec = tuple(args[3:] if args[0] == "-I" else args[2:])
            state.apply(Change("insert" if args[0] == "-I" else "append", table, args[1], spec))
    assert state.dump("nat") == SPEC_NAT_S
    assert state.dump("mangle") == SPEC_MANGLE_S


def test_nftables_backend_keeps_connmark_out_of_iptables():
    cfg = ipt.HostIptablesConfig("eth0", "192.168.1.10", ("192.168.0.0/16",), connmark_backend="nftables")
    nat = ipt.plan_host_iptables(cfg).dump("nat")
    assert "CONNMARK" not in nat
    assert "-A POSTROUTING -m comment --comment \"AWS SNAT CHAIN\" -j AWS-SNAT-CHAIN-0" in nat


def test_backend_detection():
    assert ipt.connmark_backend_for("iptables v1.8.9 (legacy)") == "iptables"
    assert ipt.connmark_backend_for("iptables v1.8.10 (nf_tables)") == "nftables"


# --- SetupHostNetwork vectors ---------------------------------------------------------------

@pytest.mark.parametrize("vid", [v for v in HOST if "expected_iptables" in HOST[v]
                                 and "pre_existing" not in HOST[v]["input"]])
def test_host_network_setup_from_scratch(vid):
    vector = HOST[vid]
    cfg = _config(vector["input"])
    result = ipt.plan_host_iptables(cfg)
    _assert_matches(result, vector["expected_iptables"])
    if "expected_connmark" in vector:
        assert ipt.connmark_action(cfg) == vector["expected_connmark"]
    if "expected_ip_rules" in vector:
        changes = rules.host_rule_changes(cfg.node_port_support, cfg.external_snat)
        assert [r.show().replace("\t", " ") for r in changes.add] == vector["expected_ip_rules"]


def test_host_ext_snat_nodeport_off():
    vector = HOST["host-ext-snat-nodeport-off"]
    cfg = _config(vector["input"])
    changes = rules.host_rule_changes(cfg.node_port_support, cfg.external_snat)
    assert changes.add == ()
    assert [r.show() for r in changes.delete] == ["1024:\tfrom all fwmark 0x80/0x80 lookup main"]
    assert ipt.connmark_action(cfg) == vector["expected_connmark"]
    result = ipt.plan_host_iptables(cfg)
    assert result.dump("mangle").count("-A ") == 0
    assert "-A " not in result.dump("nat")


def _snat_return(cidr, comment="AWS SNAT CHAIN"):
    return ipt.cidr_return_spec(cidr, comment)


def test_host_stale_rules_cleanup():
    vector = HOST["host-stale-rules-cleanup"]
    cfg = _config(vector["input"], connmark_backend="iptables")
    state = IptablesState()
    nat = state.table("nat")
    for name in ("AWS-SNAT-CHAIN-0", "AWS-SNAT-CHAIN-1", "AWS-CONNMARK-CHAIN-0"):
        state.apply(Change("new_chain", "nat", name))
    old_snat = ("-m", "comment", "--comment", "AWS, SNAT", "-m", "addrtype", "!", "--dst-type", "LOCAL",
                "-j", "SNAT", "--to-source", "10.10.10.20")
    nat["AWS-SNAT-CHAIN-0"].rules = [
        _snat_return("10.13.0.0/16", "AWS SNAT CHAIN EXCLUSION"),
        _snat_return("10.12.0.0/16", "AWS SNAT CHAIN EXCLUSION"),
        _snat_return("10.11.0.0/16"),
        _snat_return("10.10.0.0/16", "AWS SNAT CHAN"),
        old_snat,
    ]
    nat["AWS-CONNMARK-CHAIN-0"].rules = [
        ipt.cidr_return_spec(c, "AWS CONNMARK CHAIN")
        for c in ("10.13.0.0/16", "10.12.0.0/16", "10.11.0.0/16", "10.10.0.0/16")
    ] + [ipt.connmark_set_spec(0x80)]
    nat["PREROUTING"].rules = [ipt.connmark_jump_spec("eni"), ipt.connmark_restore_spec(0x80)]
    result = ipt.plan_host_iptables(cfg, {4: state})
    _assert_matches(result, vector["expected_iptables"])


def test_host_external_snat_cleanup():
    vector = HOST["host-external-snat-cleanup"]
    before = ipt.plan_host_iptables(_config(vector["input"], external_snat=False,
                                            connmark_backend="iptables"))
    assert "AWS-CONNMARK-CHAIN-0" in before.states[4].table("nat")
    cfg = _config(vector["input"], connmark_backend="iptables")
    result = ipt.plan_host_iptables(cfg, before.states)
    _assert_matches(result, vector["expected_iptables"])
    assert not result.states[4].has_chain("nat", "AWS-CONNMARK-CHAIN-0")
    assert ipt.connmark_action(cfg) == "Cleanup"


def test_host_veth_prefix_change():
    """Old `-i eni+` rules stay; `-i veth+` variants are appended (upstream does not prune them)."""
    base = dict(vpc_cidrs=["10.10.0.0/16"], connmark_backend="iptables")
    before = ipt.plan_host_iptables(_config(base))
    result = ipt.plan_host_iptables(_config(base, veth_prefix="veth"), before.states)
    nat, mangle = result.dump("nat"), result.dump("mangle")
    for prefix in ("eni+", "veth+"):
        assert f"-A PREROUTING -i {prefix} -m comment --comment \"AWS, outbound connections\"" in nat
        assert f"-A PREROUTING -i {prefix} -m comment --comment \"AWS, primary ENI\" -j CONNMARK --restore-mark" in mangle
    assert all(c.kind != "delete" for c in result.changes[4])


def test_host_ipv6_mode():
    vector = HOST["host-ipv6-mode"]
    result = ipt.plan_host_iptables(_config(vector["input"]))
    _assert_matches(result, vector["expected_iptables"])
    assert "-A " not in result.dump("nat") and "-A " not in result.dump("mangle")
    assert rules.host_rule_changes(True, False, v4_enabled=False).add == ()


def test_host_stale_chains():
    vector = HOST["host-stale-chains"]
    state = IptablesState()
    for name in ["AWS-SNAT-CHAIN-0", "AWS-CONNMARK-CHAIN-0"] + vector["input"]["pre_existing_chains"]:
        state.apply(Change("new_chain", "nat", name))
    # the pre-1.12 layout chained them: chain n jumps to n+1
    for n in range(4):
        state.table("nat")[f"AWS-SNAT-CHAIN-{n}"].rules.append(
            ("!", "-d", f"10.{n}.0.0/16", "-j", f"AWS-SNAT-CHAIN-{n + 1}"))
    state.apply_all(ipt.stale_chain_changes(state))
    assert [c for c in state.chain_names("nat") if c.startswith("AWS")] == \
        ["AWS-CONNMARK-CHAIN-0", "AWS-SNAT-CHAIN-0"]
    assert ipt.stale_chain_changes(state) == []  # nothing without AWS-SNAT-CHAIN-1


def test_host_legacy_connmark_rule():
    vector = HOST["host-legacy-connmark-rule"]
    spec = vector["input"]["pre_existing"][1:]
    state = IptablesState()
    state.table("nat")["PREROUTING"].rules.append(tuple(spec))
    result = ipt.plan_host_iptables(_config({"vpc_cidrs": ["10.10.0.0/16"], "connmark_backend": "iptables"}),
                                    {4: state})
    prerouting = result.states[4].rules("nat", "PREROUTING")
    assert tuple(spec) not in prerouting
    assert ipt.connmark_jump_spec("eni") in prerouting


def test_host_zero_cidr():
    vector = HOST["host-zero-cidr"]
    cfg = _config(vector["input"], connmark_backend="iptables")
    first = ipt.plan_host_iptables(cfg)
    for chain, comment in (("AWS-SNAT-CHAIN-0", "AWS SNAT CHAIN EXCLUSION"),
                           ("AWS-CONNMARK-CHAIN-0", "AWS CONNMARK CHAIN")):
        line = f'-A {chain} -m comment --comment "{comment}" -j RETURN'
        assert line in first.dump("nat").splitlines()
    second = ipt.plan_host_iptables(cfg, first.states)
    assert second.changes[4] == []
    assert second.dump("nat") == first.dump("nat")


# --- connmark (iptables backend) ------------------------------------------------------------

def _connmark_state(veth_prefix, mark, cidrs, current=None):
    plan = ipt.IptablesPlan(4, (("nat", ipt.CONNMARK_CHAIN),),
                            tuple(ipt.connmark_setup_intents(veth_prefix, mark, cidrs)),
                            (("nat", ipt.CONNMARK_CHAIN),))
    state = current.copy() if current else IptablesState()
    state.apply_all(ipt.reconcile(plan, state))
    return state


def test_connmark_setup():
    vector = VECTORS["connmark_iptables"][0]
    given = vector["input"]
    state = _connmark_state(given["veth_prefix"], int(given["mark"], 16), given["exempt_cidrs"])
    for table, chain, *spec in vector["expected_exists"]:
        assert state.exists(table, chain, spec)
    again = _connmark_state(given["veth_prefix"], int(given["mark"], 16), given["exempt_cidrs"], state)
    assert again.dump("nat") == state.dump("nat")


def test_connmark_empty_cidrs():
    vector = VECTORS["connmark_iptables"][1]
    with pytest.raises(ValueError, match=vector["expected_error"]):
        ipt.connmark_setup_intents("eni", 0x80, vector["input"]["exempt_cidrs"])


def test_connmark_stale_rules_removed():
    state = None
    for step in VECTORS["connmark_iptables"][2]["steps"]:
        state = _connmark_state("eni", 0x80, step["setup"], state)
        for cidr in step["expected_present"]:
            assert state.exists("nat", ipt.CONNMARK_CHAIN, ipt.cidr_return_spec(cidr, "AWS CONNMARK CHAIN"))
        for cidr in step.get("expected_absent", []):
            assert not state.exists("nat", ipt.CONNMARK_CHAIN, ipt.cidr_return_spec(cidr, "AWS CONNMARK CHAIN"))


def test_connmark_cleanup():
    state = _connmark_state("eni", 0x80, ["10.0.0.0/8"])
    plan = ipt.IptablesPlan(4, intents=tuple(ipt.connmark_cleanup_intents("eni", 0x80)),
                            remove_chains=(("nat", ipt.CONNMARK_CHAIN),))
    changes = ipt.reconcile(plan, state)
    state.apply_all(changes)
    assert not state.has_chain("nat", ipt.CONNMARK_CHAIN)
    assert state.rules("nat", "PREROUTING") == []
    assert [c.kind for c in changes][-2:] == ["flush", "delete_chain"]


def test_state_refuses_what_the_kernel_refuses():
    state = IptablesState()
    with pytest.raises(IptablesStateError):
        state.apply(Change("append", "nat", "NOPE", ("-j", "RETURN")))
    with pytest.raises(IptablesStateError):
        state.apply(Change("delete", "nat", "PREROUTING", ("-j", "RETURN")))
    assert restore_text([]) == ""
