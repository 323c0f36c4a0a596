"""aws-node's `kubectl logs`: upstream's entrypoint lines, cut where ipamd is not serving yet."""

from minieks.cluster.logs import aws_node_lines

POD = {"status": {"startTime": "2026-11-27T06:00:00Z",
                  "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-27T06:00:03Z"}]}}


def test_a_ready_aws_node_shows_the_whole_entrypoint():
    assert aws_node_lines(POD) == [
        "Installed /host/opt/cni/bin/aws-cni",
        "Installed /host/opt/cni/bin/egress-cni",
        'time="2026-11-27T06:00:00Z" level=info msg="Starting IPAM daemon... "',
        'time="2026-11-27T06:00:00Z" level=info msg="Checking for IPAM connectivity... "',
        'time="2026-11-27T06:00:03Z" level=info msg="Copying config file... "',
        'time="2026-11-27T06:00:03Z" level=info msg="Successfully copied CNI plugin binary and config file."',
    ]


def test_without_ipamd_it_waits_at_the_connectivity_check():
    lines = aws_node_lines(POD, ipamd_serving=False)
    assert lines[-1].endswith('msg="Checking for IPAM connectivity... "') and len(lines) == 4


def test_a_pod_not_started_has_written_nothing():
    assert aws_node_lines({"status": {}}) == []
