"""The host's HTML page and an endpoint's Swagger UI: over HTTP, then in a real headless browser
whose network log proves that no request left the machine (no CDN)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _deploy_churn(ws) -> str:
    from toolkit.specs import OnlineDeployment, OnlineEndpoint, load_spec

    ws.online_endpoints.create_or_update(load_spec(OnlineEndpoint, EXAMPLES / "churn-endpoint.yml"))
    ws.online_deployments.create_or_update(load_spec(OnlineDeployment, EXAMPLES / "churn-blue.yml"), all_traffic=True)
    return ws.online_endpoints.get_credentials("churn")["primaryKey"]


def test_home_page_lists_endpoints_and_links_without_secrets(workspace):
    empty = httpx.get(f"{workspace.url}/")
    assert empty.status_code == 200 and empty.headers["content-type"].startswith("text/html")
    assert "None yet" in empty.text and str(workspace.home.root) in empty.text

    key = _deploy_churn(workspace)
    page = httpx.get(f"{workspace.url}/").text
    assert f"{workspace.url}/endpoints/churn/score" in page
    assert "href='/endpoints/churn/docs'" in page and "href='/metrics'" in page
    assert "<b>blue</b>" in page and "100%" in page
    assert key not in page and workspace.home.admin_token() not in page

    docs = httpx.get(f"{workspace.url}/endpoints/churn/docs")
    assert docs.status_code == 200 and "/ui/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert "http://" not in docs.text.replace(workspace.url, "") and "https://" not in docs.text
    asset = httpx.get(f"{workspace.url}/ui/swagger-ui/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    missing = httpx.get(f"{workspace.url}/endpoints/ghost/docs")
    assert missing.status_code == 404 and missing.json()["message"] == "online endpoint 'ghost' does not exist"
    assert httpx.get(f"{workspace.url}/ui/swagger-ui/nope.js").status_code == 404


def _chrome():
    """A headless Chromium driven by Debian's chromedriver, or a skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip("no headless browser: apt-get install -y chromium chromium-driver (.ci/run does this)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    try:
        return webdriver.Chrome(service=Service(driver_path), options=opts)
    except Exception as err:  # a browser that cannot start here (no display libraries, ...)
        pytest.skip(f"headless Chromium could not start: {str(err).splitlines()[0]}")


def _requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def _wait_for(driver, script: str, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(script):
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; page: {driver.page_source[:2000]}")


def test_browser_loads_host_page_and_swagger_ui_with_no_request_leaving_the_machine(workspace):
    key = _deploy_churn(workspace)
    driver = _chrome()
    try:
        driver.get(f"{workspace.url}/")
        assert "Endpoints Toolkit host" in driver.title
        link = driver.find_element("css selector", "a[href='/endpoints/churn/docs']")
        link.click()
        _wait_for(driver, "return document.getElementById('msg') && "
                          "document.getElementById('msg').textContent.includes('needs its key')", "the key prompt")
        driver.find_element("id", "key").send_keys(key)
        driver.find_element("id", "load").click()
        _wait_for(driver, "return document.body.getAttribute('data-swagger-ready') === '1' && "
                          "document.querySelectorAll('.opblock').length > 0", "Swagger UI to render the API")
        text = driver.find_element("id", "swagger-ui").text
        assert "/endpoints/churn/score" in text
        urls = _requested_urls(driver)
    finally:
        driver.quit()
    fetched = [u for u in urls if u.startswith(("http:", "https:", "ws:", "wss:"))]
    assert any(u.endswith("/ui/swagger-ui/swagger-ui-bundle.js") for u in fetched), fetched
    assert any(u.endswith("/endpoints/churn/swagger.json") for u in fetched), fetched
    outside = [u for u in fetched if urlparse(u).hostname not in LOCAL_HOSTS]
    assert outside == [], f"requests left the machine: {outside}"
