"""diagnose() on hand-made facts: one test per cause, with upstream's log lines, ipamd's metrics
text and the events kubelet and the scheduler record."""

import json

from minieks.explain import Ec2Facts, IpamdFacts, NodeUsage, diagnose
from tests.explain.fixtures import (
    IID, NO_IP, NO_IPAMD, NODE, SANDBOX, SUBNET, SUBNET_FULL, T0, TOO_MANY, address, ec2_eni, eni, enis_doc, event,
    facts, full_eni, log, metrics, pod, scheduled, subnet)


def creating_events(count: int = 4, first: float = T0 + 1, last: float = T0 + 50):
    return [scheduled(), event("FailedCreatePodSandBox", NO_IP, first, last, count)]


# ----------------------------------------------------------------------------------- Running
def test_a_running_pod_gets_the_short_answer_with_its_eni_and_device():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10, used=5), full_eni("eni-0bbb", 1, 20, used=2))
    doc["0"]["ENIs"]["eni-0bbb"]["AvailableIPv4Cidrs"]["192.168.1.21/32"]["IPAddresses"]["192.168.1.21"][
        "IPAMMetadata"]["k8sPodName"] = "web-7c5d8-abcde"
    d = diagnose(facts(pod(phase="Running", waiting=None, ip="192.168.1.21"), [scheduled()], enis=doc))
    assert d.codes == ["running"]
    assert d.headline == (f"Pod default/web-7c5d8-abcde is Running on {NODE} with 192.168.1.21 "
                          f"(ENI eni-0bbb, device 1).")
    assert "Cause:" not in d.render() and "Timeline (UTC):" in d.render()


def test_a_running_pod_is_found_on_its_eni_through_ec2_when_introspection_is_silent():
    ec2 = Ec2Facts(subnet=subnet(200), network_interfaces=[
        ec2_eni("eni-0aaa", 0, "192.168.1.29", ["192.168.1.10"]),
        ec2_eni("eni-0ccc", 2, "192.168.1.40", ["192.168.1.41", "192.168.1.42"])])
    f = facts(pod(phase="Running", waiting=None, ip="192.168.1.42"),
              [scheduled(), event("FailedCreatePodSandBox", NO_IP, T0 + 1, T0 + 7, 3)], ec2=ec2,
              ipamd=IpamdFacts(enis_error="connection refused"))
    d = diagnose(f)
    assert d.codes == ["running"]
    assert "(ENI eni-0ccc, device 2)" in d.headline
    assert "3 FailedCreatePodSandBox" in d.causes[0].evidence[0]


def test_a_host_network_pod_runs_with_the_node_address_and_no_eni_slot():
    d = diagnose(facts(pod(phase="Running", waiting=None, ip="192.168.1.29", host_network=True), [scheduled()]))
    assert d.codes == ["running"] and "hostNetwork" in d.headline


# -------------------------------------------------------------------------------- scheduling
def test_max_pods_names_every_full_node_and_the_eni_arithmetic():
    nodes = [NodeUsage(f"ip-192-168-{n}-10.ap-northeast-2.compute.internal", 17, 17, "t3.medium") for n in (1, 2, 3)]
    events = [event("FailedScheduling", TOO_MANY, T0 + 1, T0 + 40, 6, component="default-scheduler")]
    d = diagnose(facts(pod(node=None, waiting=None), events, nodes=nodes))
    assert d.codes == ["max-pods"]
    cause = d.causes[0]
    assert cause.numbers["full_nodes"] == 3 and cause.numbers["nodes"] == 3
    assert "3/3 nodes are full" in cause.title
    text = d.render()
    assert f'"{TOO_MANY}" (×6 since' in text
    assert "ip-192-168-2-10.ap-northeast-2.compute.internal (t3.medium): 17/17 pods" in text
    assert "max pods 17 on t3.medium = 3 ENIs × (6 − 1) + 2" in text
    assert "max pods 110" in text                       # prefix delegation, as a way out
    assert d.headline == "Pod default/web-7c5d8-abcde is Pending (not scheduled) for 1m0s."


def test_another_scheduler_verdict_is_quoted():
    message = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    d = diagnose(facts(pod(node=None, waiting=None),
                       [event("FailedScheduling", message, T0 + 1, component="default-scheduler")]))
    assert d.codes == ["unschedulable"] and message in d.causes[0].title


