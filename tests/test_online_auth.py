"""Data-plane auth: keys, tokens, regenerated keys, other endpoints' credentials, auth_mode none."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Iterator

import pytest

from test_online_gateway_support import OnlineHost, auth, churn_body, fire, make_home, module_host, serve_churn
from toolkit.errors import InvalidSpec
from toolkit.context import HostContext, HostSettings
from toolkit.credentials import issue_token, new_key
from toolkit.online.service import OnlineService
from toolkit.registry import Registry
from toolkit.store import Store

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, demo_registry: Path) -> Iterator[OnlineHost]:
    yield from module_host(tmp_path_factory, demo_registry, "auth")


@pytest.fixture(scope="module")
def keyed(host: OnlineHost) -> dict[str, str]:
    return serve_churn(host, {"blue": 100}, endpoint="keyed", auth_mode="key")


def _score(host: OnlineHost, endpoint: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    r = fire(f"{host.url}/endpoints/{endpoint}/score", 1, body=churn_body(1), headers=headers)[0]
    return r.status, r.json()


def test_key_mode(host: OnlineHost, keyed: dict[str, str]) -> None:
    status, body = _score(host, "keyed", {})
    assert status == 401 and body["error_code"] == "Unauthorized" and "missing" in body["message"]
    status, body = _score(host, "keyed", {"Authorization": "Bearer " + new_key()})
    assert status == 401 and "invalid key" in body["message"]
    status, body = _score(host, "keyed", {"Authorization": "Basic abc"})
    assert status == 401 and "malformed" in body["message"]
    assert _score(host, "keyed", auth(keyed, "primary_key"))[0] == 200
    assert _score(host, "keyed", auth(keyed, "secondary_key"))[0] == 200

    other = host.create_endpoint("other-keyed", auth_mode="key")
    status, body = _score(host, "keyed", auth(other))
    assert status == 401
    assert other["primary_key"] not in body["message"]  # never echo a credential


def test_regenerated_primary_is_rejected_and_secondary_still_works(host: OnlineHost, keyed: dict[str, str]) -> None:
    old = dict(keyed)
    new_primary = new_key()
    host.store.put_secrets("keyed", new_primary, old["secondary_key"], old["token_secret"])
    host.call(host.service.endpoint_changed("keyed"))  # what the control plane does after regenerate-keys
    assert _score(host, "keyed", auth(old, "primary_key"))[0] == 401
    assert _score(host, "keyed", auth(old, "secondary_key"))[0] == 200
    assert _score(host, "keyed", {"Authorization": f"Bearer {new_primary}"})[0] == 200
    keyed["primary_key"] = new_primary


def test_token_mode(host: OnlineHost, keyed: dict[str, str]) -> None:
    secrets = host.create_endpoint("tokened", auth_mode="token")
    token = issue_token("tokened", secrets["token_secret"])["accessToken"]
    # A valid token passes auth; with no deployment yet the answer is "no traffic", not 401.
    status, body = _score(host, "tokened", {"Authorization": f"Bearer {token}"})
    assert status == 404 and "traffic" in body["message"]
    expired = issue_token("tokened", secrets["token_secret"], ttl_s=60, now=time.time() - 3600)["accessToken"]
    status, body = _score(host, "tokened", {"Authorization": f"Bearer {expired}"})
    assert status == 401 and "expired" in body["message"]
    # A key is not a token, and a token of another endpoint never verifies here (nor vice versa).
    assert _score(host, "tokened", auth(secrets))[0] == 401
    other = issue_token("keyed", keyed["token_secret"])["accessToken"]
    assert _score(host, "tokened", {"Authorization": f"Bearer {other}"})[0] == 401
    assert _score(host, "keyed", {"Authorization": f"Bearer {token}"})[0] == 401


def test_none_mode_on_loopback(host: OnlineHost, keyed: dict[str, str]) -> None:
    host.create_endpoint("open", auth_mode="none")
    status, body = _score(host, "open", {})
    assert status == 404 and "traffic" in body["message"]  # auth passed without a credential


def test_none_mode_is_refused_on_a_public_host(tmp_path: Path, demo_registry: Path) -> None:
    home = make_home(tmp_path / "home", demo_registry)
    store = Store(home.state_db)
    ctx = HostContext(home=home, store=store, registry=Registry(home), settings=HostSettings(host="0.0.0.0"))
    svc = OnlineService(ctx)
    store.put("online-endpoint", "open", "open", {"name": "open", "auth_mode": "none"}, "Succeeded")
    with pytest.raises(InvalidSpec, match="loopback"):
        asyncio.run(svc.endpoint_changed("open"))
    assert "open" not in svc.tables

    # After a restart on a public address, a stored open endpoint is served with keys instead.
    async def restart() -> str:
        await svc.start()
        try:
            return svc.tables["open"].auth_mode
        finally:
            await svc.stop()

    assert asyncio.run(restart()) == "key"
    assert [e.reason for e in store.events(endpoint="open")] == ["AuthModeRefused"]
    store.close()
