"""A fixed workspace frame (no host): for the screenshot in the README and the snapshot tests.

Everything here is constant, so the same data renders the same screen on every machine.
``python -m tui.sample docs/img/tui.svg [view]`` exports a screenshot of one view.
"""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["sample_snapshot", "sample_models", "sample_series", "sample_app", "save_screenshot"]

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: a fixed "now"

_CHURN_SIG = {"inputs": [{"name": n, "type": t} for n, t in (
    ("tenure", "long"), ("monthly_charges", "double"), ("total_charges", "double"),
    ("contract", "string"), ("support_calls", "long"))], "outputs": [{"type": "long"}], "params": None}
_OJ_SIG = {"inputs": [{"name": n, "type": t} for n, t in (
    ("store", "long"), ("brand", "string"), ("week", "long"), ("price", "double"), ("feat", "long"))],
    "outputs": [{"type": "double"}], "params": None}


def _version(name: str, version: str, aliases: list[str], sig: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "version": version, "aliases": aliases, "tags": {}, "source": "", "run_id": None,
            "status": "READY", "created_at": T0 - 86_400 * int(version), "signature": sig,
            "has_input_example": True, "flavors": ["python_function", "sklearn"], "uri": f"models:/{name}/{version}"}


def sample_models() -> list[dict[str, Any]]:
    return [
        {"name": "churn", "description": "Customer churn classifier (gradient boosting)", "tags": {},
         "aliases": {"champion": "2", "challenger": "1"},
         "versions": [_version("churn", "1", ["challenger"], _CHURN_SIG), _version("churn", "2", ["champion"], _CHURN_SIG)]},
        {"name": "oj-sales", "description": "Orange juice weekly sales forecast", "tags": {},
         "aliases": {"production": "1"}, "versions": [_version("oj-sales", "1", ["production"], _OJ_SIG)]},
    ]


def _window(i: int, rps: float, p50: float, p99: float, errors: int = 0, mirrored: int = 0,
            served: int | None = None) -> dict[str, Any]:
    return {"ts": T0 - 60 + i, "duration_s": 1.0, "requests": int(rps), "rps": rps, "p50_ms": p50,
            "p95_ms": None if p50 is None else (p50 + p99) / 2, "p99_ms": p99, "errors": errors, "mirrored": mirrored, "served": served}


def sample_series() -> dict[tuple[str, str], list[Any]]:
    """Sixty one-second points per deployment: a smooth wave, deterministic."""
    from toolkit.views import StatsWindow

    out: dict[tuple[str, str], list[Any]] = {}
    for dep, share, base in (("blue", 0.7, 4.0), ("green", 0.3, 5.5)):
        points = []
        for i in range(60):
            rps = round(40 * share * (1.2 + math.sin(i / 6)), 1)
            p50 = round(base + math.sin(i / 5) * 0.8, 2)
            points.append(StatsWindow.from_dict(_window(i, rps, p50, round(p50 * 2.6 + (i % 7) * 0.4, 2),
                                                        errors=1 if dep == "green" and i in (17, 44) else 0)))
        out[("churn-api", dep)] = points
    return out


def _instances(dep: str, n: int) -> list[dict[str, Any]]:
    return [{"id": f"{dep}-{i}", "pid": 41000 + i, "state": "Ready", "ready": True, "started_at": T0 - 900,
             "restarts": 0} for i in range(n)]


