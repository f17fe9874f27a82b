"""Jobs view: batch jobs with state and a progress bar each, live; submit, cancel, details."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..format import STATE_STYLE, ago, bar
from .base import DataView, run_on_host

if TYPE_CHECKING:  # pragma: no cover
    from toolkit.views import JobProgress

__all__ = ["JobsView"]


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"eta {seconds:.0f}s" if seconds < 120 else f"eta {seconds / 60:.0f}m"


class JobsView(DataView):
    BINDINGS = [
        Binding("n", "submit", "Submit"),
        Binding("x", "cancel", "Cancel job"),
        Binding("enter", "details", "Details", show=False),
    ]

    def compose(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="jobs-table", cursor_type="row")
        table.add_columns("Job", "Endpoint", "State", "Progress", "Rows")
        yield table
        yield Static("", id="job-detail")

    def jobs(self) -> list["JobProgress"]:
        snap = self.app.snapshot
        if snap is None:
            return []
        return sorted(snap.jobs, key=lambda j: (j.done, -(j.created_at or 0)))

    def update_view(self) -> None:
        table = self.query_one("#jobs-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for job in self.jobs():
            total = job.mini_batches_total
            table.add_row(job.id, job.endpoint, Text(job.state, style=STATE_STYLE.get(job.state, "")),
                          bar(job.mini_batches_done, total, width=10), f"{job.rows:,}", key=job.id)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        self.show_detail()

    def selected(self) -> "JobProgress | None":
        jobs = self.jobs()
        row = self.query_one("#jobs-table", DataTable).cursor_row
        return jobs[row] if jobs and 0 <= row < len(jobs) else None

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def on_data_table_row_selected(self, _: DataTable.RowSelected) -> None:
        self.action_details()

    def show_detail(self) -> None:
        job = self.selected()
        box = self.query_one("#job-detail", Static)
        if job is None:
            box.update("No batch jobs yet. n submits one to a batch endpoint.")
            return
        speed = f"{job.rows_per_s:,.0f} rows/s " if job.rows_per_s else ""
        line1 = Text.assemble((job.id, "bold"), f" on {job.endpoint}/{job.deployment or '-'}  ",
                              f"{job.mini_batches_done}/{job.mini_batches_total or '?'} mini-batches  {speed}",
                              _eta(job.eta_s if not job.done else None))
        errors = Text.assemble((f"started {ago(job.created_at, self.app.now())}  ", "dim"), ("errors ", "bold"), (f"{job.error_count}", "bold red3" if job.error_count else "bold"),
                               "  " + "; ".join(f"{f}: {e}" for f, e in list(job.failed_files.items())[:2]))
        out = Text.assemble(("output ", "bold"), job.output_path or "-")
        box.update(Text("\n").join([line1, errors, out]))

    def action_submit(self) -> None:
        from ..screens.job_submit import JobSubmitScreen

        snap = self.app.snapshot
        endpoints = [e.name for e in snap.batch_endpoints] if snap else []
        if not endpoints:
            self.app.notify("no batch endpoint: deploy a model as batch first (Models, d)", severity="warning")
            return
        self.app.push_screen(JobSubmitScreen(endpoints), self._submit)

    def _submit(self, request: dict[str, Any] | None) -> None:
        if request is None or not self.need_host():
            return
        endpoint = request.pop("endpoint")
        path = request.pop("input")
        run_on_host(self, self.ws.batch_endpoints.invoke, endpoint, path, title="job",
                    done=lambda job: (self.app.notify(f"job {job.id} submitted to {endpoint}"), self.app.poll()),
                    **request)

    def action_cancel(self) -> None:
        job = self.selected()
        if job is None:
            self.app.notify("no job selected", severity="warning")
            return
        if job.done:
            self.app.notify(f"job {job.id} already ended ({job.state})", severity="warning")
            return
        if self.need_host():
            run_on_host(self, self.ws.jobs.cancel, job.id, title="cancel",
                        done=lambda j: (self.app.notify(f"job {j.id}: {j.state}"), self.app.poll()))

    def action_details(self) -> None:
        from ..screens.job_details import JobDetailsScreen

        job = self.selected()
        if job is not None:
            self.app.push_screen(JobDetailsScreen(job))
