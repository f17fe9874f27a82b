"""``endpoints demo``: the end-to-end tour on the embedded demo models and data.

1. registers the demo models (churn v1/v2, oj-sales v1) if absent, and starts the host;
2. creates the example specs from ``examples/*.yml``;
3. online: the safe rollout of churn (blue 100%, green tested by name, mirrored 20%, then 90/10);
4. batch: a year of weekly orange-juice files scored through the ``oj-sales`` batch endpoint;
5. prints what exists and what to try next.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path
from typing import Any

from ..errors import NotAvailableYet, NotFound, ToolkitError
from ..home import Home
from ..specs import BatchDeployment, BatchEndpoint, OnlineDeployment, OnlineEndpoint, load_spec

__all__ = ["run_demo", "examples_dir"]


def examples_dir() -> Path:
    """``examples/`` of the source tree (the demo runs from a clone, as the README says)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "examples" / "churn-endpoint.yml").is_file():
            return parent / "examples"
    raise NotFound("examples/ folder not found next to the toolkit package")


def _say(text: str) -> None:
    print(text, flush=True)


def _ensure(getter: Any, creator: Any) -> Any:
    try:
        return getter()
    except NotFound:
        return creator()


def _online_rollout(ws: Any, ex: Path) -> None:
    import pandas as pd

    from .data import CHURN_FEATURES, churn_frame

    ep = load_spec(OnlineEndpoint, ex / "churn-endpoint.yml")
    blue = load_spec(OnlineDeployment, ex / "churn-blue.yml")
    green = load_spec(OnlineDeployment, ex / "churn-green.yml")
    ws.online_endpoints.create_or_update(ep)
    _say(f"\n== online: safe rollout on '{ep.name}' ==")
    current = ws.online_endpoints.get(ep.name)
    if current.traffic.get("green", 0) or current.mirror_traffic.get("green", 0):
        _say("resetting traffic from a previous demo run to blue=100")
        if "blue" in current.deployments:
            ws.online_endpoints.update_traffic(ep.name, {"blue": 100}, {})
    dep = ws.online_deployments.create_or_update(blue, all_traffic=True)
    _say(f"blue  -> {dep.model_version}: {dep.provisioning_state}, traffic blue=100")
    dep = ws.online_deployments.create_or_update(green)
    _say(f"green -> {dep.model_version}: {dep.provisioning_state}, 0% traffic")

    sample = churn_frame(8, seed=99)[CHURN_FEATURES]
    preds = ws.online_endpoints.invoke(ep.name, sample, deployment_name="green")
    _say(f"tested green by name (X-Deployment: green): {preds}")

    ws.online_endpoints.update_traffic(ep.name, {"blue": 100}, {"green": 20})
    for i in range(50):
        ws.online_endpoints.invoke(ep.name, sample.iloc[[i % len(sample)]])
    _say("mirrored 20% of live traffic to green (callers only ever see blue's answers)")

    ws.online_endpoints.update_traffic(ep.name, {"blue": 90, "green": 10}, {})
    served: collections.Counter[str] = collections.Counter()
    rows = churn_frame(200, seed=5)[CHURN_FEATURES]
    for i in range(200):
        resp = ws.online_endpoints.invoke(ep.name, rows.iloc[[i]], raw=True)
        served[resp.headers.get("x-deployment", "?")] += 1
    _say(f"traffic blue=90 green=10; 200 requests served by: {dict(sorted(served.items()))}")
    try:
        stats = ws.stats(ep.name)
        for name, s in sorted((stats.get("deployments") or {}).items()):
            _say(f"  {name}: served={s.get('served')} mirrored={s.get('mirrored')} p50={s.get('p50_ms')} ms")
    except ToolkitError:
        pass
    if isinstance(preds, list) and preds:
        pd.DataFrame({"prediction": preds})  # the SDK returns plain lists; a DataFrame is one call away


def _batch_scoring(ws: Any, home: Home, ex: Path) -> None:
    from .data import write_oj_weekly_files

    ep = load_spec(BatchEndpoint, ex / "oj-sales-endpoint.yml")
    dep = load_spec(BatchDeployment, ex / "oj-sales-deployment.yml")
    ws.batch_endpoints.create_or_update(ep)
    ws.batch_deployments.create_or_update(dep, set_default=True)
    data = home.root / "demo-data" / "oj-weekly"
    if not data.exists():
        write_oj_weekly_files(data, weeks=52, stores=40)
    _say(f"\n== batch: a year of weekly sales files through '{ep.name}' ==")
    _say(f"input: {data} ({len(list(data.glob('*.csv')))} files)")
    job = ws.batch_endpoints.invoke(ep.name, data)
    _say(f"job {job.id} {job.state}")
    job.wait(progress=True)
    out = job.outputs()
    _say(f"job {job.id} {job.state}: {len(out)} predictions in {job.output}")
    _say(out.head(8).to_string(index=False))


def run_demo(home: Home, port: int | None = None) -> int:
    from ..workspace import Workspace
    from .models import register_demo_models

    home.ensure()
    _say(f"workspace home: {home.root}")
    versions = register_demo_models(home)
    _say("registered models: " + ", ".join(f"{k} v{'/'.join(v)}" for k, v in versions.items()))
    ws = Workspace(home, port=port)
    _say(f"host: {ws.url} (pid {ws.host_info.pid})")
    ex = examples_dir()
    steps = (("online", lambda: _online_rollout(ws, ex)), ("batch", lambda: _batch_scoring(ws, home, ex)))
    for label, step in steps:
        try:
            step()
        except NotAvailableYet as err:
            _say(f"\n({label}: {err.message})")
    _say("\n== what exists ==")
    for e in ws.online_endpoints.list():
        _say(f"online endpoint {e.name}: traffic={e.traffic} mirror={e.mirror_traffic} {e.scoring_uri}")
        for d in ws.online_deployments.list(e.name):
            _say(f"  deployment {d.name}: {d.model_version} {d.provisioning_state}")
    for e in ws.batch_endpoints.list():
        _say(f"batch endpoint {e.name}: default={e.defaults.get('deployment_name')}")
    _say(f"\nin a browser: {ws.url}/ (the endpoints, with a Swagger UI for each)")
    _say(f"the demo's batch input: {home.root / 'demo-data' / 'oj-weekly'}")
    _say(
        "\nnext steps (the README continues from here; docs/own-model.md deploys your own model):\n"
        "  endpoints status\n"
        "  endpoints online-endpoint invoke --name churn --request-file examples/churn-request.json\n"
        "  endpoints online-endpoint get-credentials --name churn\n"
        "  endpoints job list\n"
        "  endpoints advise -f examples/workload-oj-weekly.yml\n"
        "  endpoints down"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_demo(Home.resolve()))
