#!/usr/bin/env bash
# Regenerate the committed Python modules for ipamd's gRPC contract from rpc.proto.
# Needs the `dev` extra (grpcio-tools): .venv/bin/pip install -e '.[dev]'
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=src/minieks/ipamd/rpc
# -I makes the module names rpc_pb2 / rpc_pb2_grpc (the proto's own path stays "rpc.proto",
# which is what reflection reports, as upstream's does)
"$PY" -m grpc_tools.protoc -I "$OUT" --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" "$OUT/rpc.proto"
# protoc writes a top-level `import rpc_pb2`; make it a package-relative import
sed -i 's/^import rpc_pb2 as rpc__pb2$/from . import rpc_pb2 as rpc__pb2/' "$OUT/rpc_pb2_grpc.py"
grep -q '^from . import rpc_pb2 as rpc__pb2$' "$OUT/rpc_pb2_grpc.py"
echo "generated $OUT/rpc_pb2.py $OUT/rpc_pb2.pyi $OUT/rpc_pb2_grpc.py"
