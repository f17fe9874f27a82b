"""Models view: registered models and their versions, aliases, signature and input example."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from ..messages import OpenDeploy
from .base import DataView

__all__ = ["ModelsView", "example_for", "example_from_signature"]

_ZERO = {"double": 0.0, "float": 0.0, "long": 0, "integer": 0, "boolean": False, "string": "", "datetime": "2024-01-01"}


def example_from_signature(signature: dict[str, Any] | None) -> dict[str, Any] | None:
    """A one-row ``dataframe_split`` request built from a column signature (zeros of each type)."""
    inputs = (signature or {}).get("inputs")
    if isinstance(inputs, str):
        try:
            inputs = json.loads(inputs)
        except ValueError:
            return None
    if not isinstance(inputs, list) or not inputs or not all(isinstance(c, dict) and c.get("name") for c in inputs):
        return None
    columns = [c["name"] for c in inputs]
    return {"dataframe_split": {"columns": columns, "data": [[_ZERO.get(str(c.get("type")), 0) for c in inputs]]}}


def example_for(version: dict[str, Any]) -> dict[str, Any] | None:
    """The version's saved input example as a request body, else one built from its signature."""
    saved = version.get("input_example")
    if isinstance(saved, dict):
        return saved if any(k in saved for k in ("dataframe_split", "dataframe_records", "inputs", "instances")) \
            else {"dataframe_records": [saved]}
    if isinstance(saved, list):
        return {"dataframe_records": saved}
    return example_from_signature(version.get("signature"))


def _columns(part: Any) -> list[tuple[str, str]]:
    if isinstance(part, str):
        try:
            part = json.loads(part)
        except ValueError:
            return [("", part)]
    if not isinstance(part, list):
        return []
    return [(str(c.get("name", "-")), str(c.get("type", "?"))) for c in part if isinstance(c, dict)]


class ModelsView(DataView):
    BINDINGS = [
        Binding("d", "deploy", "Deploy"),
        Binding("enter", "deploy", "Deploy", show=False),
        Binding("r", "refresh", "Refresh"),
    ]

    def compose(self) -> ComposeResult:
        with Horizontal():
            table: DataTable[Any] = DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
            table.add_columns("Model", "Ver", "Aliases")
            yield table
            with VerticalScroll(id="model-details"):
                yield Static("No models yet: register one with MLflow.", id="model-detail")

    def rows(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(model, version) pairs, newest version first within a model."""
        out = []
        for model in self.app.models:
            for version in sorted(model.get("versions", []), key=lambda v: -int(v.get("version", 0))):
                out.append((model, version))
        return out

    def update_view(self) -> None:
        table = self.query_one("#models-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for model, version in self.rows():
            aliases = ", ".join(f"@{a}" for a in version.get("aliases", []))
            table.add_row(model["name"], f"v{version['version']}", aliases, key=f"{model['name']}/{version['version']}")
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        self.show_details()

    def selected(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        table = self.query_one("#models-table", DataTable)
        rows = self.rows()
        if not rows or table.cursor_row >= len(rows):
            return None
        return rows[table.cursor_row]

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self.show_details()

    def on_data_table_row_selected(self, _: DataTable.RowSelected) -> None:
        self.action_deploy()

    def show_details(self) -> None:
        picked = self.selected()
        detail = self.query_one("#model-detail", Static)
        if picked is None:
            detail.update("No models yet: register one with MLflow, or run `endpoints demo`.")
            return
        model, v = picked
        head = Text.assemble((f"{model['name']} v{v['version']}", "bold"), f"  {v.get('status', '')}")
        meta = Table.grid(padding=(0, 1))
        meta.add_column(style="bold")
        meta.add_column()
        meta.add_row("uri", f"models:/{model['name']}/{v['version']}")
        aliases = model.get("aliases") or {}
        meta.add_row("aliases", ", ".join(f"@{a} -> v{n}" for a, n in aliases.items()) or "-")
        meta.add_row("flavors", ", ".join(v.get("flavors") or []) or "-")
        if model.get("description"):
            meta.add_row("about", model["description"])
        sig = v.get("signature") or {}
        inputs, outputs = _columns(sig.get("inputs")), _columns(sig.get("outputs"))
        cols = Table(title="signature", title_justify="left", show_edge=False, pad_edge=False, expand=False)
        cols.add_column("input")
        cols.add_column("type", style="dim")
        for name, kind in inputs or [("(none)", "")]:
            cols.add_row(name, kind)
        out = ", ".join(f"{n}: {t}" if n and n != "-" else t for n, t in outputs) or "-"
        example = example_for(v)
        example_text = json.dumps(example) if example else "-"
        saved = "saved" if v.get("input_example") is not None else "from signature"
        detail.update(Group(
            head, meta, Text(""), cols, Text.assemble(("output ", "bold"), out), Text(""),
            Text.assemble((f"input example ({saved})", "bold")), Text(example_text, overflow="fold"),
            Text(""), Text("d: deploy this version", style="dim"),
        ))

    def action_deploy(self) -> None:
        picked = self.selected()
        if picked is None:
            self.app.notify("no model selected", severity="warning")
            return
        model, version = picked
        self.post_message(OpenDeploy(f"models:/{model['name']}/{version['version']}", {**model, "version": version}))

    def action_refresh(self) -> None:
        self.app.action_refresh()
