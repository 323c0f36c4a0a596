import csv
from pathlib import Path

import pytest

from minieks.aws import instance_types
from minieks.aws.instance_types import UnknownInstanceType

SHIPPED = Path(__file__).resolve().parents[1] / "src/minieks/aws/data/ec2-instance-types.csv"


def test_every_row_of_the_shipped_table_is_loaded():
    with SHIPPED.open() as handle:
        names = [row["instance_type"] for row in csv.DictReader(handle)]
    assert len(names) == 1391
    assert sorted(instance_types.catalog()) == sorted(names)


def test_t3_medium_record_is_typed():
    t = instance_types.get("t3.medium")
    assert (t.max_enis, t.ipv4_per_eni, t.hypervisor, t.bare_metal) == (3, 6, "nitro", False)
    assert (t.vcpus, t.memory_mib, t.network_cards) == (2, 4096, 1)
    assert t.supports_prefix_delegation


def test_multi_card_type_keeps_every_card():
    t = instance_types.get("p4d.24xlarge")
    assert t.network_cards == 4
    assert t.max_enis_per_network_card == (15, 15, 15, 15)
    assert t.total_enis == 60 and t.max_enis == 15


def test_types_without_vcpu_data_say_none():
    t = instance_types.get("bmn-sf1.metal")
    assert t.vcpus is None and t.memory_mib is None
    assert t.bare_metal and t.supports_prefix_delegation


def test_xen_type_does_not_support_prefix_delegation():
    assert not instance_types.get("c1.medium").supports_prefix_delegation


def test_glob_match_in_natural_size_order():
    names = [t.name for t in instance_types.match(["t3.*"])]
    assert names == ["t3.nano", "t3.micro", "t3.small", "t3.medium", "t3.large", "t3.xlarge", "t3.2xlarge"]


def test_several_patterns_are_merged_without_duplicates():
    names = [t.name for t in instance_types.match(["t3.medium", "t3.m*", "m5.large"])]
    assert names == ["m5.large", "t3.micro", "t3.medium"]


def test_unknown_exact_name_suggests_close_names():
    with pytest.raises(UnknownInstanceType) as err:
        instance_types.get("t3.medum")
    assert "t3.medium" in err.value.suggestions
    assert "unknown instance type 't3.medum'" in str(err.value)


def test_wildcard_matching_nothing_is_empty_not_an_error():
    assert instance_types.match(["zz9.*"]) == []
