"""The host's local Dask clusters: only the host and its workers connect; the dashboard is deliberate.

Real host (a subprocess), real batch jobs, real ``distributed.Client`` connection attempts.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from distributed import Client, Security

from conftest import free_port, run_cli
from toolkit.batch.cluster_access import DASHBOARD_ENV, DashboardSetting
from toolkit.demo.data import write_oj_weekly_files
from toolkit.home import Home


def _run_job(ws: Any, inputs: Path) -> dict[str, Any]:
    """A real job on the host's local cluster; returns the host's cluster info once it completed."""
    if not list(ws.batch_endpoints.list()):
        ws.batch_endpoints.create_or_update({"name": "oj-sales"})
        ws.batch_deployments.create_or_update(
            {"name": "forest", "endpoint_name": "oj-sales", "model": "models:/oj-sales/1", "mini_batch_size": 2,
             "resources": {"instance_count": 1}},
            set_default=True,
        )
    job = ws.batch_endpoints.invoke("oj-sales", inputs).wait(timeout=240)
    assert job.state == "Completed", job.message
    return ws.status().to_dict()["cluster"]


def _listening(pid: int) -> set[tuple[str, int]]:
    return {(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN}


def _attacker_files(tmp_path: Path, host: str, port: int) -> tuple[Path, Path, Path]:
    """An attacker who trusts the host's (public) certificate and holds a certificate of its own.

    Its client side then accepts the server, so a refusal can only come from the host checking
    the client's certificate.
    """
    ca, cert, key = tmp_path / "host-cert.pem", tmp_path / "own-cert.pem", tmp_path / "own-key.pem"
    ca.write_text(ssl.get_server_certificate((host, port)))
    own = Security.temporary()
    cert.write_text(own.tls_client_cert)
    key.write_text(own.tls_client_key)
    return ca, cert, key


def _attacker_security(tmp_path: Path, scheduler: str) -> Security:
    host, port = scheduler.removeprefix("tls://").rsplit(":", 1)
    ca, cert, key = _attacker_files(tmp_path, host, int(port))
    return Security(tls_ca_file=str(ca), tls_client_cert=str(cert), tls_client_key=str(key), require_encryption=True)


def _refuses_a_stranger(tmp_path: Path, port: int) -> bool:
    """Whether a TLS peer with its own certificate is cut off before it gets a byte back."""
    ca, cert, key = _attacker_files(tmp_path, "127.0.0.1", port)
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(cert), str(key))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"\x00" * 16)
                return tls.recv(1) == b""  # TLS 1.3: the host's verdict on our certificate arrives here
        except (ssl.SSLError, ConnectionError):
            return True


def test_the_local_scheduler_refuses_clients_without_the_host_certificate(workspace, tmp_path: Path) -> None:
    inputs = tmp_path / "weekly"
    write_oj_weekly_files(inputs, weeks=4, stores=5)
    cluster = _run_job(workspace, inputs)  # the host's own workers connected over TLS
    local = cluster["local"]
    assert local["security"] == "tls"
    scheduler = local["pools"][0]["scheduler"]
    assert scheduler.startswith("tls://127.0.0.1:"), scheduler

    marker = tmp_path / "ran-inside-the-host"

    def plant() -> None:  # what an attacker would run inside the host
        Path(marker).write_text("owned")

    attempts = {
        "plain tcp, no credentials": dict(address=scheduler.replace("tls://", "tcp://", 1)),
        "tls with a certificate of its own": dict(address=scheduler, security=Security.temporary()),
        "tls trusting the host, own client certificate": dict(address=scheduler,
                                                              security=_attacker_security(tmp_path, scheduler)),
    }
    for what, kwargs in attempts.items():
        with pytest.raises((OSError, TimeoutError, ValueError, TypeError)) as refused:
            client = Client(timeout="5s", **kwargs)
            try:
                client.run_on_scheduler(plant)
            finally:
                client.close()
        assert not marker.exists(), f"{what}: code ran inside the host"
        print(what, "->", type(refused.value).__name__)

    # The refused handshakes left the scheduler serving its own workers.
    assert _run_job(workspace, inputs)["local"]["pools"][0]["scheduler"] == scheduler

    # Every other port the host listens on (its schedulers, the Nannies it runs) cuts off a TLS
    # stranger too, and none answers HTTP: no dashboard unless asked.
    status = workspace.status().to_dict()
    assert local["dashboard"]["enabled"] is False and local["pools"][0]["dashboard"] is None
    api_port = int(status["url"].rstrip("/").rsplit(":", 1)[1])
    dask_ports = {port for _, port in _listening(status["pid"])} - {api_port}
    assert scheduler.endswith(tuple(f":{p}" for p in dask_ports))
    for port in dask_ports:
        assert _refuses_a_stranger(tmp_path, port), port
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)

    shown = run_cli("status", home=workspace.home)
    assert shown.returncode == 0, shown.stderr
    assert "TLS: only the host and its workers connect" in shown.stdout
    assert f"dashboard off (set {DASHBOARD_ENV}=on" in shown.stdout


def test_the_dashboard_when_asked_is_on_loopback_and_shown(home: Home, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit import Workspace
    from toolkit.host import daemon

    monkeypatch.setenv(DASHBOARD_ENV, "on")
    ws = Workspace(home, port=free_port())
    try:
        inputs = tmp_path / "weekly"
        write_oj_weekly_files(inputs, weeks=2, stores=5)
        local = _run_job(ws, inputs)["local"]
        board = local["dashboard"]
        assert board["enabled"] is True and len(board["urls"]) == 1, board
        url = board["urls"][0]
        assert url.startswith("http://127.0.0.1:") and local["pools"][0]["dashboard"] == url
        assert httpx.get(url + "health", timeout=10).text == "ok"
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        pid = ws.status().to_dict()["pid"]
        assert ("127.0.0.1", port) in _listening(pid)
        assert not any(p == port and ip != "127.0.0.1" for ip, p in _listening(pid))

        shown = run_cli("status", home=home)
        assert shown.returncode == 0, shown.stderr
        assert f"dashboard {url}" in shown.stdout
    finally:
        ws.close()
        daemon.stop(home)


@pytest.mark.parametrize("raw, enabled, port", [
    ("", False, 0), ("off", False, 0), ("0", False, 0), ("on", True, 0), ("1", True, 0),
    ("8787", True, 8787), (":8788", True, 8788), ("127.0.0.1:8789", True, 8789), ("localhost:8790", True, 8790),
])
def test_dashboard_setting_values(raw: str, enabled: bool, port: int) -> None:
    setting = DashboardSetting.parse(raw)
    assert (setting.enabled, setting.port, setting.error) == (enabled, port, None)


@pytest.mark.parametrize("raw, says", [
    ("0.0.0.0:8787", "loopback only"), ("10.1.2.3:8787", "loopback only"), ("70000", "between 1 and 65535"),
    ("maybe", "expected 'on', 'off' or a port"),
])
def test_dashboard_setting_refuses_other_interfaces_and_bad_ports(raw: str, says: str) -> None:
    setting = DashboardSetting.parse(raw)
    assert not setting.enabled and says in (setting.error or "") and DASHBOARD_ENV in setting.error
    assert setting.describe().startswith("off (")
