"""Endpoints Toolkit: MLflow registry models on local online endpoints and Dask batch endpoints.

The headless core and SDK.  Nothing here imports textual; only ``toolkit.notebook`` imports
ipywidgets.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import *  # noqa: E402,F401,F403
from .errors import __all__ as _error_names  # noqa: E402
from .specs import BatchDeployment, BatchEndpoint, OnlineDeployment, OnlineEndpoint  # noqa: E402
from .views import *  # noqa: E402,F401,F403
from .views import __all__ as _view_names  # noqa: E402
from .workspace import Workspace  # noqa: E402
from .aio import AsyncWorkspace  # noqa: E402

__all__ = [
    "Workspace", "AsyncWorkspace", "OnlineEndpoint", "OnlineDeployment", "BatchEndpoint", "BatchDeployment",
    "__version__", *_error_names, *_view_names,
]
