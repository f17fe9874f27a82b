"""The TUI's main flows driven with Textual's Pilot against one real host (shared by the module).

Every assertion about an effect reads the host through the SDK, not the app's own state.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from tui_helpers import screen_text, type_into, until

pytestmark = pytest.mark.timeout(600)

SLOW_SCORE = '''
import os, time
import mlflow.pyfunc
import pandas as pd

model = None

def init():
    global model
    model = mlflow.pyfunc.load_model(os.environ["AZUREML_MODEL_DIR"])

def run(mini_batch):
    time.sleep(2.0)  # slow on purpose: the test cancels the job while it runs
    out = []
    for path in mini_batch:
        df = pd.read_csv(path)
        out.append(pd.DataFrame({"file_name": os.path.basename(path), "prediction": model.predict(df)}))
    return pd.concat(out, ignore_index=True)
'''


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, demo_registry: Path) -> Any:
    """One real host for the module, with an online endpoint of two deployments and a batch endpoint."""
    from toolkit import Workspace
    from toolkit.home import Home
    from toolkit.host import daemon

    root = tmp_path_factory.mktemp("tui-home")
    shutil.copy(demo_registry / "mlflow.db", root / "mlflow.db")
    mp = pytest.MonkeyPatch()
    mp.setenv("ENDPOINTS_HOME", str(root))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
    home = Home(root).ensure()
    home.configure_mlflow()
    ws = Workspace(home, port=free_port())
    try:
        ws.online_endpoints.create_or_update({"name": "tui-traffic"})
        for name, version in (("blue", 1), ("green", 2)):
            ws.online_deployments.create_or_update(
                {"name": name, "endpoint_name": "tui-traffic", "model": f"models:/churn/{version}",
                 "instance_type": "cpu-nano", "instance_count": 1}, wait=False)
        for name in ("blue", "green"):
            ws.online_deployments.wait("tui-traffic", name, timeout=300)
        ws.online_endpoints.update_traffic("tui-traffic", {"blue": 100})
        code = root / "slow-code"
        code.mkdir()
        (code / "score.py").write_text(textwrap.dedent(SLOW_SCORE))
        ws.batch_endpoints.create_or_update({"name": "tui-batch"})
        ws.batch_deployments.create_or_update(
            {"name": "slow", "endpoint_name": "tui-batch", "model": "models:/oj-sales/1", "mini_batch_size": 1,
             "code_configuration": {"code": str(code), "scoring_script": "score.py"}}, set_default=True)
        yield ws
    finally:
        ws.close()
        daemon.stop(home)
        mp.undo()


def new_app(ws: Any) -> Any:
    from tui.app import EndpointsApp

    return EndpointsApp(ws.home.root, poll_interval=0.5, cursor_blink=False)


async def connected(pilot: Any) -> None:
    app = pilot.app
    await until(pilot, lambda: app.snapshot is not None and app.models, "the first snapshot and the models")


async def select_row(pilot: Any, table_id: str, key: str) -> None:
    """Move the cursor of a DataTable to the row with ``key``."""
    from textual.widgets import DataTable

    table = pilot.app.query_one(f"#{table_id}", DataTable)
    await until(pilot, lambda: key in [k.value for k in table.rows], f"row {key} in {table_id}")
    # A hidden table cannot take the focus, and the view's key bindings answer only with the focus inside it.
    await until(pilot, lambda: table.display and table.visible and table.region.area, f"{table_id} on screen")
    table.focus()
    await until(pilot, lambda: pilot.app.focused is table, f"the focus on {table_id}")
    table.move_cursor(row=table.get_row_index(key))
    await pilot.pause()


async def show_view(pilot: Any, key: str, name: str) -> None:
    """Press a view's number key until its tab shows and its table has the focus.

    Under load a key pressed while a frame is drawn can be lost; the number keys are idempotent. The view's
    table takes the focus a frame after its tab shows, and a view's own keys (n, t, x) answer only then.
    """
    from textual.widgets import TabbedContent

    app = pilot.app
    tabs = app.query_one("#tabs", TabbedContent)
    for _ in range(5):
        await pilot.press(key)
        try:
            await until(pilot, lambda: tabs.active == name, f"the {name} tab", timeout=10)
            break
        except AssertionError:
            continue
    await until(pilot, lambda: tabs.active == name, f"the {name} tab", timeout=1)
    await until(pilot, lambda: app.focused is not None and tabs.active_pane in app.focused.ancestors,
                f"the focus inside the {name} view")


async def _deploy_a_model_online_from_the_models_view(live: Any) -> None:
    from tui.screens.deploy import DeployScreen

    app = new_app(live)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot)
        await select_row(pilot, "models-table", "churn/1")
        await pilot.press("d")
        screen = await until(pilot, lambda: isinstance(app.screen, DeployScreen) and app.screen, "the deploy flow")
        await until(pilot, lambda: screen.advice is not None, "the advisor's answer", timeout=180)
        await until(pilot, lambda: "deciding:" in screen_text(app), "the advice on screen")
        # The proposed settings come from the advice until the user edits them.
        advised = screen.advice.option(screen.advice.recommendation)
        await until(pilot, lambda: screen.query_one("#s-instance_type").value == advised.instance_type,
                    "the advised instance type in the settings")
        # Change an answer: the advice is asked again and still shows (debounced).
        first = screen.advice
        await type_into(pilot, "#w-peak_rps", "40")
        await until(pilot, lambda: screen.advice is not first, "advice for the new answer", timeout=120)
        await pilot.press("ctrl+o")
        await type_into(pilot, "#s-endpoint", "tui-deploy")
        await type_into(pilot, "#s-deployment", "first")
        await type_into(pilot, "#s-instance_type", "cpu-nano")
        await type_into(pilot, "#s-count", "1")
        await pilot.press("ctrl+d")
        await until(pilot, lambda: not isinstance(app.screen, DeployScreen), "the deploy flow to finish", timeout=300)
    dep = live.online_deployments.get("tui-deploy", "first")
    assert dep.provisioning_state == "Succeeded"
    assert dep.instance_type == "cpu-nano"
    assert live.online_endpoints.get("tui-deploy").traffic == {"first": 100}


async def _traffic_70_30_applied_and_70_20_refused_with_the_reason(live: Any) -> None:
    from tui.screens.traffic import TrafficScreen

    app = new_app(live)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot)
        await show_view(pilot, "2", "endpoints")
        await select_row(pilot, "endpoints-table", "online:tui-traffic")
        await pilot.press("t")
        dialog = await until(pilot, lambda: isinstance(app.screen, TrafficScreen) and app.screen, "the traffic editor")
        order = dialog.names
        await type_into(pilot, f"#t{order.index('blue')}", "70")
        await type_into(pilot, f"#t{order.index('green')}", "20")
        await until(pilot, lambda: "traffic sums to 90%; it must sum to 0 or 100" in screen_text(app),
                    "the reason 70/20 is refused")
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert isinstance(app.screen, TrafficScreen), "an invalid split must not be applied"
        assert live.online_endpoints.get("tui-traffic").traffic == {"blue": 100}
        await type_into(pilot, f"#t{order.index('green')}", "30")
        await until(pilot, lambda: "sums to 100%" in screen_text(app), "70/30 accepted on screen")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: live.online_endpoints.get("tui-traffic").traffic == {"blue": 70, "green": 30},
                    "the host to hold 70/30", timeout=30)
        # The view follows the host: the table shows the new split.
        await until(pilot, lambda: "70%" in screen_text(app) and "30%" in screen_text(app), "70%/30% on screen")


async def _mirror_on_a_deployment_with_live_traffic_is_refused(live: Any) -> None:
    from tui.screens.traffic import TrafficScreen

    app = new_app(live)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot)
        await show_view(pilot, "2", "endpoints")
        await select_row(pilot, "endpoints-table", "online:tui-traffic/green")
        await pilot.press("t")
        dialog = await until(pilot, lambda: isinstance(app.screen, TrafficScreen) and app.screen, "the traffic editor")
        await type_into(pilot, f"#t{dialog.names.index('blue')}", "100")
        await type_into(pilot, f"#t{dialog.names.index('green')}", "0")
        await type_into(pilot, f"#m{dialog.names.index('blue')}", "60")
        await until(pilot, lambda: "at most 50%" in screen_text(app) and "without live traffic" in screen_text(app),
                    "both mirror reasons on screen")
        await pilot.press("escape")


async def _send_a_test_request_and_read_who_served_it(live: Any) -> None:
    from toolkit.demo.data import CHURN_FEATURES, churn_frame
    from textual.widgets import Select, TextArea

    row = churn_frame(1)[CHURN_FEATURES]
    body = {"dataframe_split": json.loads(row.to_json(orient="split", index=False))}
    app = new_app(live)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot)
        await show_view(pilot, "5", "test")
        panel_endpoint = app.query_one("#test-endpoint", Select)
        await until(pilot, lambda: "tui-traffic" in [str(o) for o in app.query_one("TestPanel")._endpoints],
                    "endpoints in the test panel")
        panel_endpoint.value = "tui-traffic"
        await pilot.pause()
        deployment = app.query_one("#test-deployment", Select)
        await until(pilot, lambda: "green" in app.query_one("TestPanel")._deployments, "deployments of tui-traffic")
        deployment.value = "green"
        area = app.query_one("#test-request", TextArea)
        area.text = json.dumps(body)
        area.focus()
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "served by green" in screen_text(app), "the answer served by green", timeout=60)
        text = screen_text(app)
        assert "status 200" in text
        assert "latency" in text


async def _submit_and_cancel_a_batch_job(live: Any, tmp_path: Path) -> None:
    from toolkit.demo.data import write_oj_weekly_files
    from tui.screens.job_submit import JobSubmitScreen

    files = write_oj_weekly_files(tmp_path / "weekly", weeks=20, stores=2)
    app = new_app(live)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot)
        await show_view(pilot, "4", "jobs")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, JobSubmitScreen), "the submit dialog")
        await type_into(pilot, "#job-input", str(files[0].parent))
        await type_into(pilot, "#job-overrides", "mini_batch_size=1")
        await pilot.press("ctrl+s")
        jobs = await until(pilot, lambda: live.jobs.list(endpoint_name="tui-batch"), "the job in the host")
        job_id = jobs[0].id
        await select_row(pilot, "jobs-table", job_id)
        await until(pilot, lambda: job_id in screen_text(app), "the job on screen")
        await pilot.press("x")
        await until(pilot, lambda: live.jobs.get(job_id).state in ("Canceling", "Canceled"), "the job canceled")
        await until(pilot, lambda: "Cancel" in screen_text(app), "the canceled state on screen")
    assert live.jobs.get(job_id).wait(timeout=120, raise_on_failure=False).state == "Canceled"


async def _log_tail_and_credentials_only_on_request(live: Any) -> None:
    from tui.screens.credentials import CredentialsScreen
    from tui.screens.log import LogScreen

    key = live.online_endpoints.get_credentials("tui-traffic")["primaryKey"]
    app = new_app(live)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot)
        await show_view(pilot, "2", "endpoints")
        await select_row(pilot, "endpoints-table", "online:tui-traffic/blue")
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen) and "starting (pid" in screen_text(app),
                    "the deployment's log on screen")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, LogScreen), "back to the endpoints")
        assert key not in screen_text(app)
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, CredentialsScreen) and key in screen_text(app),
                    "the key, once asked for")
        await pilot.press("escape")
        await until(pilot, lambda: key not in screen_text(app), "the key gone with its dialog")


def test_deploy_a_model_online_from_the_models_view(live: Any) -> None:
    asyncio.run(_deploy_a_model_online_from_the_models_view(live))


def test_traffic_70_30_applied_and_70_20_refused_with_the_reason(live: Any) -> None:
    asyncio.run(_traffic_70_30_applied_and_70_20_refused_with_the_reason(live))


def test_mirror_on_a_deployment_with_live_traffic_is_refused(live: Any) -> None:
    asyncio.run(_mirror_on_a_deployment_with_live_traffic_is_refused(live))


def test_send_a_test_request_and_read_who_served_it(live: Any) -> None:
    asyncio.run(_send_a_test_request_and_read_who_served_it(live))


def test_submit_and_cancel_a_batch_job(live: Any, tmp_path: Path) -> None:
    asyncio.run(_submit_and_cancel_a_batch_job(live, tmp_path))


def test_log_tail_and_credentials_only_on_request(live: Any) -> None:
    asyncio.run(_log_tail_and_credentials_only_on_request(live))