def test_a_pod_refused_by_the_kubelet_for_max_pods_is_out_of_pods():
    p = pod(waiting=None, phase="Failed")
    p["status"].update(reason="OutOfpods", message="Pod was rejected: Node didn't have enough resource: pods, "
                                                  "requested: 1, used: 17, capacity: 17")
    d = diagnose(facts(p, [scheduled()]))
    assert d.state == "OutOfpods" and d.codes == ["max-pods"]


# ------------------------------------------------------------------------------- addresses
def test_eni_limit_says_enis_addresses_and_max_pods():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10), full_eni("eni-0bbb", 1, 20), full_eni("eni-0ccc", 2, 30))
    d = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=metrics(3, 15, 3, 15, 15, no_ip=4),
                       pods_on_node=17))
    assert d.codes == ["eni-limit"]
    assert d.causes[0].title == "ENI limit reached: 3/3 ENIs, 15/15 addresses in use, max pods 17"
    numbers = d.causes[0].numbers
    assert (numbers["enis"], numbers["max_eni"], numbers["assigned"], numbers["ip_max"]) == (3, 3, 15, 15)
    remedies = " ".join(d.causes[0].remedy)
    assert "more nodes" in remedies and "prefix delegation" in remedies and "larger instance type" in remedies
    assert "MAX_ENI" not in remedies
    assert "awscni_no_available_ip_addresses): 4" in d.render()


def test_eni_limit_under_max_eni_points_at_the_setting():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10))
    d = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=metrics(1, 5, 1, 5, 5),
                       cni_env={"MAX_ENI": "1", "WARM_ENI_TARGET": "1"},
                       log_lines=[log(T0 + 5, "DEBUG", "Skipping ENI allocation as the max ENI limit is already "
                                                       "reached")]))
    assert d.codes == ["eni-limit"]
    cause = d.causes[0]
    assert "1/1 ENIs, 5/5 addresses in use, max pods 17" in cause.title
    assert "MAX_ENI=1 caps ipamd at 1 ENI(s); t3.medium allows 3" in cause.evidence
    assert any("Skipping ENI allocation" in line for line in cause.evidence)
    assert cause.remedy[0] == "raise or remove MAX_ENI (up to 3 ENIs, 15 addresses on t3.medium)"
    assert any("set it to 7" in r for r in cause.remedy)       # 5 addresses + aws-node and kube-proxy


def test_addresses_only_in_cooldown():
    released = T0 + 50
    cidrs = {f"192.168.1.{n}/32": [address(f"192.168.1.{n}", f"web-{n}")] for n in range(10, 14)}
    cidrs["192.168.1.14/32"] = [address("192.168.1.14", None, released_at=released)]
    doc = enis_doc(eni("eni-0aaa", 0, cidrs))
    d = diagnose(facts(pod(), creating_events(), now=T0 + 60, enis=doc, metrics_text=metrics(1, 5, 1, 5, 4),
                       cni_env={"MAX_ENI": "1"}))
    assert d.codes == ["ip-cooldown", "eni-limit"]
    cooldown = d.causes[0]
    assert cooldown.numbers["usable_at"] == released + 30
    assert "usable again at" in " ".join(cooldown.evidence) and "(in 20s)" in " ".join(cooldown.evidence)
    assert "4/5 addresses in use, 1 in cooldown" in d.causes[1].title


def test_cooldown_is_over_after_thirty_seconds():
    cidrs = {"192.168.1.10/32": [address("192.168.1.10", None, released_at=T0)]}
    d = diagnose(facts(pod(), creating_events(), now=T0 + 31, enis=enis_doc(eni("eni-0aaa", 0, cidrs))))
    assert d.codes[0] == "retrying"


def test_no_address_while_the_warm_pool_refills_shows_the_calls_in_flight():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10), full_eni("eni-0bbb", 1, 20))
    lines = [log(T0 + 40, "INFO", "Created a new ENI: eni-0ccc"),
             log(T0 + 41, "INFO", "Handling http request: GET, from: 127.0.0.1:40000, URI: /v1/enis")]
    ec2 = Ec2Facts(subnet=subnet(230), network_interfaces=[
        ec2_eni("eni-0aaa", 0, "192.168.1.29", [f"192.168.1.{n}" for n in range(10, 15)]),
        ec2_eni("eni-0bbb", 1, "192.168.1.30", [f"192.168.1.{n}" for n in range(20, 25)]),
        ec2_eni("eni-0ccc", 2, "192.168.1.31", [f"192.168.1.{n}" for n in range(40, 45)], status="attaching")])
    d = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=metrics(3, 15, 2, 10, 10),
                       log_lines=lines, ec2=ec2))
    assert d.codes == ["pool-refilling"]
    flight = d.causes[0].numbers["in_flight"]
    assert any("ipamd: Created a new ENI: eni-0ccc" in line for line in flight)
    assert any("eni-0ccc at device 2 is attaching; ipamd has not added it" in line for line in flight)
    assert "10/10 assigned" in d.causes[0].title
    assert "Handling http request" not in d.render()


