"""The notebook experience in a real browser: JupyterLab on a loopback port, headless Chromium
driven by selenium, a real host.  Opens 02-safe-rollout, runs every cell, finds the dashboard
rendered as live widgets, clicks the test box's Send button in the page and sees who served it.

Screenshots go to the test's tmp folder; ``make screenshots`` (NOTEBOOK_SCREENSHOTS=docs/images)
also opens 01-quickstart and writes the README's wizard and dashboard images.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import free_port
from toolkit import Workspace
from toolkit.home import Home
from toolkit.host import daemon

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
CHROMEDRIVER = shutil.which("chromedriver")

try:
    import selenium  # noqa: F401
except ImportError:  # pragma: no cover
    selenium = None

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None or selenium is None,
    reason="needs a real browser: apt-get install -y chromium chromium-driver (and pip install selenium); "
           ".ci/run installs them",
)

# JupyterLab's own settings for the test: no news or update toasts over the notebook.
LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}}

NOTEBOOK_ERRORS_JS = """
const panel = window.jupyterapp.shell.currentWidget;
if (!panel || !panel.content || !panel.content.model) { return null; }
const model = panel.content.model; const out = {errors: [], pending: 0, cells: 0};
for (let i = 0; i < model.cells.length; i++) {
  const cell = model.cells.get(i);
  if (cell.type !== 'code') continue;
  out.cells += 1;
  if (!cell.executionCount) out.pending += 1;
  for (let j = 0; j < cell.outputs.length; j++) {
    const o = cell.outputs.get(j).toJSON();
    if (o.output_type === 'error') out.errors.push(o.ename + ': ' + o.evalue);
  }
}
out.running = document.querySelectorAll('.jp-InputArea-prompt').length
  ? Array.from(document.querySelectorAll('.jp-InputArea-prompt')).filter(p => p.textContent.includes('*')).length : 0;
return out;
"""


def wait_for(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except Exception as err:  # the page may be mid-render
            last = err
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A host for a fresh workspace and JupyterLab serving a copy of the notebooks."""
    tmp = tmp_path_factory.mktemp("lab")
    home = Home(tmp / "home").ensure()
    root = tmp / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns("workspaces", ".ipynb_checkpoints"))
    settings = tmp / "lab-settings"
    for rel, value in LAB_SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value))
    ws = Workspace(home, port=free_port())
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "ENDPOINTS_HOME": str(home.root), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    log = open(tmp / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip", "127.0.0.1", "--port", str(port),
         "--LabApp.extension_manager=readonly",
         f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", f"--ServerApp.root_dir={root}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base}/api/status", params={"token": token}, timeout=2).status_code == 200,
                 90, "JupyterLab to answer")
        yield {"base": base, "token": token, "tmp": tmp, "ws": ws}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        ws.close()
        daemon.stop(home)


@pytest.fixture(scope="module")
def browser(lab):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 "--hide-scrollbars"):
        opts.add_argument(flag)
    opts.set_capability("unhandledPromptBehavior", "accept")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def run_notebook_in_page(driver, lab, name: str, timeout: float = 900) -> None:
    if driver.execute_script("return !!window.jupyterapp;"):
        # Lab is open: open the next notebook in it (navigating away from a notebook with unsaved
        # outputs would stop at the browser's "leave site?" prompt).
        driver.execute_script(f"window.jupyterapp.commands.execute('docmanager:open', {{path: '{name}.ipynb'}});"
                              " return true;")
        wait_for(lambda: driver.execute_script(
            "const w = window.jupyterapp.shell.currentWidget; return !!(w && w.context && "
            f"w.context.path === '{name}.ipynb');"), 60, f"{name} to be the current tab")
    else:
        driver.get(f"{lab['base']}/lab/tree/{name}.ipynb?token={lab['token']}")
    wait_for(lambda: driver.execute_script(
        "return !!(window.jupyterapp && window.jupyterapp.shell.currentWidget && "
        "window.jupyterapp.shell.currentWidget.sessionContext && "
        "window.jupyterapp.shell.currentWidget.sessionContext.session && "
        "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel && "
        "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.connectionStatus === 'connected')"),
        120, f"{name} to open with a connected kernel")
    # Start the run; do not return the promise (selenium would wait on it and time out).
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells'); return true;")
    state = wait_for(lambda: (lambda s: s if s and s["cells"] and (s["errors"] or (s["pending"] == 0 and s["running"] == 0))
                              else None)(driver.execute_script(NOTEBOOK_ERRORS_JS)), timeout, f"{name} to run")
    assert not state["errors"], state["errors"]


