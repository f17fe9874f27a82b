"""``ModelBrowser`` (registered models, versions, aliases, signatures, input examples; "deploy"
opens the wizard)."""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as widgets

from ._base import Panel, esc, table_html
from ._live import model_example

__all__ = ["ModelBrowser"]


class ModelBrowser(Panel):
    """Browse the registry; the deploy button opens a :class:`DeployWizard` on the selection."""

    def __init__(self, ws: Any) -> None:
        super().__init__(ws)
        self.models: dict[str, dict[str, Any]] = {}
        self.wizard: Any = None
        self.model_list = widgets.Select(description="", layout=widgets.Layout(width="220px", height="220px"))
        self.details = widgets.HTML(layout=widgets.Layout(margin="0 0 0 16px"))
        self.version = widgets.Dropdown(description="deploy", layout=widgets.Layout(width="260px"))
        self.deploy_button = widgets.Button(description="Deploy…", button_style="success", icon="rocket",
                                            tooltip="Open the deploy wizard on this version")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.wizard_box = widgets.VBox()
        self.children = [
            self._style, widgets.HTML("<div class='endpoints-h'>Registered models</div>"), self.error,
            widgets.HBox([widgets.VBox([self.model_list, self.refresh_button]), self.details]),
            widgets.HBox([self.version, self.deploy_button]), self.wizard_box,
        ]
        self.model_list.observe(self.guard(lambda _: self._show()), names="value")
        self.deploy_button.on_click(self.guard(lambda _: self.open_wizard()))
        self.refresh_button.on_click(self.guard(lambda _: self.refresh()))
        self.guard(self.refresh)()

    def refresh(self) -> None:
        self.models = {m["name"]: m.to_dict() for m in self.ws.models.list()}
        keep = self.model_list.value
        self.model_list.options = sorted(self.models)
        if keep in self.models:
            self.model_list.value = keep
        elif self.models:
            self.model_list.value = sorted(self.models)[0]
        self._show()

    def _show(self) -> None:
        m = self.models.get(self.model_list.value or "")
        if not m:
            self.details.value = "<span class='endpoints-muted'>no registered models yet</span>"
            self.version.options = []
            return
        aliases = m.get("aliases") or {}
        rows = []
        for v in sorted(m.get("versions") or [], key=lambda v: str(v["version"]), reverse=True):
            tags = {k: t for k, t in (v.get("tags") or {}).items() if not k.startswith("mlflow.")}
            rows.append({"version": v["version"], "aliases": ", ".join(v.get("aliases") or []),
                         "status": v.get("status"), "flavors": ", ".join(v.get("flavors") or []),
                         "tags": ", ".join(f"{k}={t}" for k, t in tags.items())})
        latest = max(m.get("versions") or [{}], key=lambda v: int(v["version"]) if str(v.get("version", "")).isdigit() else 0)
        inputs = (latest.get("signature") or {}).get("inputs") or []
        if isinstance(inputs, str):
            inputs = json.loads(inputs)
        ex = model_example(latest)
        self.details.value = (
            f"<b style='font-size:15px'>{esc(m['name'])}</b> <span class='endpoints-muted'>{esc(m.get('description') or '')}</span>"
            f"<div>aliases: {esc(', '.join(f'@{a} → v{v}' for a, v in aliases.items()) or '-')}</div>"
            + table_html(rows)
            + f"<div style='display:flex;gap:18px'><div><i>signature (v{esc(str(latest.get('version')))})</i>"
            + table_html([{"column": c.get("name"), "type": c.get("type")} for c in inputs if isinstance(c, dict)])
            + "</div><div><i>input example</i>"
            + (table_html([dict(zip(ex["columns"], r)) for r in ex["data"][:3]]) if ex else "-") + "</div></div>")
        self.version.options = ([(f"@{a} (v{v})", f"models:/{m['name']}@{a}") for a, v in sorted(aliases.items())]
                                + [(f"v{r['version']}", f"models:/{m['name']}/{r['version']}") for r in rows])

    def open_wizard(self) -> Any:
        from .wizard import DeployWizard

        if not self.version.value:
            raise ValueError("pick a model version to deploy")
        if self.wizard is not None:
            self.wizard.close()
        self.wizard = DeployWizard(self.ws, model=self.version.value)
        self.wizard_box.children = [self.wizard]
        return self.wizard

    def close(self) -> None:
        if self.wizard is not None:
            self.wizard.close()
        super().close()
