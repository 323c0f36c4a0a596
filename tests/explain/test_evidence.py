"""The evidence readers: Prometheus text, ipamd.log (minieks' text and upstream's JSON lines),
EC2 error codes in boto3's and aws-sdk-go-v2's wording, /v1/enis counts, Go and Kubernetes times."""

from minieks.explain.evidence import (
    clock, duration, ec2_errors, parse_log, parse_metrics, parse_time, pool_view)
from tests.explain.fixtures import T0, address, eni, enis_doc, full_eni, log


def test_metrics_text_with_labels_and_sums():
    m = parse_metrics('# HELP awscni_aws_api_error_count The number of times AWS API returns an error\n'
                      '# TYPE awscni_aws_api_error_count counter\n'
                      'awscni_aws_api_error_count{api="AssignPrivateIpAddresses",error="RequestLimitExceeded"} 3\n'
                      'awscni_aws_api_error_count{api="CreateNetworkInterface",error="RequestLimitExceeded"} 1\n'
                      'awscni_eni_max 3\nawscni_ip_max 15\n'
                      'awscni_aws_api_latency_ms{api="DescribeInstances",error="false",status="",quantile="0.5"} NaN\n')
    assert m.value("awscni_eni_max") == 3 and m.value("awscni_ip_max") == 15
    assert m.value("awscni_aws_api_error_count", error="RequestLimitExceeded") == 4
    assert m.value("awscni_aws_api_error_count", api="CreateNetworkInterface") == 1
    assert m.value("awscni_total_ip_addresses") is None


def test_log_lines_in_both_formats_and_tracebacks_joined():
    lines = [log(T0, "INFO", "Trying to allocate 5 IP addresses on ENI eni-0aaa"),
             "Traceback (most recent call last):", '  File "x.py", line 1',
             '{"level":"error","ts":"2026-11-27T04:22:42.884Z","caller":"ipamd/ipamd.go:881","msg":"Unable to '
             'attach IPs/Prefixes for the ENI, subnet doesn\'t seem to have enough IPs/Prefixes."}']
    records = parse_log(lines)
    assert len(records) == 2
    assert records[0].time == T0 and records[0].level == "INFO" and "Traceback" in records[0].message
    assert records[1].level == "ERROR" and records[1].time == parse_time("2026-11-27T04:22:42.884Z")
    shifted = parse_log([log(T0, "INFO", "x")], utc_offset=9 * 3600)    # a log written in KST
    assert shifted[0].time == T0 - 9 * 3600


def test_ec2_error_codes_in_boto3_go_sdk_and_bare_wording():
    records = parse_log([
        log(T0, "ERROR", "Failed to increase pool size: An error occurred (RequestLimitExceeded) when calling the "
                         "AssignPrivateIpAddresses operation (reached max retries: 2): Request limit exceeded."),
        log(T0, "ERROR", "Failed to allocate 1 IP addresses on an ENI: operation error EC2: CreateNetworkInterface, "
                         "https response error StatusCode: 400, RequestID: 1, api error "
                         "InsufficientFreeAddressesInSubnet: The specified subnet does not have enough free addresses"),
        log(T0, "ERROR", "InsufficientCidrBlocks: There are not enough free cidr blocks in the specified subnet"),
        log(T0, "INFO", "Trying to allocate 5 IP addresses on ENI eni-0aaa")])
    found = [(e.api, e.code) for e in ec2_errors(records)]
    assert found == [("AssignPrivateIpAddresses", "RequestLimitExceeded"),
                     ("CreateNetworkInterface", "InsufficientFreeAddressesInSubnet"), ("", "InsufficientCidrBlocks")]


def test_pool_view_counts_assigned_cooldown_and_free_in_the_pools_mode():
    cidrs = {"192.168.1.10/32": [address("192.168.1.10", "a")],
             "192.168.1.11/32": [address("192.168.1.11", None, released_at=T0 - 10)],
             "192.168.1.12/32": [address("192.168.1.12", None, released_at=T0 - 40)],
             "192.168.1.13/32": []}
    doc = enis_doc(eni("eni-0aaa", 0, cidrs), full_eni("eni-0bbb", 1, 20, used=1, slots=2))
    view = pool_view(doc, T0, 30.0)
    assert not view.pd
    assert (view.total, view.assigned, view.cooldown, view.free) == (6, 2, 1, 3)
    assert view.first_cooldown_end == T0 + 20
    assert view.find_pod("default", "a")[0].id == "eni-0aaa"
    assert view.find_pod("default", "web-20") == (view.enis[1], "192.168.1.20")


def test_pool_view_under_prefix_delegation_counts_sixteen_per_prefix():
    doc = enis_doc(eni("eni-0aaa", 0, {"192.168.1.16/28": [address("192.168.1.16", "a")],
                                       "192.168.1.32/28": []}, prefix=True),)
    view = pool_view(doc, T0, 30.0)
    assert view.pd and (view.total, view.assigned, view.free) == (32, 1, 31)
    assert pool_view(doc, T0, 30.0, pd=False).total == 0           # /32s only when PD is off


def test_times():
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("2026-11-27T04:22:42.884585984Z") - parse_time("2026-11-27T04:22:42Z") > 0.88
    assert clock(parse_time("2026-11-27T04:22:42Z")) == "04:22:42"
    assert [duration(s) for s in (5, 65, 700, 7300)] == ["5s", "1m5s", "11m", "2h1m"]


def test_the_situation_reads_aws_nodes_env_as_ipamd_does():
    """IP_COOLDOWN_PERIOD=0 is no cooldown, not the 30 s default; ENABLE_PREFIX_DELEGATION=1 is on (Go's
    ParseBool); MAX_ENI with a space is no cap (Go's Atoi) — the same parsers ipamd's config uses."""
    from minieks.explain.facts import Facts
    from minieks.explain.situation import Situation

    def situation(env):
        return Situation.of(Facts(pod={"metadata": {"name": "p", "namespace": "default"}}, cni_env=env))
    assert situation({}).cooldown_period == 30.0
    assert situation({"IP_COOLDOWN_PERIOD": "0"}).cooldown_period == 0.0
    assert situation({"IP_COOLDOWN_PERIOD": " 5"}).cooldown_period == 30.0
    assert situation({"ENABLE_PREFIX_DELEGATION": "1"}).pd is True
    assert situation({"ENABLE_PREFIX_DELEGATION": "false"}).pd is False
    assert situation({"MAX_ENI": " 2"}).max_eni_env is None
    assert situation({"MAX_ENI": "2"}).max_eni_env == 2