def screenshot_of(driver, element, path: Path) -> None:
    # Tall enough for the whole widget: an element screenshot is clipped to the window.
    height = driver.execute_script("return arguments[0].getBoundingClientRect().height;", element)
    driver.set_window_size(1400, max(1000, int(height) + 260))
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", element)
    time.sleep(0.8)
    element.screenshot(str(path))


@pytest.mark.timeout(1800)  # a notebook run in a browser on a busy 2-core machine; screenshots add a second
def test_safe_rollout_runs_in_jupyterlab_with_a_live_dashboard(lab, browser):
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("NOTEBOOK_SCREENSHOTS") or lab["tmp"] / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    run_notebook_in_page(browser, lab, "02-safe-rollout")

    # The dashboard is there as live widgets (buttons, sliders, bqplot charts), not a text repr.
    send = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "button.endpoints-send"), 60, "the Send button")
    dashboard = browser.execute_script("return arguments[0].closest('.jp-OutputArea-output');", send)
    assert dashboard.find_elements(By.CSS_SELECTOR, ".widget-slider")
    assert dashboard.find_elements(By.CSS_SELECTOR, ".bqplot")
    wait_for(lambda: [p for p in dashboard.find_elements(By.CSS_SELECTOR, ".bqplot path.line")
                      if (p.get_attribute("d") or "").count("L") > 2], 60, "chart lines with points")

    # Live: the served count on the page moves while requests arrive, with no cell running.
    table = dashboard.find_element(By.CSS_SELECTOR, ".endpoints-table")
    served_before = table.text
    for _ in range(3):
        lab["ws"].online_endpoints.invoke("churn-rollout", {"dataframe_split": {
            "columns": ["age", "tenure_months", "products_purchased", "days_since_last_purchase", "monthly_spend",
                        "support_calls", "is_premium", "region"], "data": [[40, 12, 3, 30, 50.0, 1, 0, "north"]]}})
    wait_for(lambda: dashboard.find_element(By.CSS_SELECTOR, ".endpoints-table").text != served_before, 30,
             "the served count to move on the page")
    before = dashboard.find_element(By.CSS_SELECTOR, ".endpoints-test-result").text

    # Click Send in the page: the kernel answers and the served-by deployment appears.
    old_request = re.search(r"request (\S+)", before)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", send)
    send.click()

    def fresh_answer():
        text = dashboard.find_element(By.CSS_SELECTOR, ".endpoints-test-result").text
        m = re.search(r"request (\S+)", text)
        return text if m and (old_request is None or m.group(1) != old_request.group(1)) else None

    answer = wait_for(fresh_answer, 60, "a new answer in the test box")
    assert "HTTP 200" in answer
    assert dashboard.find_element(By.CSS_SELECTOR, ".endpoints-served-by").text == "green"
    screenshot_of(browser, dashboard, shots / "dashboard.png")
    browser.save_screenshot(str(lab["tmp"] / "02-safe-rollout-page.png"))   # the whole page, for debugging
    assert (shots / "dashboard.png").stat().st_size > 10_000

    if os.environ.get("NOTEBOOK_SCREENSHOTS"):
        # make screenshots: the wizard too, from the quickstart.
        run_notebook_in_page(browser, lab, "01-quickstart", timeout=900)
        wizard = wait_for(lambda: browser.execute_script(
            "const b = Array.from(document.querySelectorAll('button.jupyter-button'))"
            ".find(x => x.textContent.includes('Deploy')); return b && b.closest('.jp-OutputArea-output');"),
            60, "the wizard")
        screenshot_of(browser, wizard, shots / "wizard.png")