def test_refilling_sees_addresses_ec2_assigned_that_ipamd_has_not_taken_in():
    cidrs = {"192.168.1.10/32": [address("192.168.1.10", "web-10")]}
    ec2 = Ec2Facts(subnet=subnet(230), network_interfaces=[
        ec2_eni("eni-0aaa", 0, "192.168.1.29", ["192.168.1.10", "192.168.1.11", "192.168.1.12"])])
    d = diagnose(facts(pod(), creating_events(), enis=enis_doc(eni("eni-0aaa", 0, cidrs)),
                       metrics_text=metrics(3, 15, 1, 1, 1),
                       log_lines=[log(T0 + 55, "INFO", "Trying to allocate 2 IP addresses on ENI eni-0aaa")],
                       ec2=ec2, cni_env={"WARM_IP_TARGET": "2"}))
    assert d.codes == ["pool-refilling"]
    text = d.render()
    assert "EC2: eni-0aaa has 3 secondary addresses, ipamd's pool 1: 2 being added" in text
    assert "Trying to allocate 2 IP addresses on ENI eni-0aaa" in text
    assert "now WARM_ENI_TARGET" not in text and "WARM_IP_TARGET=2" in text


def test_subnet_exhausted_from_ec2s_answer_and_the_subnets_count():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10))
    error = ("Failed to allocate 5 IP addresses on an ENI: An error occurred (InsufficientFreeAddressesInSubnet) "
             "when calling the CreateNetworkInterface operation: The specified subnet does not have enough free "
             "addresses to satisfy the request.")
    lines = [log(T0 + 30, "WARNING", "failed to allocate all available IP addresses on ENI eni-0aaa, err: An error "
                 "occurred (InsufficientFreeAddressesInSubnet) when calling the AssignPrivateIpAddresses operation: "
                 "The specified subnet does not have enough free addresses to satisfy the request."),
             log(T0 + 31, "ERROR", error), log(T0 + 31, "ERROR", SUBNET_FULL)]
    m = metrics(3, 15, 1, 5, 5, api_errors={("AssignPrivateIpAddresses", "InsufficientFreeAddressesInSubnet"): 2,
                                            ("CreateNetworkInterface", "InsufficientFreeAddressesInSubnet"): 1})
    d = diagnose(facts(pod(), creating_events(), now=T0 + 60, enis=doc, metrics_text=m, log_lines=lines,
                       ec2=Ec2Facts(subnet=subnet(0, "192.168.1.0/28"))))
    assert d.codes == ["subnet-exhausted"]
    cause = d.causes[0]
    assert cause.numbers["available"] == 0 and cause.numbers["subnet"] == SUBNET
    assert cause.numbers["errors"] == {"AssignPrivateIpAddresses": 2, "CreateNetworkInterface": 1}
    assert cause.numbers["retry_after"] == T0 + 31 + 120
    text = d.render()
    assert f"subnet {SUBNET} (192.168.1.0/28, ap-northeast-2a): AvailableIpAddressCount 0 of 11 usable" in text
    assert "AssignPrivateIpAddresses ×2, CreateNetworkInterface ×1" in text
    assert SUBNET_FULL in text
    assert "it waits 2m0s after an InsufficientCidr error" in text and "(in 1m31s)" in text


def test_a_subnet_with_too_few_addresses_for_a_new_eni():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10))
    lines = [log(T0 + 31, "ERROR", SUBNET_FULL)]
    d = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=metrics(3, 15, 1, 5, 5), log_lines=lines,
                       ec2=Ec2Facts(subnet=subnet(4, "192.168.1.0/28"))))
    assert d.codes == ["subnet-exhausted"]
    assert "a new ENI needs 6 addresses (its primary + 5 secondary); the subnet has 4" in d.causes[0].evidence


