"""Deploying a wizard's specs with progress, and what the user gets back: the URL, the key on
request, and snippets (curl, httpx, SDK; the invoke command for batch) that work as shown."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any, Callable

import ipywidgets as widgets

from ..specs import BatchDeployment, BatchEndpoint, OnlineDeployment, OnlineEndpoint
from ._base import esc
from ._live import example_request

__all__ = ["deploy_specs", "DeployResult", "snippets"]

Progress = Callable[[str, int, int], None]


@dataclass
class DeployResult:
    ws: Any
    kind: str                      # "online" | "batch"
    endpoint: str
    deployment: str
    url: str | None = None
    example: dict[str, Any] | None = None
    home: str = ""
    snippets: dict[str, str] = field(default_factory=dict)

    def widgets(self) -> list[widgets.Widget]:
        out: list[widgets.Widget] = []
        if self.kind == "online":
            url = widgets.Text(self.url or "", description="scoring URL", layout=widgets.Layout(width="640px"))
            key = widgets.Text("", description="key", layout=widgets.Layout(width="640px", display="none"))
            reveal = widgets.Button(description="Reveal key", icon="key", tooltip="Show the endpoint's primary key")
            note = widgets.HTML()

            def show_key(_: Any) -> None:
                try:
                    creds = self.ws.online_endpoints.get_credentials(self.endpoint)
                except Exception as err:  # shown beside the button
                    from ._base import message_of

                    note.value = f"<span class='endpoints-error'>{esc(message_of(err))}</span>"
                    return
                key.value = creds.get("primaryKey") or creds.get("accessToken") or "(no key: auth_mode none)"
                key.layout.display = None
                reveal.disabled = True

            reveal.on_click(show_key)
            self.reveal_button, self.key_text = reveal, key
            out += [url, widgets.HBox([reveal, note]), key]
        else:
            out.append(widgets.HTML(f"Batch endpoint <b>{esc(self.endpoint)}</b> is ready; its default deployment is "
                                    f"<b>{esc(self.deployment)}</b>. Start a job with <code>BatchLauncher(ws)</code> or:"))
        tabs = widgets.Tab(children=[widgets.Textarea(text, layout=widgets.Layout(width="760px", height="150px"))
                                     for text in self.snippets.values()])
        for i, name in enumerate(self.snippets):
            tabs.set_title(i, name)
        out.append(tabs)
        return out


def snippets(kind: str, endpoint: str, url: str | None, example: dict[str, Any] | None, home: str) -> dict[str, str]:
    """Copy-paste code for the deployed endpoint; ``ws`` is the notebook's workspace."""
    env = f"ENDPOINTS_HOME={shlex.quote(home)} " if home else ""
    if kind == "batch":
        return {
            "CLI": f"{env}endpoints batch-endpoint invoke --name {endpoint} --input path/to/folder/ --stream",
            "SDK": (f"job = ws.batch_endpoints.invoke({endpoint!r}, input='path/to/folder/')\n"
                    "job.wait(progress=True)\njob.outputs().head()\n"
                    "# or follow it live: JobMonitor(ws, job)"),
        }
    body = json.dumps(example or {"dataframe_split": {"columns": [], "data": []}})
    return {
        "curl": (f"export ENDPOINT_KEY=$({env}endpoints online-endpoint get-credentials --name {endpoint} -o json"
                 " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"primaryKey\"])')\n"
                 f"curl -s -X POST {url} -H 'Content-Type: application/json' \\\n"
                 f"  -H \"Authorization: Bearer $ENDPOINT_KEY\" \\\n  -d {shlex.quote(body)}"),
        "httpx": ("import httpx\n"
                  f"key = ws.online_endpoints.get_credentials({endpoint!r})['primaryKey']\n"
                  f"body = {body}\n"
                  f"resp = httpx.post({url!r}, json=body, headers={{'Authorization': f'Bearer {{key}}'}})\n"
                  "print(resp.status_code, resp.headers['x-deployment'], resp.json())"),
        "SDK": (f"body = {body}\n"
                f"ws.online_endpoints.invoke({endpoint!r}, body)"),
    }


def _wait_online(ws: Any, endpoint: str, name: str, want: int, on_progress: Progress, timeout: float = 300.0) -> None:
    def step(status: Any) -> None:
        on_progress(f"{status.state}: {status.ready_instances} of {want} instance(s) ready", status.ready_instances, want)

    # Raises with the host's reason when the deployment fails or does not start in time.
    ws.online_deployments.wait(endpoint, name, timeout=timeout, on_progress=step)


def deploy_specs(ws: Any, specs: list[Any], on_progress: Progress) -> DeployResult:
    """Create the endpoint then the deployment; online: wait for its instances, give it all traffic."""
    ep, dep = specs
    home = str(ws.status().get("home") or "")
    if isinstance(ep, OnlineEndpoint) and isinstance(dep, OnlineDeployment):
        want = dep.scale_settings.min_instances if dep.scale_settings.type == "target_utilization" else dep.instance_count
        want = max(1, want)
        on_progress(f"creating endpoint {ep.name}", 0, want)
        ws.online_endpoints.create_or_update(ep)
        on_progress(f"creating deployment {dep.name}: starting instances", 0, want)
        ws.online_deployments.create_or_update(dep, wait=False)
        _wait_online(ws, ep.name, dep.name, want, on_progress)
        ws.online_endpoints.update_traffic(ep.name, {dep.name: 100})
        info = ws.online_endpoints.get(ep.name)
        example = example_request(ws, ep.name)
        return DeployResult(ws, "online", ep.name, dep.name, info.get("scoring_uri"), example, home,
                            snippets("online", ep.name, info.get("scoring_uri"), example, home))
    assert isinstance(ep, BatchEndpoint) and isinstance(dep, BatchDeployment)
    on_progress(f"creating batch endpoint {ep.name}", 0, 2)
    ws.batch_endpoints.create_or_update(ep)
    on_progress(f"creating batch deployment {dep.name}", 1, 2)
    ws.batch_deployments.create_or_update(dep, set_default=True)
    return DeployResult(ws, "batch", ep.name, dep.name, None, None, home, snippets("batch", ep.name, None, None, home))
