"""A job's details: progress, errors per file and a preview of its output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from ..format import bar
from ..widgets.base import run_on_host

if TYPE_CHECKING:  # pragma: no cover
    from toolkit.views import JobProgress

__all__ = ["JobDetailsScreen"]

PREVIEW_ROWS = 8


class JobDetailsScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "close", "Back"), Binding("r", "reload", "Reload")]

    def __init__(self, job: "JobProgress") -> None:
        super().__init__()
        self.job = job

    def compose(self) -> ComposeResult:
        yield Label(f"job {self.job.id}", classes="screen-title")
        with VerticalScroll():
            yield Static(self.summary(), id="job-summary")
            yield Static(self.errors(), id="job-errors")
            yield Static(Text("output preview: loading...", style="dim"), id="job-output")
        yield Footer()

    def summary(self) -> Any:
        j = self.job
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("state", j.state)
        grid.add_row("endpoint", f"{j.endpoint}/{j.deployment or '-'}")
        grid.add_row("progress", f"{bar(j.mini_batches_done, j.mini_batches_total, 20)}  "
                                 f"{j.mini_batches_done}/{j.mini_batches_total or '?'} mini-batches")
        grid.add_row("rows", f"{j.rows:,}" + (f" at {j.rows_per_s:,.0f}/s" if j.rows_per_s else ""))
        grid.add_row("output", j.output_path or "-")
        return grid

    def errors(self) -> Any:
        if not self.job.failed_files:
            return Text.assemble(("errors per file: ", "bold"), f"none ({self.job.error_count} errors)")
        table = Table(title=f"errors per file ({self.job.error_count})", title_justify="left", expand=True)
        table.add_column("file", overflow="fold")
        table.add_column("error", overflow="fold", style="red3")
        for f, e in self.job.failed_files.items():
            table.add_row(f, e)
        return table

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        app: Any = self.app
        if app.ws is None:
            self.query_one("#job-output", Static).update(Text("output preview: not connected", style="dim"))
            return
        job_id = self.job.id
        run_on_host(self, lambda: app.ws.jobs.get(job_id).outputs().head(PREVIEW_ROWS), title="output",
                    done=self.show_output, failed=lambda err: self.query_one("#job-output", Static).update(
                        Text(f"output preview: {err}", style="dim")))

    def show_output(self, frame: Any) -> None:
        table = Table(title=f"output preview (first {PREVIEW_ROWS} rows)", title_justify="left")
        for col in frame.columns:
            table.add_column(str(col))
        for row in frame.itertuples(index=False):
            table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
        self.query_one("#job-output", Static).update(table)

    def action_close(self) -> None:
        self.dismiss(None)
