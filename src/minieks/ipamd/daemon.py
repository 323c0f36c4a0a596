"""`minieks ipamd run`: the aws-node daemon of one node, against an EC2 endpoint.

Start-up follows upstream's order: nodeInit (ENIs, checkpoint, host network, pre-scaling), then
the plugin-facing gRPC socket, introspection and metrics, then the pool loop every 5 s until
SIGTERM. The process itself stays in the root network namespace, so its EC2 client reaches the
emulator on 127.0.0.1; when a node namespace is given, the host network is programmed there and the
introspection and metrics sockets are opened inside it, as they are on a real node.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import threading
from dataclasses import dataclass

import boto3
from botocore.config import Config

from minieks.clock import RealClock
from minieks.ipamd.awsutils import AwsUtils
from minieks.ipamd.config import IpamdConfig
from minieks.ipamd.context import IpamContext
from minieks.ipamd.introspection import Introspection
from minieks.ipamd.metadata import HttpMetadata
from minieks.ipamd.metrics import IpamdMetrics, MetricsServer
from minieks.ipamd.ports import ClusterFacts, NodeNetwork, StaticCluster
from minieks.ipamd.rpc_handler import NodeInfo, RpcHandler, RpcHooks
from minieks.ipamd.rpc_server import RpcServer

log = logging.getLogger("ipamd")


@dataclass
class DaemonOptions:
    endpoint_url: str
    instance_id: str
    region: str = "ap-northeast-2"
    socket_path: str = "/var/run/aws-node/ipamd.sock"
    node_namespace: str | None = None       # mek-... namespace of the node, or None for no kernel
    metrics_host: str = "127.0.0.1"


class IpamdDaemon:
    def __init__(self, options: DaemonOptions, config: IpamdConfig, cluster: ClusterFacts | None = None,
                 network: NodeNetwork | None = None):
        self.options = options
        self.config = config
        # the SDK's standard retry mode (3 attempts, throttling backs off), as aws-sdk-go-v2 does upstream
        client = boto3.client("ec2", endpoint_url=options.endpoint_url, region_name=options.region,
                              aws_access_key_id="minieks", aws_secret_access_key="minieks",
                              config=Config(retries={"mode": "standard", "max_attempts": 3}))
        self.clock = RealClock()
        aws = AwsUtils(client, self.clock, options.instance_id, cluster_name=config.cluster_name,
                       additional_tags=config.additional_eni_tags)
        self.ctx = IpamContext(config, aws, HttpMetadata(options.endpoint_url, options.instance_id), self.clock,
                               network=network or _node_network(options, config), cluster=cluster or StaticCluster())
        self.stop_event = threading.Event()
        self._servers: list = []
        self._loop: threading.Thread | None = None

    def start(self) -> None:
        ctx = self.ctx
        metrics = IpamdMetrics()
        ctx.metrics = metrics
        ctx.aws.on_call = lambda api, error, seconds: (metrics.aws_api_call(api, seconds * 1000, error or ""),
                                                       metrics.ec2_request(api, failed=error is not None))
        ctx.node_init()
        metrics.datastores = [ctx.ds]
        metrics.set_limits(ctx.limits.max_eni - ctx.unmanaged_enis,
                           ctx.limits.max_ips_per_eni * (ctx.limits.max_eni - ctx.unmanaged_enis))
        hooks = metrics.rpc_hooks(RpcHooks(released=self._released))
        handler = RpcHandler([ctx.ds], config=ctx.config, vpc_cidrs=list(ctx.instance.vpc_cidrs), hooks=hooks,
                             node=NodeInfo(ipv4=ctx.instance.primary_ip, instance_id=ctx.instance.instance_id,
                                           region=self.options.region))
        rpc = RpcServer(handler, socket_path=self.options.socket_path)
        rpc.start()
        self._servers.append(rpc)
        with self._in_node():
            if not ctx.config.disable_introspection:
                intro = Introspection([ctx.ds], ctx.config, eni_config_name=self._eni_config_name,
                                      address=ctx.config.introspection_bind_address)
                intro.start()
                self._servers.append(intro)
            if not ctx.config.disable_metrics:
                server = MetricsServer(metrics, port=ctx.config.metrics_port, host=self.options.metrics_host)
                server.start()
                self._servers.append(server)
        self._loop = threading.Thread(target=ctx.run, args=(self.stop_event,), name="ipamd-pool", daemon=True)
        self._loop.start()
        log.info("ipamd is running for %s", self.options.instance_id)

    def _released(self, ds, release) -> None:
        if self.ctx.pd and release.ip:
            self.ctx.mode_release_pending = True

    def _eni_config_name(self) -> str | None:
        config = self.ctx.cluster.eni_config()
        return config.name if config else None

    def _in_node(self):
        if not self.options.node_namespace:
            return contextlib.nullcontext()
        from minieks.fabric import netns
        return netns.entered(self.options.node_namespace)

    def stop(self) -> None:
        """SIGTERM: stop attaching or detaching anything, then close the sockets."""
        self.ctx.stop()
        self.stop_event.set()
        for server in reversed(self._servers):
            with contextlib.suppress(Exception):
                server.stop()
        self._servers.clear()

    def serve_until_signalled(self) -> None:
        done = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: done.set())
        self.start()
        done.wait()
        self.stop()


def _node_network(options: DaemonOptions, config: IpamdConfig) -> NodeNetwork | None:
    if not options.node_namespace:
        return None
    from minieks.netsetup.node_network import KernelNodeNetwork
    return KernelNodeNetwork(options.node_namespace, config)


def run_from_environment(options: DaemonOptions, max_pods: int | None, metrics_port: int = 61678,
                         kubeconfig: str | None = None, node_name: str | None = None) -> None:
    """Read the aws-node environment as upstream does, then run until SIGTERM.

    With a kubeconfig, max pods and ENIConfigs come from the Kubernetes API (the node's capacity),
    after waiting for the node to register, as aws-node does; otherwise from --max-pods (110 if
    absent, upstream's fallback without an API server)."""
    config = dataclasses.replace(IpamdConfig.from_env(os.environ), metrics_port=metrics_port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cluster = StaticCluster(max_pods)
    node_name = node_name or config.node_name
    if kubeconfig and node_name:
        from minieks.ipamd.kube_cluster import KubernetesCluster
        api = KubernetesCluster(kubeconfig, node_name, config.eni_config_annotation_def, config.eni_config_label_def)
        if api.wait_for_node():
            cluster = api
        else:
            log.warning("node %s did not appear in the API server; using max pods %s", node_name, max_pods or 110)
    IpamdDaemon(options, config, cluster=cluster).serve_until_signalled()
