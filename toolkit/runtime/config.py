"""An instance's configuration: the JSON file the supervisor writes for each instance process."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

__all__ = ["InstanceConfig"]


@dataclass
class InstanceConfig:
    model_path: str
    endpoint: str = ""
    deployment: str = ""
    instance_id: str = ""
    model_uri: str | None = None
    code: str | None = None
    scoring_script: str | None = None
    max_batch_size: int = 64
    max_batch_wait_ms: float = 0.0
    request_timeout_ms: int = 5000
    max_concurrent_requests_per_instance: int = 16
    max_body_bytes: int = 20 * 1024 * 1024
    max_stuck_predictions: int = 2
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InstanceConfig":
        if not d.get("model_path"):
            raise InvalidInput("instance config needs 'model_path'")
        batching = d.get("batching") or {}
        known = {"model_path", "endpoint", "deployment", "instance_id", "model_uri", "code", "scoring_script",
                 "request_timeout_ms", "max_concurrent_requests_per_instance", "max_body_bytes", "max_stuck_predictions"}
        cfg = cls(**{k: v for k, v in d.items() if k in known and v is not None})
        cfg.max_batch_size = int(batching.get("max_batch_size", cfg.max_batch_size))
        cfg.max_batch_wait_ms = float(batching.get("max_batch_wait_ms", cfg.max_batch_wait_ms))
        cfg.extra = {k: v for k, v in d.items() if k not in known and k != "batching"}
        return cfg

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "InstanceConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    @property
    def model_version(self) -> str | None:
        uri = self.model_uri or ""
        if uri.startswith("models:/"):
            return uri[len("models:/"):].partition("/")[2] or None
        return None