def test_no_free_prefix_under_prefix_delegation_is_fragmentation():
    cidrs = {"192.168.1.16/28": [address(f"192.168.1.{n}", f"web-{n}") for n in range(16, 32)]}
    doc = enis_doc(eni("eni-0aaa", 0, cidrs, prefix=True))
    go_sdk = ("Failed to increase pool size: operation error EC2: AssignPrivateIpAddresses, https response error "
              "StatusCode: 400, RequestID: 5b1c, api error InsufficientCidrBlocks: There are not enough free cidr "
              "blocks in the specified subnet to satisfy the request.")
    lines = [log(T0 + 20, "ERROR", go_sdk), log(T0 + 20, "ERROR", SUBNET_FULL)]
    m = metrics(3, 432, 1, 16, 16, api_errors={("AssignPrivateIpAddresses", "InsufficientCidrBlocks"): 1})
    d = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=m, log_lines=lines,
                       cni_env={"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"},
                       ec2=Ec2Facts(subnet=subnet(41)), max_pods=110))
    assert d.codes == ["no-free-prefix"]
    text = d.render()
    assert "41 addresses are free but no whole, aligned /28 is: 192.168.1.0/24 has 16 aligned /28 blocks" in text
    assert "at most 14 can ever be a prefix; ENI primaries and secondary IPs scattered" in text
    assert f"aws ec2 create-subnet-cidr-reservation --subnet-id {SUBNET} --reservation-type prefix" in text
    assert "(prefixes: 16 addresses per /28)" in text


def test_throttling_names_the_api_and_the_count():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10), full_eni("eni-0bbb", 1, 20, used=5, slots=2))
    throttled = ("An error occurred (RequestLimitExceeded) when calling the AssignPrivateIpAddresses operation "
                 "(reached max retries: 2): Request limit exceeded.")
    lines = [log(T0 + 20, "WARNING",
                 f"failed to allocate all available IP addresses on ENI eni-0bbb, err: {throttled}"),
             log(T0 + 26, "ERROR", f"Failed to increase pool size: {throttled}")]
    m = metrics(3, 15, 2, 7, 7, api_errors={("AssignPrivateIpAddresses", "RequestLimitExceeded"): 3})
    d = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=m, log_lines=lines))
    assert d.codes == ["throttled"]
    cause = d.causes[0]
    assert cause.numbers["errors"] == {"AssignPrivateIpAddresses": 3}
    assert "RequestLimitExceeded, AssignPrivateIpAddresses ×3" in cause.title
    assert "awscni_aws_api_error_count): AssignPrivateIpAddresses RequestLimitExceeded 3" in d.render()


def test_errors_from_long_ago_do_not_explain_a_pod_stuck_now():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10), full_eni("eni-0bbb", 1, 20))
    lines = [log(T0 - 3600, "ERROR", "Failed to increase pool size: An error occurred (RequestLimitExceeded) when "
                                     "calling the AssignPrivateIpAddresses operation: Request limit exceeded.")]
    d = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=metrics(3, 15, 2, 10, 10), log_lines=lines))
    assert d.codes == ["pool-refilling"]


def test_ipamd_not_ready_from_the_grpc_error_the_missing_socket_and_silent_introspection():
    ipamd = IpamdFacts(enis_error="[Errno 111] Connection refused", metrics_error="[Errno 111] Connection refused",
                       socket_present=False, socket_path="/var/lib/mek-myeks/nodes/i-0/ipamd.sock",
                       log_lines=[log(T0 - 5, "INFO", "IP pool manager - max pods: 17, warm IP target: 0, warm "
                                                      "prefix target: 1, warm ENI target: 1, minimum IP target: 0")])
    events = [scheduled(), event("FailedCreatePodSandBox", NO_IPAMD, T0 + 1, T0 + 30, 5)]
    d = diagnose(facts(pod(), events, ipamd=ipamd))
    assert d.codes[0] == "ipamd-not-ready"
    text = "\n".join(d.causes[0].evidence)
    assert "Error received from AddNetwork gRPC call: rpc error: code = Unavailable" in text
    assert "/var/lib/mek-myeks/nodes/i-0/ipamd.sock does not exist" in text
    assert "Connection refused" in text and "last ipamd log line" in text
    assert "is not ready" in d.causes[0].title


def test_ipamd_that_answers_again_was_only_not_ready_then():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10, used=2))
    events = [scheduled(), event("FailedCreatePodSandBox", NO_IPAMD, T0 + 1, T0 + 30, 5)]
    d = diagnose(facts(pod(), events, enis=doc, metrics_text=metrics(3, 15, 1, 5, 2)))
    assert d.codes == ["ipamd-not-ready", "retrying"]
    assert "it answers now" in d.causes[0].title


