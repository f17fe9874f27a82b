"""The notebook widgets against a real host: set values, click buttons, check the host's state.

One host serves the whole module (starting one and profiling a model are the slow parts).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import free_port
from toolkit import BatchDeployment, BatchEndpoint, OnlineDeployment, OnlineEndpoint, Workspace
from toolkit.home import Home
from toolkit.host import daemon

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def ws(tmp_path_factory, demo_registry):
    root = tmp_path_factory.mktemp("widgets") / "home"
    root.mkdir()
    shutil.copy(demo_registry / "mlflow.db", root / "mlflow.db")
    old = os.environ.get("ENDPOINTS_HOME")
    os.environ["ENDPOINTS_HOME"] = str(root)
    home = Home(root).ensure()
    workspace = Workspace(home, port=free_port())
    try:
        yield workspace
    finally:
        workspace.close()
        daemon.stop(home)
        if old is None:
            os.environ.pop("ENDPOINTS_HOME", None)
        else:
            os.environ["ENDPOINTS_HOME"] = old


def test_import_without_ipywidgets_says_what_to_install():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'ipywidgets':\n"
        "            raise ImportError('blocked', name='ipywidgets')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import toolkit.notebook\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode != 0
    assert "toolkit.notebook needs ipywidgets" in proc.stderr
    assert "pip install" in proc.stderr


def test_wizard_deploys_online_with_the_settings_shown(ws):
    from toolkit.notebook import DeployWizard

    wiz = DeployWizard(ws, model="models:/churn@champion")
    try:
        wiz.frequency.value = "on_arrival"
        wiz.peak_rps.value, wiz.avg_rps.value, wiz.latency_ms.value = 30, 5, 250
        advice = wiz.wait_advice(240)
        assert wiz.error_text == ""
        assert advice is not None and advice.recommendation == "online"
        assert wiz.option.value == "online"                  # the recommendation is preselected
        assert "ONLINE" in wiz.advice_html.value and "What would change" in wiz.advice_html.value
        # The cost chart: both options priced across "how soon", and the flip marked.
        recs = {p["recommendation"] for p in wiz.cost.points}
        assert recs == {"online", "batch"} and wiz.flips
        assert len(wiz.cost.online.y) == len(wiz.cost.points)

        wiz.endpoint_name.value = "wiz-online"
        wiz.deployment_name.value = "first"
        wiz.instance_type.value = "cpu-small"
        wiz.instance_count.value = 2
        wiz.autoscale.value = False
        wiz.max_batch_size.value = 32
        wiz.deploy_button.click()
        result = wiz.wait_deployed(300)
        assert wiz.error_text == "" and result is not None
        dep = ws.online_deployments.get("wiz-online", "first")
        assert dep.provisioning_state == "Succeeded"
        assert dep.instance_count == 2 and dep.instance_type == "cpu-small"
        assert dep.batching["max_batch_size"] == 32
        assert ws.online_endpoints.get("wiz-online").traffic == {"first": 100}

        # The key on request, and snippets that work as shown.
        result.reveal_button.click()
        assert result.key_text.value == ws.online_endpoints.get_credentials("wiz-online")["primaryKey"]
        assert "age" in json.dumps(result.example)           # the model's own input example
        ns = {"ws": ws}
        exec(result.snippets["httpx"], ns)
        assert ns["resp"].status_code == 200 and ns["resp"].headers["x-deployment"] == "first"
        ns = {"ws": ws}
        exec("out = " + result.snippets["SDK"].splitlines()[-1], {**ns, "body": result.example}, ns)
        assert len(ns["out"]) == len(result.example["dataframe_split"]["data"])
        if shutil.which("curl"):
            env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
            proc = subprocess.run(["bash", "-c", result.snippets["curl"]], capture_output=True, text=True, env=env,
                                  timeout=120)
            assert '"predictions"' in proc.stdout, proc.stdout + proc.stderr
    finally:
        wiz.close()


def test_wizard_batch_option_and_a_host_error(ws):
    from toolkit.notebook import DeployWizard

    wiz = DeployWizard(ws, model="models:/oj-sales@production", sweep=False)
    try:
        wiz.frequency.value = "scheduled"
        wiz.schedule.value = "every 1 week"
        wiz.rows_per_run.value = 480
        wiz.deadline.value = "12h"
        advice = wiz.wait_advice(240)
        assert advice.recommendation == "batch" and wiz.option.value == "batch"
        wiz.endpoint_name.value = "wiz-batch"
        wiz.workers.value = 2
        wiz.mini_batch_rows.value = 100
        wiz.deploy_button.click()
        assert wiz.wait_deployed(120) is not None and wiz.error_text == ""
        dep = ws.batch_deployments.get("wiz-batch", wiz.deployment_name.value)
        assert dep.resources["instance_count"] == 2 and dep.mini_batch_rows == 100
        assert ws.batch_endpoints.get("wiz-batch").defaults["deployment_name"] == wiz.deployment_name.value

        # A bad answer: the host's message appears in the widget, and deploying is off.
        wiz.deadline.value = "soonish"
        wiz.wait_advice(60)
        assert "InvalidSpec" in wiz.error_text and "deadline" in wiz.error_text
        assert wiz.deploy_button.disabled
    finally:
        wiz.close()

    bad = DeployWizard(ws, model="models:/churn/99", sweep=False)
    try:
        bad.wait_advice(60)
        assert "NotFound" in bad.error_text and "99" in bad.error_text
        assert "Traceback" not in bad.error.value
        assert bad.deploy_button.disabled
    finally:
        bad.close()


@pytest.fixture(scope="module")
def rollout(ws):
    ws.online_endpoints.create_or_update(OnlineEndpoint(name="dash"))
    ws.online_deployments.create_or_update(
        OnlineDeployment(name="blue", endpoint_name="dash", model="models:/churn/1"), all_traffic=True)
    ws.online_deployments.create_or_update(OnlineDeployment(name="green", endpoint_name="dash", model="models:/churn/2"))
    return "dash"


def test_dashboard_traffic_mirror_test_box_logs_and_close(ws, rollout):
    from toolkit.notebook import EndpointDashboard

    row = {"dataframe_split": {"columns": ["age", "tenure_months", "products_purchased", "days_since_last_purchase",
                                          "monthly_spend", "support_calls", "is_premium", "region"],
                               "data": [[40, 12, 3, 30, 50.0, 1, 0, "north"]]}}
    for _ in range(5):
        ws.online_endpoints.invoke(rollout, row)
    opened = time.time()
    dash = EndpointDashboard(ws, rollout, interval=0.5)
    try:
        assert dash.error_text == ""
        # Opened late, it starts from the host's stats history, not only from what it saw since.
        assert any(p["ts"] < opened and p["rps"] > 0 for p in dash.points["blue"])
        assert set(dash.traffic_sliders) == {"blue", "green"}
        assert "dataframe_split" in dash.test_body.value     # the model's input example, editable

        # Sliders that do not sum to 100 cannot be applied, and say why.
        dash.traffic_sliders["blue"].value, dash.traffic_sliders["green"].value = 80, 15
        assert dash.apply_button.disabled and "95%" in dash.apply_reason.value
        dash.apply_button.click()                            # even a scripted click is refused
        assert "100" in dash.error_text
        assert ws.online_endpoints.get(rollout).traffic == {"blue": 100}

        # Mirror: only on a deployment without live traffic, at most 50%.
        dash.traffic_sliders["blue"].value, dash.traffic_sliders["green"].value = 100, 0
        assert dash.mirror_sliders["green"].max == 50 and not dash.mirror_sliders["green"].disabled
        assert dash.mirror_sliders["blue"].disabled
        dash.mirror_sliders["green"].value = 20
        assert not dash.apply_button.disabled
        dash.apply_button.click()
        assert dash.error_text == ""
        ep = ws.online_endpoints.get(rollout)
        assert ep.traffic == {"blue": 100} and ep.mirror_traffic == {"green": 20}

        dash.mirror_sliders["green"].value = 0
        dash.traffic_sliders["blue"].value, dash.traffic_sliders["green"].value = 70, 30
        dash.apply_button.click()
        ep = ws.online_endpoints.get(rollout)
        assert ep.traffic == {"blue": 70, "green": 30} and not ep.mirror_traffic

        # The test box, by name: the answer, who served it, status, latency.
        dash.test_target.value = "green"
        dash.send_button.click()
        assert dash.error_text == ""
        assert dash.last_response["status"] == 200 and dash.last_response["deployment"] == "green"
        assert "green" in dash.test_result.value and "HTTP 200" in dash.test_result.value
        dash.test_body.value = '{"dataframe_split": {"columns": ["age"], "data": [[1]]}}'
        dash.send_button.click()
        assert dash.last_response["status"] == 400 and "HTTP 400" in dash.test_result.value
        dash.test_body.value = "{not json"
        dash.send_button.click()
        assert "not valid JSON" in dash.error_text

        # The live charts fill from the refresh thread, without anyone calling it.
        for _ in range(10):
            ws.online_endpoints.invoke(rollout, row)
        wait_for(lambda: dash.rps_chart.lines.get("blue") is not None
                 and max(v for v in dash.rps_chart.lines["blue"].y if v == v) > 0, 30, "rps on the chart")
        wait_for(lambda: any(e.get("deployment") == "green" for e in dash.events) or dash.events, 30, "events")

        dash.log_target.value = "blue"
        dash.log_button.click()
        assert dash.error_text == "" and dash.log_text.value.strip()

        assert dash.refresher.alive
    finally:
        dash.close()
    assert not dash.refresher.alive                          # closing stops the refresh thread


def test_dashboard_shows_a_host_error(ws):
    from toolkit.notebook import EndpointDashboard

    dash = EndpointDashboard(ws, "no-such-endpoint", interval=0.5)
    try:
        assert "NotFound" in dash.error_text and "no-such-endpoint" in dash.error_text
    finally:
        dash.close()
    assert not dash.refresher.alive


def test_batch_launcher_submits_and_the_monitor_cancels_then_follows_a_job(ws, tmp_path):
    from toolkit.demo.data import write_oj_weekly_files
    from toolkit.notebook import BatchLauncher, JobMonitor

    ws.batch_endpoints.create_or_update(BatchEndpoint(name="oj-widgets"))
    ws.batch_deployments.create_or_update(
        BatchDeployment(name="forest", endpoint_name="oj-widgets", model="models:/oj-sales/1", mini_batch_size=1),
        set_default=True)
    data = tmp_path / "weekly"
    write_oj_weekly_files(data, weeks=40, stores=5)

    launcher = BatchLauncher(ws, endpoint="oj-widgets")
    try:
        launcher.input.value = str(data)
        launcher.instance_count.value = 1
        launcher.submit_button.click()
        assert launcher.error_text == "" and launcher.monitor is not None
        job_id = launcher.job.id
        assert ws.jobs.get(job_id).endpoint == "oj-widgets"
        launcher.monitor.cancel_button.click()
        assert launcher.monitor.error_text == ""
        wait_for(lambda: launcher.monitor.done, 120, "the canceled job to end")
        assert ws.jobs.get(job_id).state == "Canceled"
        assert "Canceled" in launcher.monitor.title.value
        assert not launcher.monitor.refresher.alive or launcher.monitor.refresher.stopping
    finally:
        launcher.close()

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("week-01.csv", "week-02.csv"):
        shutil.copy(data / name, mixed / name)
    (mixed / "broken.csv").write_text("not,the,columns\n1,2,3\n")
    job = ws.batch_endpoints.invoke("oj-widgets", input=str(mixed))
    monitor = JobMonitor(ws, job)
    try:
        wait_for(lambda: monitor.done, 180, "the job to complete")
        assert monitor.progress["state"] == "Completed"
        assert monitor.bar.value == monitor.bar.max == 3
        assert "Errors per file" in monitor.failures.value and "broken.csv" in monitor.failures.value
        assert "prediction" in monitor.preview.value and "week-01.csv" in monitor.preview.value
    finally:
        monitor.close()
    assert not monitor.refresher.alive

    bad = BatchLauncher(ws, endpoint="oj-widgets")
    try:
        bad.input.value = str(tmp_path / "nothing-here")
        bad.submit_button.click()
        assert bad.error_text and bad.monitor is None
    finally:
        bad.close()


def test_model_browser_opens_the_wizard_on_the_selection(ws):
    from toolkit.notebook import ModelBrowser

    browser = ModelBrowser(ws)
    try:
        assert {"churn", "oj-sales"} <= set(browser.model_list.options)
        browser.model_list.value = "churn"
        assert "@champion" in browser.details.value and "region" in browser.details.value
        browser.version.value = "models:/churn@challenger"
        browser.deploy_button.click()
        assert browser.error_text == ""
        assert browser.wizard is not None and browser.wizard.version.value == "models:/churn@challenger"
    finally:
        browser.close()