def sample_snapshot() -> Any:
    from toolkit.views import Snapshot

    online = [{
        "name": "churn-api", "kind": "online", "auth_mode": "key", "traffic": {"blue": 70, "green": 30},
        "mirror_traffic": {}, "scoring_uri": "http://127.0.0.1:5000/endpoints/churn-api/score",
        "description": "churn scoring", "default_deployment": None, "deployments": [
            {"name": "blue", "endpoint_name": "churn-api", "state": "Succeeded", "model": "models:/churn/1",
             "model_version": "churn v1", "instance_type": "cpu-small", "instance_count": 2,
             "instances": _instances("blue", 2), "traffic": 70, "mirror": 0,
             "stats": _window(59, 38.2, 4.1, 11.3, 0, 0, 8_642)},
            {"name": "green", "endpoint_name": "churn-api", "state": "Succeeded", "model": "models:/churn/2",
             "model_version": "churn v2", "instance_type": "cpu-small", "instance_count": 1,
             "instances": _instances("green", 1), "traffic": 30, "mirror": 0,
             "stats": _window(59, 16.4, 5.6, 14.8, 1, 0, 3_705)},
        ]}, {
        "name": "churn-shadow", "kind": "online", "auth_mode": "token", "traffic": {"main": 100},
        "mirror_traffic": {"canary": 10}, "scoring_uri": "http://127.0.0.1:5000/endpoints/churn-shadow/score",
        "description": None, "default_deployment": None, "deployments": [
            {"name": "main", "endpoint_name": "churn-shadow", "state": "Succeeded", "model": "models:/churn@champion",
             "model_version": "churn v2", "instance_type": "cpu-nano", "instance_count": 1,
             "instances": _instances("main", 1), "traffic": 100, "mirror": 0,
             "stats": _window(59, 5.0, 3.9, 9.0, 0, 0, 1_200)},
            {"name": "canary", "endpoint_name": "churn-shadow", "state": "Updating", "model": "models:/churn/1",
             "model_version": "churn v1", "instance_type": "cpu-nano", "instance_count": 1,
             "instances": [{"id": "canary-0", "pid": 42001, "state": "Starting", "ready": False,
                            "started_at": T0 - 5, "restarts": 0}], "traffic": 0, "mirror": 10,
             "stats": _window(59, 0.0, None, None, 0, 120, 0)},
        ]}]
    batch = [{"name": "oj-forecast", "kind": "batch", "auth_mode": None, "traffic": {}, "mirror_traffic": {},
              "scoring_uri": "", "description": "weekly forecast", "default_deployment": "rf",
              "deployments": [{"name": "rf", "endpoint_name": "oj-forecast", "state": "Succeeded",
                               "model": "models:/oj-sales/1", "model_version": "oj-sales v1",
                               "instance_type": "cpu-small", "instance_count": 2, "instances": [],
                               "traffic": 0, "mirror": 0, "stats": None}]}]
    jobs = [
        {"id": "job-7f3a", "endpoint": "oj-forecast", "deployment": "rf", "state": "Running", "done": False,
         "mini_batches_done": 13, "mini_batches_total": 20, "rows": 6_240, "rows_per_s": 1_480.0, "eta_s": 3.0,
         "failed_files": {}, "error_count": 0, "output_path": "/data/out/job-7f3a", "created_at": T0 - 12,
         "finished_at": None},
        {"id": "job-52c1", "endpoint": "oj-forecast", "deployment": "rf", "state": "Completed", "done": True,
         "mini_batches_done": 20, "mini_batches_total": 20, "rows": 9_600, "rows_per_s": 2_050.0, "eta_s": None,
         "failed_files": {"week-13.csv": "ValueError: could not convert 'n/a' to float"}, "error_count": 1,
         "output_path": "/data/out/job-52c1", "created_at": T0 - 3_600, "finished_at": T0 - 3_590},
        {"id": "job-19be", "endpoint": "oj-forecast", "deployment": "rf", "state": "Canceled", "done": True,
         "mini_batches_done": 4, "mini_batches_total": 20, "rows": 1_920, "rows_per_s": None, "eta_s": None,
         "failed_files": {}, "error_count": 0, "output_path": "/data/out/job-19be", "created_at": T0 - 7_200,
         "finished_at": T0 - 7_190},
    ]
    events = [
        {"id": 40, "ts": T0 - 300, "reason": "InstanceReady", "message": "blue-1 is ready (2.4 s)",
         "endpoint": "churn-api", "deployment": "blue"},
        {"id": 41, "ts": T0 - 240, "reason": "TrafficUpdated", "message": "traffic={'blue': 70, 'green': 30} mirror={}",
         "endpoint": "churn-api"},
        {"id": 42, "ts": T0 - 120, "reason": "ScaledUp", "message": "from 1 to 2 instances: utilisation 84% > 70%",
         "endpoint": "churn-api", "deployment": "blue"},
        {"id": 43, "ts": T0 - 30, "reason": "ScaledDown", "message": "from 2 to 1 instances: idle 300 s",
         "endpoint": "churn-api", "deployment": "green"},
    ]
    return Snapshot.from_dict({
        "taken_at": T0, "host": {"url": "http://127.0.0.1:5000", "pid": 4242, "version": "0.1.0",
                                 "home": "/home/ml/mlruns", "uptime_s": 5_400.0},
        "online_endpoints": online, "batch_endpoints": batch, "jobs": jobs,
        "events": {"events": events, "cursor": 43, "more": False},
    })


def sample_app(**kwargs: Any) -> Any:
    from .app import EndpointsApp

    return EndpointsApp(home="/home/ml/mlruns", snapshot=sample_snapshot(), models=sample_models(),
                        series=sample_series(), cursor_blink=False, **kwargs)


async def _shoot(path: Path, view: str, size: tuple[int, int]) -> None:
    app = sample_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.action_view(view)
        await pilot.pause()
        await pilot.pause(0.2)
        app.save_screenshot(filename=path.name, path=str(path.parent))


def save_screenshot(path: str | Path, view: str = "live", size: tuple[int, int] = (100, 30)) -> Path:
    """Export an SVG of ``view`` over the sample data, drawn by Textual itself."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(_shoot(out, view, size))
    return out


if __name__ == "__main__":  # pragma: no cover
    target = sys.argv[1] if len(sys.argv) > 1 else "docs/img/tui.svg"
    print(save_screenshot(target, sys.argv[2] if len(sys.argv) > 2 else "live"))
