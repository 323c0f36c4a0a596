"""The board's HTTP server: the page, its files and the snapshot, on 127.0.0.1 only; a taken
port falls back to a free one; `minieks board` prints the recorded address once it answers."""

import json
import socket
import urllib.error
import urllib.request

import pytest

from minieks import cli
from minieks.web.board import Board
from minieks.web.server import BoardServer
from tests.web.fakes import FakeCluster


@pytest.fixture
def served():
    c = FakeCluster()
    node, ds = c.add_node("ip-a")
    c.secondary_ips(node, ds, 3)
    c.run_pod(ds, "ip-a", "web-1")
    server = BoardServer(Board(c.runtime, fetch_enis=c.fetch_enis), port=0).start()
    try:
        yield c, server
    finally:
        server.stop()


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def test_page_files_and_snapshot(served):
    _, server = served
    assert server.url.startswith("http://127.0.0.1:")
    status, ctype, body = get(server.url + "/")
    assert status == 200 and ctype.startswith("text/html") and b"/static/board.js" in body
    assert b"http" not in body.replace(b'http-equiv', b'')  # everything local: no CDN, no remote font
    assert get(server.url + "/static/board.js")[:2] == (200, "text/javascript; charset=utf-8")
    assert get(server.url + "/static/board.css")[0] == 200
    status, ctype, body = get(server.url + "/api/board")
    assert status == 200 and ctype == "application/json"
    snap = json.loads(body)
    assert snap["nodes"][0]["pods"][0]["name"] == "web-1"
    assert get(server.url + "/healthz")[2] == b"ok\n"
    assert get(server.url + "/static/../server.py")[0] == 404
    assert get(server.url + "/nope")[0] == 404


def test_binds_loopback_only(served):
    _, server = served
    assert server._server.server_address[0] == "127.0.0.1"


def test_taken_port_falls_back_to_a_free_one(served):
    c, first = served
    second = BoardServer(Board(c.runtime, fetch_enis=c.fetch_enis), port=first.port).start()
    try:
        assert second.port not in (0, first.port)
        assert get(second.url + "/healthz")[0] == 200
    finally:
        second.stop()
    with socket.socket() as probe:               # stopped: its port is free again
        probe.bind(("127.0.0.1", second.port))


def test_snapshot_error_is_a_500_with_the_reason(served):
    c, server = served
    c.runtime.store = None
    c.runtime.spec = None                        # the build now fails
    status, _, body = get(server.url + "/api/board")
    assert status == 500 and "error" in json.loads(body)


def test_cli_board_prints_the_recorded_address(served, tmp_path, monkeypatch, capsys):
    _, server = served
    monkeypatch.setenv("MINIEKS_STATE_ROOT", str(tmp_path))
    state = tmp_path / "mek-webtest"
    state.mkdir()
    (state / "endpoints.json").write_text(json.dumps({"board_url": server.url}))
    assert cli.main(["board", "--cluster", "webtest"]) == 0
    assert capsys.readouterr().out == server.url + "\n"
    dead = BoardServer(server.board, port=0).start()
    url = dead.url
    dead.stop()
    (state / "endpoints.json").write_text(json.dumps({"board_url": url}))
    assert cli.main(["board", "--cluster", "webtest"]) == 2
    assert "does not answer" in capsys.readouterr().err
    assert cli.main(["board", "--cluster", "nosuch"]) == 2


def test_kubectl_pointed_at_the_board_is_told_where_the_api_is(served, tmp_path):
    """kubectl without a kubeconfig asks http://localhost:8080, the board's port: its error says how to
    reach the cluster instead of a bare "could not find the requested resource"."""
    import os
    import shutil
    import subprocess

    _, server = served
    status, ctype, body = get(server.url + "/api?timeout=32s")
    assert (status, ctype) == (500, "text/plain; charset=utf-8")
    assert body.endswith(b"run: export KUBECONFIG=$(minieks kubeconfig)")
    assert get(server.url + "/apis/apps/v1")[0] == 500
    if shutil.which("kubectl") is None:
        return
    env = dict(os.environ, KUBECONFIG=str(tmp_path / "none"), HOME=str(tmp_path))
    out = subprocess.run(["kubectl", "--server", server.url, "get", "pods"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 1 and "not the Kubernetes API; run: export KUBECONFIG=$(minieks kubeconfig)" in out.stderr
