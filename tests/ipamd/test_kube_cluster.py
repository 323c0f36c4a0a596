"""ipamd's Kubernetes adapter against minieks' own API server over HTTPS (no root needed)."""

from minieks.ipamd.kube_cluster import KubernetesCluster
from minieks.kube.apiserver import ApiServer
from minieks.kube.store import Store


def test_max_pods_eniconfig_and_schedulability_come_from_the_api(tmp_path):
    store = Store()
    server = ApiServer(store, state_dir=tmp_path / "pki").start()
    try:
        server.write_kubeconfig(tmp_path / "kubeconfig", cluster="t")
        store.create("nodes", {"apiVersion": "v1", "kind": "Node",
                               "metadata": {"name": "ip-10-0-0-5.ap-northeast-2.compute.internal",
                                            "labels": {"k8s.amazonaws.com/eniConfig": "az-a"}},
                               "spec": {}, "status": {"capacity": {"pods": "29"}}})
        store.create("eniconfigs", {"apiVersion": "crd.k8s.amazonaws.com/v1alpha1", "kind": "ENIConfig",
                                    "metadata": {"name": "az-a"},
                                    "spec": {"subnet": "subnet-0abc", "securityGroups": ["sg-1", "sg-2"]}})
        api = KubernetesCluster(str(tmp_path / "kubeconfig"), "ip-10-0-0-5.ap-northeast-2.compute.internal")
        assert api.wait_for_node(timeout=5)
        assert api.max_pods() == 29
        config = api.eni_config()
        assert (config.name, config.subnet, config.security_groups) == ("az-a", "subnet-0abc", ("sg-1", "sg-2"))
        assert not api.unschedulable()
        missing = KubernetesCluster(str(tmp_path / "kubeconfig"), "no-such-node")
        assert not missing.wait_for_node(timeout=1) and missing.max_pods() is None
    finally:
        server.stop()
        store.close()
