"""The control-plane core: typed operations that hold every rule spanning resources.

``ControlPlane`` (plane.py) composes the online (online.py) and batch (batch.py) operations over
the rules (rules.py) and the views the API answers with (views.py).  HTTP lives in
``toolkit/host/control.py``, a thin adapter over it.
"""

from .plane import ControlPlane
from .rules import ACTIVE_JOB_STATES

__all__ = ["ControlPlane", "ACTIVE_JOB_STATES"]
