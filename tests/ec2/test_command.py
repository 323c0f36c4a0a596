"""`minieks ec2 serve` as a user runs it: boto3 against it, state kept across a restart."""

import re
import subprocess
import sys

import boto3
import pytest

from tests.ec2.helpers import seed_world


def start(state_file, *extra):
    proc = subprocess.Popen([sys.executable, "-m", "minieks.cli", "ec2", "serve", "--port", "0",
                             "--state", str(state_file), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"server did not start: {line!r} {proc.stderr.read()}")
    return proc, match.group(1)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def client(url):
    return boto3.client("ec2", endpoint_url=url, region_name="ap-northeast-2",
                        aws_access_key_id="test", aws_secret_access_key="test")


def test_serve_keeps_state_across_a_restart(tmp_path):
    state = tmp_path / "ec2.sqlite"
    proc, url = start(state, "--seed", "42")
    try:
        _, subnets, nodes = seed_world(client(url))
        before = client(url).describe_network_interfaces()["NetworkInterfaces"]
    finally:
        stop(proc)
    assert proc.returncode == 0
    proc, url = start(state, "--seed", "42")
    try:
        after = client(url).describe_network_interfaces()["NetworkInterfaces"]
        assert [e["NetworkInterfaceId"] for e in after] == [e["NetworkInterfaceId"] for e in before]
        assert [e["PrivateIpAddress"] for e in after] == [e["PrivateIpAddress"] for e in before]
        more = client(url).create_network_interface(SubnetId=subnets[0])["NetworkInterface"]
        assert more["NetworkInterfaceId"] not in {e["NetworkInterfaceId"] for e in before}
    finally:
        stop(proc)


def test_serve_refuses_a_bad_port_cleanly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "minieks.cli", "ec2", "serve", "--port", "70000",
                           "--state", str(tmp_path / "x.sqlite")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "--port must be between 0 and 65535" in done.stderr
    assert not (tmp_path / "x.sqlite").exists()


@pytest.mark.parametrize("seed", ["1"])
def test_same_script_over_http_and_in_process_gives_the_same_state(tmp_path, seed):
    from minieks.ec2.client import InProcessEc2Client
    from minieks.ec2.service import Ec2Service
    from tests.ec2.test_behaviour import busy_script, state_of

    proc, url = start(tmp_path / "s.sqlite", "--seed", seed)
    try:
        busy_script(client(url))
        over_http = state_of(client(url))
    finally:
        stop(proc)
    local = InProcessEc2Client(Ec2Service(seed=seed))
    busy_script(local)
    assert state_of(local) == over_http


def test_the_real_aws_cli_runs_the_seed_queries(tmp_path):
    import os
    import shutil

    aws = shutil.which("aws", path=os.path.dirname(sys.executable))
    if aws is None:
        pytest.skip("the aws CLI is installed with the test extra")
    proc, url = start(tmp_path / "s.sqlite", "--seed", "9")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="ap-northeast-2")

    def run(*args):
        done = subprocess.run([aws, "--endpoint-url", url, "ec2", *args], capture_output=True, text=True,
                              env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    try:
        _, _, nodes = seed_world(client(url))
        table = run("describe-instance-types", "--filters", "Name=instance-type,Values=t3.*", "--query",
                    "InstanceTypes[].{Type: InstanceType, MaxENI: NetworkInfo.MaximumNetworkInterfaces, "
                    "IPv4addr: NetworkInfo.Ipv4AddressesPerInterface}", "--output", "table")
        assert "|  6       |  3       |  t3.medium   |" in table
        assert table.count("t3.") == 7
        nodes_table = run("describe-instances", "--query",
                          "Reservations[*].Instances[*].{PublicIPAdd:PublicIpAddress,PrivateIPAdd:PrivateIpAddress,"
                          "InstanceName:Tags[?Key=='Name']|[0].Value,Status:State.Name}",
                          "--filters", "Name=instance-state-name,Values=running", "--output", "table")
        assert nodes_table.count("running") == 3 and "myeks-ng1-Node-2" in nodes_table
        enis = run("describe-network-interfaces", "--filters", f"Name=attachment.instance-id,Values={nodes[0]}",
                   "--query", "NetworkInterfaces[].PrivateIpAddress", "--output", "text")
        assert enis.strip().startswith("192.168.1.")
    finally:
        stop(proc)
