"""`minieks lab` end to end on its own cluster: every step's observation appears in the report with
real values from the lab, and nothing is left behind."""

import os
import re
import secrets
import subprocess
import sys

import pytest

from tests.cluster.conftest import needs_kernel, needs_kubectl

pytestmark = [pytest.mark.kernel, needs_kernel, needs_kubectl]


def test_the_seed_lab_runs_end_to_end(tmp_path):
    cluster = "lab" + secrets.token_hex(3)
    env = dict(os.environ, MINIEKS_STATE_ROOT=str(tmp_path / "state"))
    report = tmp_path / "report.md"
    try:
        done = subprocess.run([sys.executable, "-m", "minieks.cli", "lab", "--cluster", cluster, "--report",
                               str(report)], capture_output=True, text=True, env=env, timeout=600)
    finally:
        subprocess.run([sys.executable, "-m", "minieks.cli", "down", "--cluster", cluster], env=env,
                       capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    check_report(report.read_text())
    assert "deleted" in done.stdout
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"mek-{cluster}-" not in leftover


def check_report(text: str) -> None:
    """Each step's observation, with real values, in the report's text."""
    steps = text.split("\n## Step ")
    assert len(steps) == 11
    s1, s2, s3, s4, s5, s6, s7, s8, s9, s10 = steps[1:]
    # 1: the nodes as an EC2 table, a node's identity, interfaces, routes and SNAT rule
    assert "DescribeInstances" in s1 and len(re.findall(r"\|\s+running\s+\|", s1)) == 3
    assert re.search(r"Static hostname: ip-192-168-\d+-\d+\.ap-northeast-2\.compute\.internal", s1)
    assert "Hardware Model: t3.medium" in s1 and "-N AWS-SNAT-CHAIN-0" in s1
    # 2: ipamd's warm pool, seen through introspection and metrics on the node
    assert '"TotalIPs"' in s2 and "awscni_total_ip_addresses" in s2
    # 3: CoreDNS on VPC addresses, /32 routes to eni interfaces
    assert len(re.findall(r"coredns-\S+\s+1/1\s+Running", s3)) == 2 and re.search(r"192\.168\.\d+\.\d+ dev eni", s3)
    # 4: netshoot names and addresses three ways
    assert "NAME" in s4 and len(re.findall(r"netshoot-pod-\S+\s+1/1\s+Running", s4)) >= 3
    # 5: pod to pod: replies, and a capture with pod addresses at both ends
    ips = re.findall(r"jsonpath='\{\.items\[\d\]\.status\.podIP\}'\n(192\.168\.\d+\.\d+)", s4)
    assert "2 received" in s5 and re.search(rf"IP {re.escape(ips[0])} > {re.escape(ips[1])}: ICMP echo request", s5)
    # 6: to the internet stand-in, the node's primary address on the wire, the SNAT rule
    assert re.search(r"IP 192\.168\.\d+\.\d+ > 203\.0\.113\.10: ICMP echo request", s6)
    assert "--random-fully" in s6 and "1 received" in s6
    # 7: the board's address; 8: the t3 table and the formula
    assert "http://127.0.0.1:" in s7
    assert "|  6       |  3       |  t3.medium   |" in s8 and "3 ENIs × (6 − 1) addresses + 2 host-network pods = 17" in s8
    # 9: scaled to 50: the nodes are full at 17, the rest Pending with the scheduler's words
    assert "--replicas=50" in s9 and "Too many pods" in s9
    assert re.search(r"nginx-deployment\s+40/50", s9)
    # 10: prefix delegation and new nodes: all 50 running on nodes with max pods 110
    assert re.search(r"nginx-deployment\s+50/50", s10) and s10.count("110") >= 3
