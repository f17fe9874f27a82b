"""What every view shares: redraw from the app's state, and host calls in a worker."""

from __future__ import annotations

from typing import Any, Callable

from textual import work
from textual.containers import Vertical

__all__ = ["DataView", "run_on_host"]


def run_on_host(node: Any, fn: Callable[..., Any], *args: Any, done: Callable[[Any], Any] | None = None,
                failed: Callable[[Exception], Any] | None = None, title: str = "host", **kwargs: Any) -> None:
    """Call the blocking SDK function ``fn`` in a thread worker of ``node``; ``done(result)`` runs on
    the UI thread; a host error becomes an error notification carrying the host's own message."""
    _worker(node, fn, args, kwargs, done, failed, title)


@work(thread=True, exit_on_error=False)
def _worker(node: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            done: Callable[[Any], Any] | None, failed: Callable[[Exception], Any] | None, title: str) -> None:
    from toolkit.errors import ToolkitError

    app = node.app
    try:
        result = fn(*args, **kwargs)
    except ToolkitError as err:
        app.call_from_thread(app.notify, str(err), title=title, severity="error", timeout=8)
        if failed is not None:
            app.call_from_thread(failed, err)
        return
    except Exception as err:  # an unexpected failure is shown, never a traceback on the terminal
        app.call_from_thread(app.notify, f"{type(err).__name__}: {err}", title=title, severity="error", timeout=8)
        if failed is not None:
            app.call_from_thread(failed, err)
        return
    if done is not None:
        app.call_from_thread(done, result)


class DataView(Vertical):
    """A tab's content: ``update_view`` redraws from ``app.snapshot`` / ``app.models``."""

    def update_view(self) -> None:  # pragma: no cover - every view overrides it
        pass

    def focus_main(self) -> None:
        """Give the focus to the view's main widget (its table)."""
        tables = self.query("DataTable")
        if tables:
            tables.first().focus()

    def action_noop(self) -> None:
        pass

    @property
    def ws(self) -> Any:
        return self.app.ws

    def need_host(self) -> bool:
        if self.app.ws is None:
            self.app.notify("not connected to a host", severity="warning")
            return False
        return True