def test_another_plugin_error_is_quoted():
    message = NO_IP.replace("add cmd: failed to assign an IP address to container",
                            "add cmd: failed to setup network policy")
    doc = enis_doc(full_eni("eni-0aaa", 0, 10, used=2))
    d = diagnose(facts(pod(), [scheduled(), event("FailedCreatePodSandBox", message, T0 + 1)], enis=doc))
    assert d.codes[0] == "cni-error" and "failed to setup network policy" in d.causes[0].title


def test_a_sandbox_not_yet_failed_is_pending():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10, used=2))
    d = diagnose(facts(pod(), [scheduled()], enis=doc))
    assert d.codes == ["sandbox-pending"]


# ---------------------------------------------------------------------------------- output
def test_the_timeline_folds_repeats_and_keeps_the_pods_sandbox_lines():
    lines = [log(T0 + 1 + n, "ERROR", "DataStore has no available IP/Prefix addresses") for n in range(5)]
    lines += [log(T0 + 1, "INFO", f"Received AddNetwork for NS /run/netns/mek-x, Sandbox {SANDBOX}, ifname eth0"),
              log(T0 + 1, "INFO", "Received AddNetwork for NS /run/netns/mek-y, Sandbox 99999, ifname eth0")]
    doc = enis_doc(full_eni("eni-0aaa", 0, 10))
    d = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=metrics(1, 5, 1, 5, 5), log_lines=lines,
                       cni_env={"MAX_ENI": "1"}))
    texts = [e.text for e in d.timeline]
    assert "DataStore has no available IP/Prefix addresses (×5, last " in " ".join(texts)
    assert any(SANDBOX in t and "Received AddNetwork" in t for t in texts)
    assert not any("Sandbox 99999" in t for t in texts)
    assert [e.source for e in d.timeline][0] == "scheduler"
    assert d.timeline == sorted(d.timeline, key=lambda e: e.time)


def test_json_output_carries_codes_and_numbers():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10))
    d = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=metrics(1, 5, 1, 5, 5),
                       cni_env={"MAX_ENI": "1"}))
    data = json.loads(d.to_json())
    assert data["causes"][0]["code"] == "eni-limit" and data["causes"][0]["numbers"]["max_eni_env"] == 1
    assert data["node"] == NODE and data["state"] == "ContainerCreating"
    assert f"({IID}, t3.medium)" in data["headline"]


def test_an_ec2_error_is_over_once_ec2_answers_otherwise():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10), full_eni("eni-0bbb", 1, 20, used=2, slots=2))
    throttle = log(T0 + 10, "ERROR", "Failed to increase pool size: An error occurred (RequestLimitExceeded) when "
                                     "calling the AssignPrivateIpAddresses operation: Request limit exceeded.")
    full = log(T0 + 40, "ERROR", "Failed to allocate 3 IP addresses on an ENI: An error occurred "
                                 "(InsufficientFreeAddressesInSubnet) when calling the CreateNetworkInterface "
                                 "operation")
    m = metrics(3, 15, 2, 7, 7)
    later_error = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=m, log_lines=[throttle, full]))
    assert later_error.codes == ["subnet-exhausted"]
    later_eni = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=m,
                               log_lines=[throttle, log(T0 + 30, "INFO", "Created a new ENI: eni-0bbb")]))
    assert later_eni.codes == ["pool-refilling"]
    still = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=m,
                           log_lines=[log(T0 + 5, "INFO", "Created a new ENI: eni-0bbb"), throttle]))
    assert still.codes == ["throttled"]


def test_refilling_with_an_eni_created_but_not_attached_yet():
    doc = enis_doc(full_eni("eni-0aaa", 0, 10), full_eni("eni-0bbb", 1, 20))
    created = ec2_eni("eni-0ccc", 0, "192.168.1.31", [f"192.168.1.{n}" for n in range(40, 45)])
    created.pop("Attachment")
    created["Status"] = "available"
    ec2 = Ec2Facts(subnet=subnet(230), network_interfaces=[created])
    d = diagnose(facts(pod(), creating_events(), enis=doc, metrics_text=metrics(3, 15, 2, 10, 10),
                       log_lines=[log(T0 + 50, "INFO", "Created a new ENI: eni-0ccc")], ec2=ec2))
    assert d.codes == ["pool-refilling"]
    evidence = "\n".join(d.causes[0].evidence)
    assert "every attached ENI is full (2 × 5 addresses): ipamd's next step is a new ENI" in evidence
    assert "EC2: eni-0ccc was created for this node and is available, not attached yet" in evidence
