"""MTU handling's exact texts and edge cases (the vectors run in tests/ipamd/test_ipamd_config.py)."""

from minieks.netsetup import mtu


def test_mtu_validation_texts():
    assert mtu.validate_mtu_var("POD_MTU", "abc") == "POD_MTU MUST be a valid integer. abc is invalid"
    assert mtu.validate_mtu_var("POD_MTU", "500") == \
        "POD_MTU cannot be less than 576 or greater than 9001 in IPv4. 500 is invalid"
    assert mtu.validate_mtu_var("AWS_VPC_ENI_MTU", "1200", ipv6=True) == \
        "AWS_VPC_ENI_MTU cannot be less than 1280 or greater than 9001 in IPv6. 1200 is invalid"
    assert mtu.validate_mtu_var("POD_MTU", None) is None
    assert mtu.get_pod_mtu(" 8000") == 9001  # Go's Atoi takes no spaces
    assert mtu.get_ethernet_mtu({"AWS_VPC_ENI_MTU": "1500"}) == 1500
    assert mtu.get_ethernet_mtu({"AWS_VPC_ENI_MTU": "x"}) == 9001
