"""Pod set-up decisions that need no kernel: MAC choice, and the refusal to act outside the lab."""

from __future__ import annotations

import random

import pytest

from minieks.netsetup import pod_network
from minieks.netsetup.pod_network import PodInterface, PodNetworkError


class Untouchable:
    """Stands in for an IPRoute: any use at all fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"netlink used: {name}")


def test_random_mac_is_local_unicast_and_unused():
    rng = random.Random(7)
    taken = set()
    for _ in range(200):
        mac = pod_network.random_mac(taken, rng)
        first = int(mac[:2], 16)
        assert first & 0x01 == 0 and first & 0x02 == 0x02
        assert mac not in taken
        taken.add(mac)


def test_random_mac_gives_up_after_ten_collisions():
    class Zeros(random.Random):
        def randrange(self, *_args):
            return 0                                   # always 02:00:00:00:00:00

    with pytest.raises(PodNetworkError, match=r"^failed to generate unique mac after 10 attempts\.$"):
        pod_network.random_mac({"02:00:00:00:00:00"}, Zeros())


def test_refuses_to_act_from_the_root_namespace():
    """The node side is the calling thread's namespace; here that is the test process's own."""
    assert pod_network.current_lab_namespace() is None
    iface = PodInterface("eni0123456789a", "eth0", "192.168.1.32/32", 254)
    with pytest.raises(PodNetworkError, match="outside the lab"):
        pod_network.setup_pod_network(Untouchable(), "mek-nothere-pod", [iface], 9001)
    with pytest.raises(PodNetworkError, match="outside the lab"):
        pod_network.teardown_pod_network(Untouchable(), "192.168.1.32/32", 2)
