"""The CNI plugin's gRPC client to ipamd (upstream cni.go's grpcClient; spec §7.3, §7.4, §9).

One call per plugin run: dial `unix:<socket>`, AddNetwork or DelNetwork with a deadline, close.
Failures raise IpamdCallError, whose str() is the text Go's status error prints
(`rpc error: code = Unavailable desc = ...`), so the plugin can wrap it exactly as upstream:
`add cmd: Error received from AddNetwork gRPC call: <err>`.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from minieks.ipamd.rpc import rpc_pb2, rpc_pb2_grpc
from minieks.ipamd.rpc import VERSION

DEFAULT_SOCKET_PATH = "/var/run/aws-node/ipamd.sock"
DEFAULT_TIMEOUT = 10.0
UNKNOWN_POD = "datastore: unknown pod"

# Go's codes.Code String(); Python spells them UPPER_SNAKE (and CANCELLED with two Ls)
_GO_CODE_NAMES = {
    grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown", grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded", grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition", grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange", grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal", grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss", grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}


def go_code_name(code: grpc.StatusCode) -> str:
    return _GO_CODE_NAMES.get(code, code.name.title().replace("_", ""))


class IpamdCallError(Exception):
    """A failed call to ipamd; str() is Go's status error text."""

    def __init__(self, code: grpc.StatusCode, details: str):
        self.code = code
        self.details = details
        super().__init__(f"rpc error: code = {go_code_name(code)} desc = {details}")

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> IpamdCallError:
        return cls(err.code(), err.details() or "")

    @property
    def unknown_pod(self) -> bool:
        """DEL of a pod ipamd never saw: the plugin reports success (`Container <id> not found`)."""
        return UNKNOWN_POD in self.details


def socket_target(socket: str) -> str:
    """A path or an address (`unix:...`, `unix:///...`) as a gRPC target."""
    return socket if socket.startswith("unix:") else f"unix:{socket}"


@dataclass
class IpamdClient:
    """Calls ipamd's CNIBackend. Use as a context manager, or call close()."""

    socket: str = DEFAULT_SOCKET_PATH
    timeout: float = DEFAULT_TIMEOUT
    client_version: str = VERSION

    def __post_init__(self) -> None:
        # no proxies on a unix socket; fail fast rather than wait for ipamd to appear
        self._channel = grpc.insecure_channel(socket_target(self.socket),
                                              options=[("grpc.enable_http_proxy", 0)])
        self._stub = rpc_pb2_grpc.CNIBackendStub(self._channel)

    def add_network(self, request: rpc_pb2.AddNetworkRequest | None = None,
                    **fields: object) -> rpc_pb2.AddNetworkReply:
        """AddNetwork; ClientVersion is filled in unless the request sets one."""
        request = request or rpc_pb2.AddNetworkRequest(**fields)
        if not request.ClientVersion:
            request.ClientVersion = self.client_version
        return self._call(self._stub.AddNetwork, request)

    def del_network(self, request: rpc_pb2.DelNetworkRequest | None = None,
                    **fields: object) -> rpc_pb2.DelNetworkReply:
        """DelNetwork; ClientVersion is filled in unless the request sets one."""
        request = request or rpc_pb2.DelNetworkRequest(**fields)
        if not request.ClientVersion:
            request.ClientVersion = self.client_version
        return self._call(self._stub.DelNetwork, request)

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise IpamdCallError.from_rpc_error(err) from None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> IpamdClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
