"""``toolkit.Workspace``: the SDK entry point, mirroring azure-ai-ml's ``MLClient``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

from . import launcher
from .apply import ApplyPlan, Change, apply_plan, plan_changes, specs_of
from .client import HostClient
from .entities import Entity
from .errors import HostNotRunning, InvalidSpec
from .home import Home
from .live import events_call, snapshot_call, stats_history_call
from .operations import (
    BatchDeploymentOperations, BatchEndpointOperations, JobOperations, ModelOperations,
    OnlineDeploymentOperations, OnlineEndpointOperations,
)
from .views import EventPage, Snapshot, StatsSeries

__all__ = ["Workspace"]


class Workspace:
    """One workspace home and its host.

    ``Workspace()`` uses ``$ENDPOINTS_HOME`` or ``./mlruns`` and starts the host if none runs
    (``start=False`` to only attach).  ``port`` is used when a host has to be started.
    """

    def __init__(
        self, home: str | os.PathLike[str] | Home | None = None, *, port: int | None = None,
        host: str = "127.0.0.1", start: bool = True,
    ) -> None:
        self.home = home if isinstance(home, Home) else Home.resolve(home)
        info = launcher.read_host(self.home)
        if info is None:
            if not start:
                raise HostNotRunning(f"no host is running for {self.home.root}; start one with `endpoints up`")
            info = launcher.start_background(self.home, host=host, port=self._pick_port(host, port))
            # Said once, when it happens: a host that appears silently is a surprise later.
            print(f"started a host for {self.home.root} at {info.url} (none was running; "
                  "`endpoints down` stops it)", file=sys.stderr)
        self.host_info = info
        token = self.home.admin_token()
        if not token:
            raise HostNotRunning(f"{self.home.admin_token_file} is missing; restart the host")
        self._client = HostClient(info.url, token)
        self.models = ModelOperations(self._client)
        self.online_endpoints = OnlineEndpointOperations(self._client)
        self.online_deployments = OnlineDeploymentOperations(self._client, self.online_endpoints)
        self.batch_endpoints = BatchEndpointOperations(self._client)
        self.batch_deployments = BatchDeploymentOperations(self._client)
        self.jobs = JobOperations(self._client)

    @staticmethod
    def _pick_port(host: str, port: int | None) -> int:
        if port is not None:
            return port
        # The SDK starts a host on the default port when it is free, else on any free port.
        return launcher.DEFAULT_PORT if launcher.port_free(host, launcher.DEFAULT_PORT) else 0

    @property
    def url(self) -> str:
        return self.host_info.url

    @property
    def mlflow_tracking_uri(self) -> str:
        """The MLflow tracking/registry URI of this workspace (``mlflow.set_tracking_uri(...)``)."""
        return self.home.tracking_uri

    def use_registry(self, experiment: str | None = None) -> str:
        """Point this process's MLflow at the workspace's registry, so that ``log_model(...,
        registered_model_name=...)`` registers models the endpoints can deploy.

        Also selects an experiment (``experiment``, default ``endpoints-toolkit``) whose artifacts
        live inside the workspace home, not in the current folder.  Returns the tracking URI.
        """
        from .registry import ensure_experiment
        from .home import DEFAULT_EXPERIMENT

        ensure_experiment(self.home, experiment or DEFAULT_EXPERIMENT)
        return self.home.tracking_uri

    def status(self) -> Entity:
        return Entity(self._client.call("GET", "/status"), "host")

    def events(self, *, endpoint: str | None = None, deployment: str | None = None, job: str | None = None,
               since: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("endpoint", endpoint), ("deployment", deployment), ("job", job)) if v}
        return self._client.call("GET", "/events", params={**params, "since": since, "limit": limit})

    def stats(self, endpoint: str | None = None) -> dict[str, Any]:
        return self.online_endpoints.stats(endpoint)

    # --- live views for UIs (typed, see toolkit.views) ---------------------------------------
    def snapshot(self, *, endpoint: str | None = None, events_after: int | None = None,
                 events_limit: int = 100) -> Snapshot:
        """One dashboard frame: host, endpoints, deployments with instances and current stats,
        active and recent jobs, and events (the newest ones, or the page after ``events_after``)."""
        return self._client.run(snapshot_call(endpoint, events_after, events_limit))

    def events_page(self, after: int = 0, *, endpoint: str | None = None, deployment: str | None = None,
                    job: str | None = None, limit: int = 100) -> EventPage:
        """Events with id > ``after``, oldest first; pass ``page.cursor`` back as ``after`` (loop
        while ``page.more``) and every event is seen exactly once."""
        return self._client.run(events_call(after, endpoint=endpoint, deployment=deployment, job=job, limit=limit))

    def stats_history(self, endpoint: str | None = None, *, since: float | None = None) -> list[StatsSeries]:
        """Per deployment, 10-second buckets over the last 15 minutes (or those ending after ``since``)."""
        return self._client.run(stats_history_call(endpoint, since=since))

    def advise(self, workload: Any = None, **kwargs: Any) -> Any:
        """Recommend online or batch for a workload (a Workload, a dict, a YAML path, or keywords)."""
        from .advisor import Advice

        if isinstance(workload, (str, Path)):
            import yaml

            try:
                body = yaml.safe_load(Path(workload).read_text()) or {}
            except (OSError, yaml.YAMLError) as err:
                raise InvalidSpec(f"{workload}: cannot read workload ({err})") from None
        elif workload is None:
            body = {}
        elif hasattr(workload, "model_dump"):
            body = workload.model_dump(mode="json", exclude_unset=True)
        else:
            body = dict(workload)
        body.update(kwargs)
        return Advice.from_dict(self._client.call("POST", "/advise", json=body))

    def apply(self, target: Any, *, dry_run: bool = False,
              on_applied: Callable[[Change], None] | None = None) -> ApplyPlan:
        """Create or update what ``target`` describes: an ``Advice`` (its recommended option), a
        spec, a list of specs, or an ``ApplyPlan`` returned earlier.

        Returns the plan: each resource created or updated, the fields that differ and where
        traffic would move; ``plan.live`` names the existing resources it changes (ask first).
        With ``dry_run`` nothing changes.  Applying a plan from an earlier ``dry_run`` carries out
        exactly what was shown; ``on_applied(change)`` is called after each resource.
        """
        plan = target if isinstance(target, ApplyPlan) else ApplyPlan(plan_changes(self, specs_of(target)))
        if dry_run:
            return plan
        return apply_plan(self, plan, on_applied)

    def shutdown(self) -> None:
        """Stop the host of this workspace (and everything it started)."""
        launcher.stop(self.home)
        self.close()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Workspace home={str(self.home.root)!r} url={self.url!r}>"

    def _repr_html_(self) -> str:
        return self.status()._repr_html_()
