import pytest

from minieks.aws import instance_types
from minieks.aws.max_pods import MaxPodsError, MaxPodsOptions, calculate, published_max_pods


def mp(name, **opts):
    return calculate(instance_types.get(name), MaxPodsOptions(**opts))


def test_seed_t3_medium_is_17_with_15_for_workloads():
    r = mp("t3.medium")
    assert (r.max_pods, r.workloads, r.enis, r.pod_addresses) == (17, 15, 3, 15)
    assert "3 ENIs × (6 − 1) addresses + 2 host-network pods = 17" in r.lines
    assert any("15 left for workloads" in line for line in r.lines)


@pytest.mark.parametrize("name,expected", [
    ("t3.nano", 4), ("t3.micro", 4), ("t3.small", 11), ("t3.medium", 17),
    ("t3.large", 35), ("t3.xlarge", 58), ("t3.2xlarge", 58),
])
def test_t3_family_matches_the_published_table(name, expected):
    assert mp(name).max_pods == expected == published_max_pods(instance_types.get(name))


def test_prefix_delegation_is_capped_at_110_on_small_nodes():
    r = mp("t3.medium", prefix_delegation=True)
    assert r.formula == 3 * 5 * 16 + 2 == 242
    assert r.max_pods == 110 and r.ceiling == 110
    assert any("caps max pods at 110" in line for line in r.lines)


def test_prefix_delegation_without_ceiling():
    r = mp("t3.medium", prefix_delegation=True, show_max_allowed=True)
    assert r.max_pods == 242 and r.ceiling is None


def test_large_nodes_get_the_250_ceiling():
    r = mp("m5.24xlarge")
    assert r.formula == 15 * 49 + 2 == 737
    assert r.max_pods == 250
    assert mp("m5.24xlarge", show_max_allowed=True).max_pods == 737


def test_prefix_delegation_refused_on_xen_with_reason():
    with pytest.raises(MaxPodsError, match="not supported on c1.medium: its hypervisor is xen"):
        mp("c1.medium", prefix_delegation=True)


def test_prefix_delegation_allowed_on_bare_metal_without_nitro_label():
    r = mp("c5.metal", prefix_delegation=True)
    assert r.mode == "prefix-delegation" and r.max_pods == 250


def test_custom_networking_drops_the_primary_eni_and_warns_against_the_published_value():
    r = mp("t3.medium", custom_networking=True)
    assert (r.enis, r.max_pods, r.pod_addresses) == (2, 12, 10)
    assert any("published eni-max-pods value for t3.medium is 17" in line and "admits 5 pods" in line
               for line in r.lines)


def test_custom_networking_on_a_single_usable_eni_is_refused():
    with pytest.raises(MaxPodsError, match="no ENI for pods"):
        mp("t3.medium", custom_networking=True, max_eni=1)


def test_max_eni_caps_enis():
    r = mp("t3.medium", max_eni=2)
    assert (r.enis, r.max_pods) == (2, 12)
    assert any("MAX_ENI=2" in line for line in r.lines)


def test_max_eni_above_the_limit_changes_nothing():
    assert mp("t3.medium", max_eni=8).max_pods == 17


def test_max_eni_must_be_positive():
    with pytest.raises(MaxPodsError):
        MaxPodsOptions(max_eni=0)


def test_multi_card_types_count_only_the_default_card():
    r = mp("p4d.24xlarge", show_max_allowed=True)
    assert r.enis == 15
    assert r.max_pods == 15 * 49 + 2
    assert any("4 network cards (60 ENIs in all)" in line for line in r.lines)


def test_type_without_vcpu_data_says_the_ceiling_is_unknown():
    r = mp("bmn-sf1.metal")
    assert r.ceiling_unknown and r.ceiling is None
    assert r.max_pods == r.formula == 15 * 49 + 2
    assert any("no vCPU data" in line for line in r.lines)


def test_every_type_satisfies_the_published_formula():
    for t in instance_types.catalog().values():
        assert mp(t.name, show_max_allowed=True).max_pods == t.max_enis * (t.ipv4_per_eni - 1) + 2
