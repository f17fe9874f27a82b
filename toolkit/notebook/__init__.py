"""Jupyter widgets for the Endpoints Toolkit: deploy with the advisor, roll out, watch, follow jobs.

    from toolkit.notebook import DeployWizard, EndpointDashboard, JobMonitor, BatchLauncher, ModelBrowser
    DeployWizard(ws)                    # pick a model, answer the four questions, see the advice, deploy
    EndpointDashboard(ws, "churn")      # traffic and mirror sliders, live charts, test box, logs
    JobMonitor(ws, job)                 # progress, errors per file, output preview, cancel

Every widget is a thin client of the SDK (``toolkit.Workspace``): it reads and changes the host
only through the workspace's public methods.  This is the only package of ``toolkit`` that
imports ipywidgets; ``import toolkit`` never imports it.
"""

from __future__ import annotations

try:
    import ipywidgets as _ipywidgets  # noqa: F401
    import bqplot as _bqplot  # noqa: F401
except ImportError as _err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"toolkit.notebook needs ipywidgets and bqplot ({_err.name} is not installed): "
        "pip install 'endpoints-toolkit[notebook]' (or: pip install ipywidgets bqplot jupyterlab)"
    ) from None

from .dashboard import EndpointDashboard  # noqa: E402
from .jobs import BatchLauncher, JobMonitor  # noqa: E402
from .models import ModelBrowser  # noqa: E402
from .wizard import DeployWizard  # noqa: E402

__all__ = ["DeployWizard", "EndpointDashboard", "JobMonitor", "BatchLauncher", "ModelBrowser"]
