"""ipamd's gRPC server on its unix socket (upstream RunRPCHandler; spec §0 step 7, §7.5).

Serves the RpcHandler as rpc.CNIBackend and rpc.ConfigServerBackend, plus gRPC health
(`grpc.health.v1.aws-node` SERVING, which the aws-node entrypoint and grpc-health-probe poll)
and server reflection (so grpcurl can list and call it), all on one socket.
"""

from __future__ import annotations

import logging
import os
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from minieks.ipamd.rpc import rpc_pb2, rpc_pb2_grpc
from minieks.ipamd.rpc_handler import RpcHandler, RpcStatusError

log = logging.getLogger("ipamd")

DEFAULT_SOCKET_PATH = "/var/run/aws-node/ipamd.sock"
HEALTH_SERVICE_NAME = "grpc.health.v1.aws-node"
SOCKET_MODE = 0o660


class _CniBackend(rpc_pb2_grpc.CNIBackendServicer):
    def __init__(self, handler: RpcHandler):
        self.handler = handler

    def AddNetwork(self, request, context):  # noqa: N802 (gRPC method name)
        try:
            return self.handler.add_network(request)
        except RpcStatusError as err:
            context.abort(err.code, err.message)

    def DelNetwork(self, request, context):  # noqa: N802
        try:
            return self.handler.del_network(request)
        except RpcStatusError as err:
            context.abort(err.code, err.message)


class _ConfigServer(rpc_pb2_grpc.ConfigServerBackendServicer):
    def __init__(self, handler: RpcHandler):
        self.handler = handler

    def GetNetworkPolicyConfigs(self, request, context):  # noqa: N802
        return self.handler.get_network_policy_configs()


@dataclass
class RpcServer:
    """The handler on `unix:<socket_path>`; start() returns once it accepts connections."""

    handler: RpcHandler
    socket_path: str = DEFAULT_SOCKET_PATH
    max_workers: int = 8
    _server: grpc.Server | None = field(default=None, init=False, repr=False)
    _health: health.HealthServicer | None = field(default=None, init=False, repr=False)

    @property
    def target(self) -> str:
        return f"unix:{self.socket_path}"

    def start(self) -> None:
        """Remove a stale socket, create its directory, bind, serve, chmod the socket 0660."""
        if self._server is not None:
            raise RuntimeError("rpc server already started")
        directory = os.path.dirname(self.socket_path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if os.path.lexists(self.socket_path):
            os.unlink(self.socket_path)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.max_workers,
                                                        thread_name_prefix="ipamd-rpc"))
        rpc_pb2_grpc.add_CNIBackendServicer_to_server(_CniBackend(self.handler), server)
        rpc_pb2_grpc.add_ConfigServerBackendServicer_to_server(_ConfigServer(self.handler), server)
        self._health = health.HealthServicer()
        for name in ("", HEALTH_SERVICE_NAME):  # "" is what a probe without -service asks
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = [rpc_pb2.DESCRIPTOR.services_by_name[s].full_name
                 for s in ("CNIBackend", "ConfigServerBackend")]
        names += [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, server)
        if not server.add_insecure_port(self.target):
            raise OSError(f"failed to listen on {self.target}")
        server.start()
        os.chmod(self.socket_path, SOCKET_MODE)
        self._server = server
        log.info("Serving RPC Handler on %s", self.target)

    def stop(self, grace: float | None = 1.0) -> None:
        """Report NOT_SERVING, finish in-flight calls (up to `grace` s), remove the socket."""
        if self._server is None:
            return
        if self._health is not None:
            self._health.enter_graceful_shutdown()
        self._server.stop(grace).wait()
        self._server = None
        if os.path.lexists(self.socket_path):
            os.unlink(self.socket_path)

    def __enter__(self) -> RpcServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
