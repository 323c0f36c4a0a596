import pytest

from minieks.clock import VirtualClock
from minieks.ec2.client import InProcessEc2Client
from minieks.ec2.service import Ec2Service


@pytest.fixture
def clock():
    return VirtualClock()


@pytest.fixture
def service(clock):
    return Ec2Service(seed=7, placement="lowest", clock=clock)


@pytest.fixture
def ec2(service):
    return InProcessEc2Client(service)
