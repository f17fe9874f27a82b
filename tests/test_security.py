"""Other local users get nothing: private endpoint state, sealed keys, same-user-only instance
sockets; and token revocation.

The checks that need a second Unix user run the real tools (``cat``, ``curl --unix-socket``) as
``nobody`` through ``setpriv``/``runuser``, so they need root (CI runs as root) and skip elsewhere.
Their workspace lives in a folder ``nobody`` can traverse, and each has a control check that
``nobody`` *can* read a public file beside the private state, so a refusal means our permissions
refused, not an unrelated folder on the way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx
import jwt
import pytest

from conftest import free_port, run_cli
from toolkit.errors import Unauthorized
from toolkit.home import Home
from toolkit import credentials
from toolkit.online import auth
from toolkit.runtime.unix_socket import socket_dir
from toolkit.secretbox import SecretBox
from toolkit.store import Store

pytestmark = pytest.mark.timeout(600)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CHURN_BODY = json.loads((EXAMPLES / "churn-request.json").read_text())
NOBODY = 65534


def _as_other_user_prefix() -> list[str] | None:
    if os.geteuid() != 0:
        return None
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    return None


OTHER_USER = _as_other_user_prefix()
needs_other_user = pytest.mark.skipif(
    OTHER_USER is None or shutil.which("curl") is None,
    reason="needs root (to act as user 'nobody' via setpriv or runuser) and curl; CI runs as root",
)


def as_nobody(*cmd: str) -> subprocess.CompletedProcess[str]:
    assert OTHER_USER is not None
    return subprocess.run([*OTHER_USER, *cmd], capture_output=True, text=True, timeout=60, cwd="/")


def curl_unix(sock: Path, path: str, *, user: str, body: dict | None = None) -> tuple[int, str]:
    """(curl exit code, "<http status> <body>") of one request over the socket, as ``user``."""
    cmd = ["curl", "-sS", "--max-time", "20", "--unix-socket", str(sock), "-w", " %{http_code}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
    cmd.append(f"http://instance{path}")
    proc = as_nobody(*cmd) if user == "nobody" else subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def loose_entries(home: Home) -> list[str]:
    """Everything under ``endpoints/`` that group or others may use."""
    out = [] if mode(home.endpoints) & 0o077 == 0 else [f"{home.endpoints} {oct(mode(home.endpoints))}"]
    for folder, dirs, files in os.walk(home.endpoints):
        for name in (*dirs, *files):
            p = Path(folder) / name
            if not p.is_symlink() and mode(p) & 0o077:
                out.append(f"{p} {oct(mode(p))}")
    return out


def wait_for(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def public_home(demo_registry: Path, name: str) -> Home:
    """A workspace home in a folder other users can traverse (pytest's tmp folders are 0700)."""
    root = Path(tempfile.mkdtemp(prefix=f"ept-{name}-", dir="/tmp"))
    os.chmod(root, 0o755)
    shutil.copy(demo_registry / "mlflow.db", root / "mlflow.db")
    (root / "PUBLIC.txt").write_text("anyone may read this\n")
    os.chmod(root / "PUBLIC.txt", 0o644)
    return Home(root)


def _use_home(mp: pytest.MonkeyPatch, home: Home) -> Home:
    mp.setenv("ENDPOINTS_HOME", str(home.root))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
    home.ensure()
    home.configure_mlflow()
    return home


@pytest.fixture(scope="module")
def served(demo_registry: Path) -> Iterator[dict]:
    """One host with a key endpoint ``sec`` (deployment ``blue``, 1 instance) and a token endpoint."""
    from toolkit import Workspace
    from toolkit.host import daemon

    home = public_home(demo_registry, "served")
    with pytest.MonkeyPatch.context() as mp:
        _use_home(mp, home)
        ws = Workspace(home, port=free_port())
        try:
            ws.online_endpoints.create_or_update({"name": "sec", "auth_mode": "key"})
            ws.online_deployments.create_or_update(
                {"name": "blue", "endpoint_name": "sec", "model": "models:/churn/1",
                 "instance_type": "cpu-small", "instance_count": 1}, all_traffic=True)
            ws.online_endpoints.create_or_update({"name": "tok", "auth_mode": "token"})
            socks = wait_for(lambda: sorted(socket_dir(home.run_dir).glob("*.sock")), "the instance socket")
            yield {"ws": ws, "home": home, "sock": socks[0]}
        finally:
            ws.close()
            daemon.stop(home)
            shutil.rmtree(home.root, ignore_errors=True)


def _score(ws, endpoint: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{ws.url}/endpoints/{endpoint}/score", json=CHURN_BODY, headers=headers, timeout=30)


# --- file modes ---------------------------------------------------------------------------------
def test_endpoint_state_is_owner_only(served: dict) -> None:
    home: Home = served["home"]
    # The files that matter are there (so the walk below really covers them) ...
    wal = home.state_db.with_name("state.db-wal")
    for p in (home.state_db, wal, home.state_db.with_name("state.db-shm"), home.secrets_key,
              home.admin_token_file, home.host_json, home.host_log):
        assert p.exists(), p
    assert list(home.logs.rglob("blue-*.log")), "no instance log"
    # ... and every one of them, folders included, is owner-only.
    assert loose_entries(home) == []
    assert mode(home.endpoints) == 0o700 and mode(home.state_db) == 0o600 and mode(wal) == 0o600
    sock = served["sock"]
    assert stat.S_ISSOCK(os.lstat(sock).st_mode) and mode(sock) == 0o600
    assert mode(sock.parent) == 0o700


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the umask from /proc (Linux)")
def test_host_and_instances_run_with_a_private_umask(served: dict) -> None:
    """Whatever the host or its children create later (job outputs, caches, logs) is owner-only."""
    from toolkit.host import daemon

    ws, home = served["ws"], served["home"]
    host_pid = daemon.read_host(home).pid
    instance_pids = [i["pid"] for i in ws.online_deployments.get("sec", "blue").to_dict()["instances"]]
    assert instance_pids
    for pid in (host_pid, *instance_pids):
        umask = next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                     if line.startswith("Umask:"))
        assert umask == "0077", (pid, umask)


# --- another user ------------------------------------------------------------------------------
@needs_other_user
def test_another_user_cannot_read_the_state_or_logs(served: dict) -> None:
    home: Home = served["home"]
    # Control: nobody reaches the home folder itself, so the refusals below are our permissions.
    public = as_nobody("cat", str(home.root / "PUBLIC.txt"))
    assert public.returncode == 0 and "anyone" in public.stdout, public.stderr
    targets = [home.state_db, home.state_db.with_name("state.db-wal"), home.state_db.with_name("state.db-shm"),
               home.secrets_key, home.admin_token_file, home.host_json, home.host_log,
               *home.logs.rglob("*.log")]
    for target in targets:
        proc = as_nobody("cat", str(target))
        assert proc.returncode != 0 and "Permission denied" in proc.stderr, (target, proc.stdout[:200])
    listing = as_nobody("ls", str(home.endpoints))
    assert listing.returncode != 0 and "Permission denied" in listing.stderr


@needs_other_user
def test_another_user_cannot_connect_to_an_instance(served: dict) -> None:
    sock = served["sock"]
    code, out = curl_unix(sock, "/health/live", user="root")
    assert code == 0 and out.endswith(" 200"), out  # control: the socket answers its owner
    for path, body in (("/health/live", None), ("/score", CHURN_BODY)):
        code, out = curl_unix(sock, path, user="nobody", body=body)
        assert code != 0 and "predictions" not in out, out


@needs_other_user
def test_instance_refuses_another_uid_even_when_the_socket_is_reachable(served: dict) -> None:
    """Defence in depth: with folder and socket modes opened up by mistake, the peer-credential
    check still refuses the other user (403, closed before the request is read)."""
    sock = served["sock"]
    loosened = [(p, mode(p)) for p in (served["home"].endpoints, sock.parent, sock)]
    try:
        def refused_with_403() -> str | None:
            # A restarted instance binds a new socket (0600 again): loosen whatever is there now.
            wait_for(sock.is_socket, "the instance socket")
            for p, _ in loosened:
                os.chmod(p, 0o777 if p == sock else 0o711)
            code, out = curl_unix(sock, "/score", user="nobody", body=CHURN_BODY)
            assert "predictions" not in out, out
            return out if code == 0 else None

        out = wait_for(refused_with_403, "an answer to the other user")
        assert out.endswith(" 403") and "own user" in out, out
        code, out = curl_unix(sock, "/score", user="root", body=CHURN_BODY)
        assert code == 0 and out.endswith(" 200") and "predictions" in out, out
        # The instance says so in its log (rate-limited, so a connect loop cannot fill the disk).
        logs = list(served["home"].logs.rglob("blue-*.log"))
        wait_for(lambda: any(f"refused a connection from uid {NOBODY}" in p.read_text() for p in logs),
                 "the refusal in the instance log")
    finally:
        for p, m in loosened:
            os.chmod(p, m)


# --- sealed keys ---------------------------------------------------------------------------------
def test_a_copy_of_state_db_holds_no_working_key(served: dict, tmp_path: Path) -> None:
    ws, home = served["ws"], served["home"]
    creds = ws.online_endpoints.get_credentials("sec")
    assert _score(ws, "sec", creds["primaryKey"]).status_code == 200  # the key shown is the real one
    with Store(home.state_db) as live:  # the host's own view, to learn the token secret too
        token_secret = live.get_secrets("sec")["token_secret"]
    files = [home.state_db, home.state_db.with_name("state.db-wal")]
    raw = b"".join(p.read_bytes() for p in files)
    for secret in (creds["primaryKey"], creds["secondaryKey"], token_secret):
        assert secret.encode() not in raw
    # A stolen copy (without secrets.key) opens, but its credentials do not.
    stolen = tmp_path / "stolen"
    stolen.mkdir()
    src = sqlite3.connect(f"file:{home.state_db}?mode=ro", uri=True)
    dst = sqlite3.connect(stolen / "state.db")
    src.backup(dst)  # a consistent copy of the live database, WAL included
    src.close()
    dst.close()
    assert creds["primaryKey"].encode() not in (stolen / "state.db").read_bytes()
    with Store(stolen / "state.db") as copy:
        assert copy.get("online-endpoint", "sec").name == "sec"
        assert copy.get_secrets("sec") is None


def test_an_old_home_is_repaired_and_its_keys_sealed_at_start(demo_registry: Path) -> None:
    home = public_home(demo_registry, "old")
    try:
        with pytest.MonkeyPatch.context() as mp:
            _use_home(mp, home)
            # What an older version left: plain-text keys and 0644/0755 state.
            store = Store(home.state_db)
            store.put("online-endpoint", "legacy", "legacy", {"name": "legacy", "auth_mode": "key"}, "Succeeded")
            store.close()
            old = {"primary_key": "legacy-primary-" + "p" * 30, "secondary_key": "legacy-secondary-" + "s" * 30,
                   "token_secret": "legacy-token-secret-" + "t" * 40}
            con = sqlite3.connect(home.state_db)
            con.execute("INSERT INTO secrets VALUES ('legacy', ?, ?, ?, 0)", tuple(old.values()))
            con.commit()
            con.close()
            home.secrets_key.unlink()
            assert old["primary_key"].encode() in home.state_db.read_bytes()
            (home.jobs / "old-job").mkdir()
            (home.jobs / "old-job" / "predictions.csv").write_text("a,b\n")
            home.host_log.write_text("an old log line\n")
            home.admin_token(create=True)
            for p in (home.endpoints, *home.endpoints.rglob("*")):
                os.chmod(p, 0o755 if p.is_dir() else 0o644)
            assert loose_entries(home)

            port = free_port()
            up = run_cli("up", "--port", str(port), home=home)
            assert up.returncode == 0, up.stderr
            try:
                assert loose_entries(home) == []
                assert "took group/other permissions off" in home.host_log.read_text()
                assert mode(home.secrets_key) == 0o600
                raw = b"".join(p.read_bytes() for p in home.endpoints.glob("state.db*"))
                for secret in old.values():
                    assert secret.encode() not in raw, "plain text left in the database files"
                creds = json.loads(run_cli("online-endpoint", "get-credentials", "--name", "legacy", "-o", "json",
                                           home=home).stdout)
                assert (creds["primaryKey"], creds["secondaryKey"]) == (old["primary_key"], old["secondary_key"])
                # The migrated key still opens the endpoint (404: no deployment yet, not 401).
                r = httpx.post(f"http://127.0.0.1:{port}/endpoints/legacy/score", json=CHURN_BODY,
                               headers={"Authorization": f"Bearer {old['primary_key']}"})
                assert r.status_code == 404 and "traffic" in r.json()["message"], r.text
            finally:
                run_cli("down", home=home)
    finally:
        shutil.rmtree(home.root, ignore_errors=True)


def test_secret_box_key_file_and_wrong_key(tmp_path: Path) -> None:
    key_file = tmp_path / "endpoints" / "secrets.key"
    box = SecretBox.at(key_file)
    assert mode(key_file) == 0o600 and SecretBox.at(key_file).open(box.seal("k")) == "k"
    sealed = box.seal("a-key")
    assert "a-key" not in sealed and sealed.startswith("fernet:") and box.open(sealed) == "a-key"
    # A store whose key file was replaced keeps working, and says those credentials are gone.
    store = Store(tmp_path / "endpoints" / "state.db")
    store.put_secrets("e1", "p", "s", "t")
    store.close()
    key_file.unlink()
    with Store(tmp_path / "endpoints" / "state.db") as store:
        assert store.get_secrets("e1") is None
        store.put_secrets("e1", **credentials.regenerated(None, "primary"))
        assert store.get_secrets("e1")["primary_key"] not in ("p", "s")
    key_file.write_text("not a key\n")
    with pytest.raises(Exception, match="not a valid key file"):
        Store(tmp_path / "endpoints" / "state.db")


def test_socket_folder_squatted_by_someone_else_is_not_used(tmp_path: Path) -> None:
    run_dir = tmp_path / ("deep-" * 30) / "run"  # too long for sun_path: the temp-dir fallback
    squatted = Path(tempfile.gettempdir()) / f"ept-{os.getuid()}-{hashlib.sha1(str(run_dir).encode()).hexdigest()[:8]}"
    squatted.write_text("not a folder of ours")
    try:
        chosen = socket_dir(run_dir)
        assert chosen != squatted and chosen.is_dir() and mode(chosen) == 0o700
        assert len(str(chosen / "0123456789ab.sock")) <= 100
        chosen.rmdir()
    finally:
        squatted.unlink()


# --- tokens ----------------------------------------------------------------------------------------
def test_rotating_the_token_secret_revokes_issued_tokens(served: dict) -> None:
    ws, home = served["ws"], served["home"]
    issued = ws.online_endpoints.get_credentials("tok")["accessToken"]
    r = _score(ws, "tok", issued)
    assert r.status_code == 404 and "traffic" in r.json()["message"]  # auth passed
    rotated = run_cli("online-endpoint", "regenerate-keys", "--name", "tok", "--key-type", "token", home=home)
    assert rotated.returncode == 0, rotated.stderr
    assert "token-signing secret" in rotated.stdout and "no longer work" in rotated.stdout
    r = _score(ws, "tok", issued)
    assert r.status_code == 401 and "invalid token" in r.json()["message"] and issued not in r.text
    fresh = ws.online_endpoints.get_credentials("tok")["accessToken"]
    assert _score(ws, "tok", fresh).status_code == 404
    with Store(home.state_db) as live:
        assert any(e.reason == "KeyRegenerated" and "revoked" in e.message for e in live.events(endpoint="tok"))
    help_text = run_cli("online-endpoint", "regenerate-keys", "--help").stdout
    assert "token" in help_text and "revoke" in help_text


def test_a_token_without_expiry_is_refused(served: dict) -> None:
    ws, home = served["ws"], served["home"]
    with Store(home.state_db) as live:
        secret = live.get_secrets("tok")["token_secret"]
    forever = jwt.encode({"iss": "endpoints-toolkit", "aud": "tok", "sub": "tok", "iat": int(time.time())},
                         secret, algorithm="HS256")
    r = _score(ws, "tok", forever)
    assert r.status_code == 401 and "'exp'" in r.json()["message"], r.text
    with pytest.raises(Unauthorized, match="'exp'"):
        auth.verify("tok", "token", f"Bearer {forever}", {"token_secret": secret})
    # Control: the same claims with an expiry pass.
    auth.verify("tok", "token", f"Bearer {credentials.issue_token('tok', secret)['accessToken']}", {"token_secret": secret})


def test_regenerated_renews_only_the_asked_credential() -> None:
    row = credentials.new_secrets()
    for key_type, field in (("primary", "primary_key"), ("secondary", "secondary_key"), ("token", "token_secret")):
        new = credentials.regenerated(row, key_type)
        assert new[field] != row[field]
        assert {k: v for k, v in new.items() if k != field} == {k: v for k, v in row.items() if k != field}
    with pytest.raises(ValueError, match="key_type"):
        credentials.regenerated(row, "tertiary")
