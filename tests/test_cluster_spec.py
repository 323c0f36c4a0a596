import pytest

from minieks.cluster.spec import ClusterSpec, load
from minieks.usage import UsageError


def test_default_is_the_seed_cluster():
    spec = ClusterSpec()
    assert (spec.name, spec.region, spec.kubernetes_version, spec.vpc_cidr) == \
        ("myeks", "ap-northeast-2", "1.31", "192.168.0.0/16")
    assert [(s.cidr, s.zone) for s in spec.subnets] == [
        ("192.168.1.0/24", "ap-northeast-2a"), ("192.168.2.0/24", "ap-northeast-2b"),
        ("192.168.3.0/24", "ap-northeast-2c")]
    [group] = spec.node_groups
    assert (group.name, group.instance_type, group.desired_capacity) == ("ng1", "t3.medium", 3)
    assert spec.cni_environment["WARM_ENI_TARGET"] == "1" and spec.cni_environment["CLUSTER_NAME"] == "myeks"
    assert spec.prefix == "mek-myeks-"


def test_a_file_changes_what_it_names(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: pd\nnodeGroups:\n- {name: ng2, instanceType: m5.large, desiredCapacity: 2}\n"
                    "cniEnv: {ENABLE_PREFIX_DELEGATION: 'true'}\nec2: {latency: realistic}\n")
    spec = load(path)
    assert spec.node_groups[0].instance_type == "m5.large"
    assert spec.cni_environment["ENABLE_PREFIX_DELEGATION"] == "true"
    assert spec.ec2.latency == "realistic" and len(spec.subnets) == 3


@pytest.mark.parametrize("text,message", [
    ("nodeGroups:\n- {instanceType: t3.mediun}\n", "did you mean t3.medium"),
    ("subnets:\n- {name: a, cidr: 10.9.0.0/24, zone: ap-northeast-2a}\n", "is not inside the VPC"),
    ("subnets:\n- {name: a, cidr: 192.168.1.0/24, zone: us-east-1a}\n", "not in region"),
    ("name: Bad_Name\n", "cluster name"),
    ("colour: blue\n", "Extra inputs are not permitted"),
    ("kubernetesVersion: '1.12'\n", "1.27 to 1.33"),
    ("- just a list\n", "must be a mapping"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_bad_files_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        load(path)
