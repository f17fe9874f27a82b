"""``JobMonitor`` (a batch job's progress, errors per file, output preview, cancel) and
``BatchLauncher`` (pick a batch endpoint, an input and overrides, submit: it becomes the monitor)."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from ._base import Panel, Refresher, esc, table_html
from ._live import job_progress

__all__ = ["JobMonitor", "BatchLauncher"]


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class JobMonitor(Panel):
    """Follows one job (a ``Job`` or its id) every second until it ends.  ``close()`` stops it."""

    def __init__(self, ws: Any, job: Any, *, interval: float = 1.0, preview_rows: int = 10) -> None:
        super().__init__(ws)
        self.job_id = job if isinstance(job, str) else job.id
        self.preview_rows = preview_rows
        self.progress: dict[str, Any] = {}
        self.title = widgets.HTML()
        self.bar = widgets.IntProgress(0, min=0, max=1, layout=widgets.Layout(width="420px"))
        self.bar_label = widgets.HTML()
        self.failures = widgets.HTML()
        self.preview = widgets.HTML()
        self.cancel_button = widgets.Button(description="Cancel job", button_style="danger", icon="stop")
        self.cancel_button.on_click(self.guard(lambda _: self.cancel()))
        self.children = [self._style, self.title, self.error, widgets.HBox([self.bar, self.bar_label]),
                         self.cancel_button, self.failures, self.preview]
        self.refresher = Refresher(self._tick, interval, f"job-monitor-{self.job_id}", self.refresh_failed,
                                   self.refresh_succeeded)
        self.refresher.start()

    def _tick(self) -> None:
        p = job_progress(self.ws, self.job_id)
        self.progress = p
        self._render(p)
        if p.get("done"):
            self._finish(p)
            self.refresher.stop()  # nothing changes after a terminal state (called from its own thread: no join)

    def _render(self, p: dict[str, Any]) -> None:
        colour = {"Completed": "endpoints-ok", "Failed": "endpoints-error", "Canceled": "endpoints-muted"}.get(p["state"], "")
        self.title.value = (f"<div style='font-size:15px'>Job <b>{esc(p['id'])}</b> on "
                            f"{esc(str(p.get('endpoint')))}/{esc(str(p.get('deployment')))}: "
                            f"<span class='{colour}'><b>{esc(str(p['state']))}</b></span></div>")
        total = max(1, p.get("mini_batches_total") or 0)
        self.bar.max = total
        self.bar.value = min(total, p.get("mini_batches_done") or 0)
        self.bar.bar_style = {"Completed": "success", "Failed": "danger", "Canceled": "warning"}.get(p["state"], "info")
        rate = p.get("rows_per_s")
        self.bar_label.value = (f"{p.get('mini_batches_done') or 0}/{p.get('mini_batches_total') or '?'} mini-batches · "
                                f"{p.get('rows') or 0:,} rows · {f'{rate:,.0f}' if rate else '-'} rows/s · "
                                f"ETA {_eta(p.get('eta_s')) if not p.get('done') else '-'}")
        failed = p.get("failed_files") or {}
        self.failures.value = ("" if not failed else "<div class='endpoints-h'>Errors per file</div>"
                               + table_html([{"file": f, "error": e} for f, e in failed.items()]))
        self.cancel_button.disabled = bool(p.get("done")) or p["state"] == "CancelRequested"

    def _finish(self, p: dict[str, Any]) -> None:
        if p["state"] == "Completed":
            try:
                df = self.ws.jobs.get(self.job_id).outputs()
            except Exception as err:  # e.g. summary_only: say why there is nothing to preview
                self.preview.value = f"<span class='endpoints-muted'>{esc(str(err))}</span>"
                return
            self.outputs = df
            self.preview.value = (f"<div class='endpoints-h'>Output ({len(df):,} rows, first {self.preview_rows})</div>"
                                  f"<div class='endpoints-table'>{df.head(self.preview_rows).to_html(index=False)}</div>")
        elif p.get("message"):
            self.preview.value = f"<div class='endpoints-muted'>{esc(str(p['message']))}</div>"

    def cancel(self) -> None:
        self.ws.jobs.cancel(self.job_id)
        self.cancel_button.disabled = True

    @property
    def done(self) -> bool:
        return bool(self.progress.get("done"))

    def wait(self, timeout: float = 600.0) -> dict[str, Any]:
        """Block until the job ends (the widget keeps updating meanwhile); its last progress."""
        import time

        deadline = time.monotonic() + timeout
        while not self.done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {self.job_id} is still {self.progress.get('state')} after {timeout:.0f} s")
            time.sleep(0.2)
        return self.progress

    def close(self) -> None:
        self.refresher.stop()
        super().close()


class BatchLauncher(Panel):
    """Start a job on a batch endpoint; after submitting, ``launcher.monitor`` follows it."""

    def __init__(self, ws: Any, endpoint: str | None = None, input: str = "") -> None:
        super().__init__(ws)
        self.monitor: JobMonitor | None = None
        self.job: Any = None
        style = {"description_width": "150px"}
        lay = widgets.Layout(width="520px")
        self.endpoint = widgets.Dropdown(description="batch endpoint", style=style, layout=lay)
        self.deployment = widgets.Dropdown(description="deployment", style=style, layout=lay)
        self.input = widgets.Text(input, description="input folder / glob", placeholder="data/weekly/ or data/*.csv",
                                  style=style, layout=lay)
        self.mini_batch_size = widgets.BoundedIntText(0, min=0, max=10**6, description="files per mini-batch",
                                                      style=style, layout=widgets.Layout(width="260px"))
        self.instance_count = widgets.BoundedIntText(0, min=0, max=1000, description="workers", style=style,
                                                     layout=widgets.Layout(width="260px"))
        self.error_threshold = widgets.BoundedIntText(-2, min=-2, max=10**6, description="error threshold", style=style,
                                                      layout=widgets.Layout(width="260px"))
        hint = widgets.HTML("<span class='endpoints-muted'>0 (threshold -2) keeps the deployment's setting</span>")
        self.submit_button = widgets.Button(description="Submit job", button_style="success", icon="play")
        self.submit_button.on_click(self.guard(lambda _: self.submit()))
        self.form = widgets.VBox([self.endpoint, self.deployment, self.input,
                                  widgets.HBox([self.mini_batch_size, self.instance_count, self.error_threshold]), hint,
                                  self.submit_button])
        self.children = [self._style, widgets.HTML("<div class='endpoints-h'>Start a batch job</div>"), self.error, self.form]
        self.endpoint.observe(self.guard(lambda _: self._deployments()), names="value")
        self.guard(self._load)(endpoint)

    def _load(self, endpoint: str | None) -> None:
        names = [e["name"] for e in self.ws.batch_endpoints.list()]
        if endpoint and endpoint not in names:
            names.append(endpoint)  # the host will say what is wrong with it on submit
        self.endpoint.options = names
        if endpoint:
            self.endpoint.value = endpoint
        self._deployments()

    def _deployments(self) -> None:
        if not self.endpoint.value:
            self.deployment.options = []
            return
        deps = [d["name"] for d in self.ws.batch_deployments.list(self.endpoint.value)]
        self.deployment.options = [("(the endpoint's default)", ""), *[(d, d) for d in deps]]

    def submit(self) -> Any:
        if not self.endpoint.value:
            raise ValueError("pick a batch endpoint (create one with the DeployWizard or the SDK first)")
        if not self.input.value.strip():
            raise ValueError("input: give a folder, file, glob or URL of CSV/Parquet files")
        overrides = {"mini_batch_size": self.mini_batch_size.value or None,
                     "instance_count": self.instance_count.value or None,
                     "error_threshold": None if self.error_threshold.value == -2 else self.error_threshold.value}
        self.job = self.ws.batch_endpoints.invoke(self.endpoint.value, input=self.input.value.strip(),
                                                  deployment_name=self.deployment.value or None, **overrides)
        self.monitor = JobMonitor(self.ws, self.job)
        self.children = [self._style, self.monitor]
        return self.job

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
        super().close()
