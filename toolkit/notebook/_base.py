"""What every widget shares: an error line that shows the host's message, guarded callbacks, a
background refresher that never blocks the kernel and stops on close, and small HTML helpers."""

from __future__ import annotations

import functools
import html
import threading
from typing import Any, Callable

import ipywidgets as widgets

from ..errors import ToolkitError

__all__ = ["Panel", "Refresher", "esc", "table_html", "message_of", "STYLE"]

esc = html.escape

# One small stylesheet, injected with each widget (JupyterLab dedupes nothing, but it is tiny).
STYLE = """<style>
.endpoints-error {color:#b00020; background:#fdecea; border-left:4px solid #b00020; padding:4px 8px; margin:4px 0}
.endpoints-ok {color:#1b5e20}
.endpoints-muted {color:#666}
.endpoints-table table {border-collapse:collapse; font-size:13px}
.endpoints-table th, .endpoints-table td {padding:2px 10px 2px 0; text-align:left; vertical-align:top}
.endpoints-table th {border-bottom:1px solid #ccc}
.endpoints-h {font-weight:600; font-size:14px; margin:6px 0 2px 0}
.endpoints-card {border:1px solid #ddd; border-radius:4px; padding:6px 10px; margin:2px 4px 2px 0}
.endpoints-card.recommended {border:2px solid #2e7d32; background:#f1f8e9}
.endpoints-pre {font-family:monospace; font-size:12px; white-space:pre-wrap; margin:0}
</style>"""


def message_of(err: BaseException) -> str:
    """The host's own message for a toolkit error; type and text for anything else."""
    if isinstance(err, ToolkitError):
        return f"{err.error_code}: {err.message}"
    return f"{type(err).__name__}: {err}"


def table_html(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<span class='endpoints-muted'>none</span>"
    cols = columns or list(rows[0])
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{esc('-' if r.get(c) is None else str(r.get(c)))}</td>" for c in cols)
                   + "</tr>" for r in rows)
    return f"<div class='endpoints-table'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


class Panel(widgets.VBox):
    """A VBox with an error line: callbacks run through :meth:`guard`, so a host error appears in
    the widget with the host's message, never swallowed and never as a traceback in the page."""

    def __init__(self, ws: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ws = ws
        self.error = widgets.HTML(value="", layout=widgets.Layout(display="none"))
        self.error.add_class("endpoints-error-box")
        self._style = widgets.HTML(STYLE)

    _from_refresh = False

    def show_error(self, err: BaseException | str) -> None:
        text = err if isinstance(err, str) else message_of(err)
        self.error.value = f"<div class='endpoints-error'>{esc(text)}</div>"
        self.error.layout.display = None
        self._from_refresh = False

    def refresh_failed(self, err: BaseException) -> None:
        """A background refresh failed (the host restarting, the endpoint deleted): say so."""
        self.show_error(err)
        self._from_refresh = True

    def refresh_succeeded(self) -> None:
        """Clear an error a refresh showed; a callback's error stays until the user acts again."""
        if self._from_refresh:
            self.clear_error()
            self._from_refresh = False

    def clear_error(self) -> None:
        self.error.value = ""
        self.error.layout.display = "none"

    @property
    def error_text(self) -> str:
        """The message shown, as text ('' when none): what tests and users read."""
        return html.unescape(self.error.value.replace("<div class='endpoints-error'>", "").replace("</div>", ""))

    def guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a callback: clear the error line, run, show any exception's message instead."""
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            self.clear_error()
            try:
                return fn(*args, **kwargs)
            except Exception as err:  # every failure is shown where the user clicked
                self.show_error(err)
                return None
        return run

    def in_background(self, fn: Callable[[], Any], name: str) -> threading.Thread:
        """Run ``fn`` in a daemon thread (long host calls must not block the kernel)."""
        thread = threading.Thread(target=self.guard(fn), name=name, daemon=True)
        thread.start()
        return thread


class Refresher:
    """Calls ``tick`` every ``interval`` seconds in a daemon thread until :meth:`stop`.

    The first tick runs at once.  A tick's exception goes to ``on_error`` and the loop goes on
    (the host may be restarting); the widget shows the message until a tick succeeds.
    """

    def __init__(self, tick: Callable[[], Any], interval: float, name: str,
                 on_error: Callable[[BaseException], Any], on_ok: Callable[[], Any] | None = None) -> None:
        self.tick = tick
        self.interval = interval
        self.on_error = on_error
        self.on_ok = on_ok
        self.ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "Refresher":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as err:  # shown by the widget, the loop keeps going
                if not self._stop.is_set():
                    self.on_error(err)
            else:
                if self.on_ok is not None:
                    self.on_ok()
            self.ticks += 1
            self._stop.wait(self.interval)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
