"""Read-side views of the online service: ``show``, logs, stats and the OpenAPI document.

A mixin of :class:`.service.OnlineService`: it only reads the in-memory deployments and route
tables the service keeps, so the lifecycle code (deploy, scale, stop) stays in :mod:`.service`.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import NotAvailableYet, NotFound
from .deployment import Deployment, Instance
from .logtail import tail_lines
from .metrics import InstanceSample
from .resources import MIB
from .router import RouteTable
from .stats import WINDOW_S

if TYPE_CHECKING:
    from ..context import HostContext

__all__ = ["ServiceViews"]

_KIND_D = "online-deployment"
_LOG_FILES_MAX = 12


class ServiceViews:
    ctx: "HostContext"
    tables: dict[str, RouteTable]
    deployments: dict[tuple[str, str], Deployment]
    _swagger: dict[str, tuple[tuple[Any, ...], bytes]]

    async def swagger_document(self, table: RouteTable, dep: Deployment) -> bytes:
        key = (dep.name, dep.gen.model_uri, table.auth_mode)
        cached = self._swagger.get(table.endpoint)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            from . import openapi
        except ImportError:
            raise NotAvailableYet("the OpenAPI document builder is not available in this build") from None
        signature, example = await asyncio.to_thread(self._signature_and_example, dep.gen.model_path)
        url = f"{self.ctx.settings.url}/endpoints/{table.endpoint}/score"
        doc = openapi.build_document(table.endpoint, url, signature, example, table.auth_mode)
        body = json.dumps(doc).encode()
        self._swagger[table.endpoint] = (key, body)
        return body

    @staticmethod
    def _signature_and_example(model_path: str) -> tuple[Any, Any]:
        import mlflow.models

        model = mlflow.models.Model.load(model_path)
        try:
            example = model.load_input_example(model_path)
        except Exception:
            example = None
        return model.signature, example

    # --- views ---------------------------------------------------------------------------
    def _instance_samples(self) -> Iterator[InstanceSample]:
        for dep in list(self.deployments.values()):
            for inst in dep.all_instances():
                yield InstanceSample(dep.endpoint, dep.name, inst.id, inst.state,
                                     inst.ps if inst.alive else None, inst.cpu_percent)

    def describe(self, endpoint: str, name: str) -> dict[str, Any]:
        dep = self.deployments.get((endpoint, name))
        if dep is None:
            if self.ctx.store.find(_KIND_D, endpoint, name) is None:
                raise NotFound(f"online deployment {name!r} of endpoint {endpoint!r} does not exist")
            return {"endpoint": endpoint, "deployment": name, "instances": [], "ready": 0, "total": 0,
                    "target_instances": 0, "running": False}
        c = dep.gen.compute
        return {
            "endpoint": endpoint, "deployment": name, "running": not dep.closed,
            "model_uri": dep.gen.model_uri, "model_path": dep.gen.model_path,
            "instance_type": c.instance_type, "cores": c.cores, "memory_limit_mib": round(c.memory_limit_bytes / MIB),
            "target_instances": dep.target, "ready": len(dep.ready), "total": len(dep.instances),
            "in_flight": sum(i.inflight for i in dep.all_instances()), "queued": len(dep.waiters),
            "updating": bool(dep.pending), "failed": dep.failed,
            "instances": [i.describe() for i in dep.instances],
            "pending_instances": [i.describe() for i in dep.pending],
            "retiring_instances": [i.describe() for i in dep.retired],
        }

    def log_files(self, endpoint: str, name: str) -> list[tuple[str, Path, Instance | None]]:
        """(instance id, log file, live instance or None) of a deployment's newest logs, oldest first."""
        folder: Path = self.ctx.home.logs / endpoint / name
        files = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
        dep = self.deployments.get((endpoint, name))
        live = {i.id: i for i in dep.all_instances()} if dep else {}
        return [(f.stem, f, live.get(f.stem)) for f in files[-_LOG_FILES_MAX:]]

    def logs(self, endpoint: str, name: str, lines: int) -> str:
        out = []
        for instance_id, path, inst in self.log_files(endpoint, name):
            what = f"pid {inst.pid}, {inst.state}" if inst else "not running"
            out.append(f"==> {instance_id} ({what}) <==")
            out.append(tail_lines(path, lines))
        return "\n".join(out)

    def stats_history(self, endpoint: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        """Per deployment (of ``endpoint``, or all): 10-second buckets of the last 15 minutes."""
        return [{"endpoint": e, "deployment": d, "buckets": dep.stats.history(since)}
                for (e, d), dep in sorted(self.deployments.items()) if endpoint is None or e == endpoint]

    def stats(self, endpoint: str | None = None) -> dict[str, Any]:
        if endpoint is None:
            names = sorted(set(self.tables) | {e for e, _ in self.deployments})
            return {"window_s": WINDOW_S, "generated_at": time.time(),
                    "endpoints": {e: self.stats(e) for e in names}}
        now = time.monotonic()
        table = self.tables.get(endpoint)
        deps: dict[str, Any] = {}
        for (e, d), dep in sorted(self.deployments.items()):
            if e != endpoint:
                continue
            snap = dep.stats.snapshot(now)
            snap["in_flight"] = sum(i.inflight for i in dep.all_instances())
            snap["queued"] = len(dep.waiters)
            snap["instances"] = {"ready": len(dep.ready), "total": len(dep.instances), "target": dep.target}
            snap["traffic"] = table.traffic.get(d, 0) if table else 0
            snap["mirror"] = round(table.mirror_share * 100) if table and table.mirror == d else 0
            snap["failed"] = dep.failed
            deps[d] = snap
        return {"endpoint": endpoint, "window_s": WINDOW_S, "auth_mode": table.auth_mode if table else None,
                "deployments": deps}

