"""The rules that span resources, as plain functions over the store and the registry.

They raise the toolkit's own errors (InvalidSpec, Conflict, NotFound) with messages that name the
field and what to do; the HTTP layer turns those into 400/409/404 unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import Conflict, InvalidSpec, NotFound
from ..registry import Registry
from ..specs import MAX_DEPLOYMENTS_PER_ENDPOINT, BatchDeployment, OnlineDeployment, OnlineEndpoint
from ..store import Store

__all__ = [
    "OE", "OD", "BE", "BD", "ACTIVE_JOB_STATES", "BUSY_STATES", "same_name", "refuse_existing", "check_traffic",
    "check_deployment_limit", "check_not_busy", "resolve_model", "check_location", "check_code",
]

# Resource kinds as the store names them.
OE, OD, BE, BD = "online-endpoint", "online-deployment", "batch-endpoint", "batch-deployment"
# A job in one of these states still uses its deployment: deleting the deployment must wait.
ACTIVE_JOB_STATES = ("NotStarted", "Queued", "Running", "Finalizing", "CancelRequested")
# A deployment in one of these states is being changed by the online service: a second change waits.
BUSY_STATES = ("Creating", "Updating", "Deleting")


def same_name(path_name: str, spec_name: str, field: str = "name") -> None:
    """The name addressed (the URL's) and the name in the spec must agree."""
    if path_name != spec_name:
        raise InvalidSpec(f"{field}: {spec_name!r} does not match the name in the URL ({path_name!r})")


def refuse_existing(store: Store, kind: str, endpoint: str, name: str, what: str) -> None:
    """``create`` must not overwrite: an existing resource is changed with ``update``."""
    if store.find(kind, endpoint, name) is not None:
        raise Conflict(f"{what} already exists; use `update` to change it")


def check_traffic(store: Store, spec: OnlineEndpoint) -> None:
    """Traffic and mirror traffic name only the endpoint's deployments; a Failed one takes none."""
    deployments = store.list(OD, spec.name)
    names = {d.name for d in deployments}
    for field, table in (("traffic", spec.traffic), ("mirror_traffic", spec.mirror_traffic)):
        for dep in table:
            # Even a 0 entry: a typo in a deployment's name must not be saved as if it meant something.
            if dep not in names:
                known = f"; its deployments: {', '.join(sorted(names))}" if names else "; it has no deployments yet"
                raise InvalidSpec(f"{field}.{dep}: endpoint {spec.name!r} has no deployment named {dep!r}{known}")
    for d in deployments:
        if d.provisioning_state == "Failed" and spec.traffic.get(d.name, 0) > 0:
            raise InvalidSpec(f"traffic.{d.name}: deployment {d.name!r} is Failed and cannot take traffic")


def check_deployment_limit(store: Store, endpoint: str) -> None:
    """A new deployment must fit under the per-endpoint limit."""
    if len(store.list(OD, endpoint)) >= MAX_DEPLOYMENTS_PER_ENDPOINT:
        raise Conflict(f"endpoint {endpoint!r} already has {MAX_DEPLOYMENTS_PER_ENDPOINT} deployments (the limit)")


def check_not_busy(state: str, name: str) -> None:
    if state in BUSY_STATES:
        raise Conflict(f"deployment {name!r} is {state}; wait for it to finish")


def resolve_model(registry: Registry, model: str, field: str = "model") -> Any:
    """The registered version the model reference means now (aliases and ``latest`` resolved),
    so a deployment stays pinned to it; errors name the field."""
    try:
        return registry.resolve(model)
    except (NotFound, InvalidSpec) as err:
        raise type(err)(f"{field}: {err.message}") from None


def check_location(field: str, value: Any) -> None:
    """Job inputs and outputs name places on the host's machine: a relative path would silently
    mean "relative to wherever the host was started" (the SDK and CLI send absolute paths)."""
    if not isinstance(value, str):
        raise InvalidSpec(f"{field}: must be a path or URL string, got {type(value).__name__}")
    if not value.strip() or ("://" in value and not value.startswith("file://")):
        return  # empty: the batch service names the problem; URLs: fsspec's business
    path = value.removeprefix("file://")
    if not (os.path.isabs(path) or path.startswith("~")):
        raise InvalidSpec(f"{field}: {value!r} is relative; give an absolute path (the host does not know "
                          "your working folder)")


def check_code(spec: OnlineDeployment | BatchDeployment) -> None:
    """A scoring script's folder and file exist on the host (checked before anything starts)."""
    cc = spec.code_configuration
    if cc is None:
        return
    path = cc.script_path()
    if not Path(cc.code).is_dir():
        raise InvalidSpec(f"code_configuration.code: folder {cc.code!r} does not exist")
    if not path.is_file():
        raise InvalidSpec(f"code_configuration.scoring_script: {str(path)!r} does not exist")
