"""Shared parts of the specs: name and model rules, strict numbers, the blocks several resources use
(code, request settings, probes, scale settings, batching) and the instance type catalogue."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat, StrictInt, WithJsonSchema, field_validator,
    model_validator,
)

__all__ = [
    "Spec", "CodeConfiguration", "RequestSettings", "Probe", "ScaleSettings", "Batching", "INSTANCE_TYPES",
    "InstanceType", "MAX_DEPLOYMENTS_PER_ENDPOINT", "Int", "Percent", "TrafficTable", "validate_name", "validate_model",
    "validate_environment",
]

MAX_DEPLOYMENTS_PER_ENDPOINT = 20
NAME_RE = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){2,31}$")
NAME_RULE = "must start with a letter and be 3-32 characters of letters, digits and single dashes"
MODEL_RULE = "must be models:/name/version, models:/name@alias, runs:/run_id/path, or a local model folder"
# NAME_RE for JSON Schema readers (OpenAPI, fuzzers, editors): same letters and length, without the
# look-ahead that forbids double dashes (JSON Schema regexes need not support look-arounds).
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$"



def _integral_float_as_int(value: Any) -> Any:
    # JSON Schema counts 3.0 as an integer, so we do too; anything else goes to the strict check.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Counts and percentages are strict: YAML `yes` or JSON `true` is not 1, and "3" is not 3.
Int = Annotated[StrictInt, BeforeValidator(_integral_float_as_int)]
Float = StrictFloat
Name = Annotated[str, Field(json_schema_extra={"pattern": NAME_PATTERN, "minLength": 3, "maxLength": 32},
                            description=f"A name that {NAME_RULE}.")]
Percent = Annotated[Int, Field(ge=0, le=100)]
# Deployment name -> percentage, documented with the key rule (pydantic would not emit it).
TrafficTable = Annotated[dict[str, Percent], WithJsonSchema({
    "type": "object",
    "propertyNames": {"type": "string", "pattern": NAME_PATTERN, "minLength": 3, "maxLength": 32},
    "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 100},
    "description": "Deployment name -> percentage (0-100).",
})]
DAY_S = 86_400


def validate_name(value: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValueError(f"{value!r} {NAME_RULE}")
    return value


def validate_model(value: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ValueError(MODEL_RULE)
    if value.startswith("models:/"):
        rest = value[len("models:/"):]
        if "@" in rest:
            name, _, alias = rest.partition("@")
            if not name or not alias or "/" in alias:
                raise ValueError(f"{value!r} {MODEL_RULE}")
        else:
            parts = rest.split("/")
            if len(parts) != 2 or not parts[0] or not parts[1]:
                raise ValueError(f"{value!r} {MODEL_RULE}")
    elif value.startswith("runs:/"):
        if len(value[len("runs:/"):].split("/", 1)) != 2:
            raise ValueError(f"{value!r} {MODEL_RULE}")
    elif ":/" in value and not value.startswith("file:"):
        raise ValueError(f"{value!r} {MODEL_RULE}")
    return value


ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def validate_environment(value: dict[str, str]) -> dict[str, str]:
    """Variables a process can actually be started with (the OS refuses NUL bytes and '=' in names)."""
    for key, val in value.items():
        if not ENV_NAME_RE.match(key):
            raise ValueError(f"{key!r} is not a variable name (letters, digits and '_', not starting with a digit)")
        if "\0" in val:
            raise ValueError(f"{key}: a value cannot contain NUL bytes")
    return value


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError("cannot contain NUL bytes")
    return value


class _Base(BaseModel):
    # Unknown keys are a mistake in a hand-written YAML file, not something to ignore silently.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


class Spec(_Base):
    """Common base of the four resource specs."""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# --- shared blocks --------------------------------------------------------------------------


class CodeConfiguration(_Base):
    code: str = Field(description="Folder holding the scoring script.")
    scoring_script: str = Field(description="File name of the script inside `code`.")

    _v_paths = field_validator("code", "scoring_script")(classmethod(lambda cls, v: _no_nul(v)))

    def script_path(self, base: Path | None = None) -> Path:
        folder = Path(self.code)
        if base is not None and not folder.is_absolute():
            folder = base / folder
        return folder / self.scoring_script


class RequestSettings(_Base):
    request_timeout_ms: Int = Field(5000, ge=1, le=600_000)
    # Azure defaults to 1; our instances coalesce concurrent requests into one predict, so they need
    # several in flight to batch at all.
    max_concurrent_requests_per_instance: Int = Field(16, ge=1, le=1000)
    max_queue_wait_ms: Int = Field(500, ge=0, le=600_000)
    max_body_bytes: Int = Field(20 * 1024 * 1024, ge=1024, le=2**31, description="Larger bodies get 413.")


class Probe(_Base):
    initial_delay: Int = Field(10, ge=0, le=DAY_S, description="Seconds before the first probe.")
    period: Int = Field(10, ge=1, le=DAY_S, description="Seconds between probes.")
    timeout: Int = Field(2, ge=1, le=DAY_S, description="Seconds a probe may take.")
    failure_threshold: Int = Field(30, ge=1, le=100_000, description="Consecutive failures before acting.")
    success_threshold: Int = Field(1, ge=1, le=100_000)


class ScaleSettings(_Base):
    type: Literal["default", "target_utilization"] = "default"
    min_instances: Int = Field(1, ge=0, le=100)
    max_instances: Int = Field(1, ge=1, le=100)
    target_utilization_percentage: Int = Field(70, ge=1, le=100)
    polling_interval: Int = Field(10, ge=1, le=DAY_S, description="Seconds between autoscaler decisions.")
    scale_down_delay: Int = Field(60, ge=0, le=DAY_S, description="Seconds of low load before scaling down.")
    idle_timeout: Int = Field(300, ge=1, le=30 * DAY_S, description="Seconds without requests before scaling to min_instances=0.")

    @model_validator(mode="after")
    def _min_le_max(self) -> "ScaleSettings":
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances: {self.min_instances} must not exceed max_instances ({self.max_instances})"
            )
        return self


class Batching(_Base):
    max_batch_size: Int = Field(64, ge=1, le=100_000, description="Most rows coalesced into one predict call (1 turns batching off).")
    max_batch_wait_ms: Float = Field(
        0.0, ge=0, le=1000,
        description="Longest wait for more requests.  0 batches only what queued while the previous predict ran, "
        "so a lone request never waits.",
    )


class InstanceType(BaseModel):
    name: str
    cores: float
    memory_gib: float
    description: str = ""


# A local catalogue in the spirit of Azure's SKUs; cores become CPU affinity and thread caps.
INSTANCE_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in (
        InstanceType(name="cpu-nano", cores=0.5, memory_gib=0.5, description="half a core (shares one CPU), 512 MiB"),
        InstanceType(name="cpu-small", cores=1, memory_gib=1, description="1 core, 1 GiB"),
        InstanceType(name="cpu-medium", cores=2, memory_gib=4, description="2 cores, 4 GiB"),
        InstanceType(name="cpu-large", cores=4, memory_gib=8, description="4 cores, 8 GiB"),
        InstanceType(name="cpu-xlarge", cores=8, memory_gib=16, description="8 cores, 16 GiB"),
    )
}


