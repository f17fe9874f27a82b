"""The four resources: online endpoint and deployment, batch endpoint and deployment."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .common import (
    DAY_S, INSTANCE_TYPES, Batching, CodeConfiguration, Int, Name, Probe, RequestSettings, ScaleSettings, Spec,
    TrafficTable, _Base, validate_environment, validate_model, validate_name,
)

__all__ = ["OnlineEndpoint", "OnlineDeployment", "BatchDefaults", "BatchEndpoint", "BatchResources", "RetrySettings",
           "BatchDeployment"]


# --- online -----------------------------------------------------------------------------------


class OnlineEndpoint(Spec):
    """A stable URL, its auth mode and its traffic table."""

    name: Name
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    auth_mode: Literal["key", "token", "none"] = "key"
    traffic: TrafficTable = Field(default_factory=dict)
    mirror_traffic: TrafficTable = Field(default_factory=dict)

    _v_name = field_validator("name")(classmethod(lambda cls, v: validate_name(v)))

    @field_validator("traffic", "mirror_traffic")
    @classmethod
    def _deployment_names(cls, value: dict[str, int]) -> dict[str, int]:
        for dep in value:  # percentages are checked by their type (Percent)
            validate_name(dep)
        return value

    @model_validator(mode="after")
    def _traffic_rules(self) -> "OnlineEndpoint":
        total = sum(self.traffic.values())
        if self.traffic and total not in (0, 100):
            raise ValueError(f"traffic: must sum to 0 or 100, got {total}")
        mirrored = {k: v for k, v in self.mirror_traffic.items() if v}
        if len(mirrored) > 1:
            raise ValueError(f"mirror_traffic: may name one deployment, got {sorted(mirrored)}")
        for dep, pct in mirrored.items():
            if pct > 50:
                raise ValueError(f"mirror_traffic.{dep}: must be at most 50, got {pct}")
            if self.traffic.get(dep, 0) > 0:
                raise ValueError(
                    f"mirror_traffic.{dep}: cannot mirror to {dep!r}, it has {self.traffic[dep]}% live traffic"
                )
        return self


class OnlineDeployment(Spec):
    """A model behind an online endpoint, run as ``instance_count`` supervised processes."""

    name: Name
    endpoint_name: Name
    model: str
    description: str = ""
    code_configuration: CodeConfiguration | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    instance_type: str = "cpu-small"
    instance_count: Int = Field(1, ge=0, le=100)
    request_settings: RequestSettings = Field(default_factory=RequestSettings)
    liveness_probe: Probe = Field(default_factory=Probe)
    readiness_probe: Probe = Field(default_factory=lambda: Probe(initial_delay=0, period=1, failure_threshold=3))
    scale_settings: ScaleSettings = Field(default_factory=ScaleSettings)
    # On by default: opportunistic batching adds no latency at low load and multiplies throughput under load.
    batching: Batching = Field(default_factory=Batching)
    tags: dict[str, str] = Field(default_factory=dict)

    _v_name = field_validator("name", "endpoint_name")(classmethod(lambda cls, v: validate_name(v)))
    _v_model = field_validator("model")(classmethod(lambda cls, v: validate_model(v)))
    _v_env = field_validator("environment_variables")(classmethod(lambda cls, v: validate_environment(v)))

    @field_validator("instance_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in INSTANCE_TYPES:
            raise ValueError(f"unknown instance type {value!r}; choose one of {', '.join(INSTANCE_TYPES)}")
        return value

    @model_validator(mode="after")
    def _scale_rules(self) -> "OnlineDeployment":
        s = self.scale_settings
        if s.type == "target_utilization" and not s.min_instances <= self.instance_count <= s.max_instances:
            raise ValueError(
                f"instance_count: {self.instance_count} must lie between scale_settings.min_instances "
                f"({s.min_instances}) and max_instances ({s.max_instances})"
            )
        if s.type == "default" and self.instance_count < 1:
            raise ValueError("instance_count: must be at least 1 unless scale_settings.type is target_utilization")
        return self


# --- batch ------------------------------------------------------------------------------------


class BatchDefaults(_Base):
    deployment_name: str | None = None


class BatchEndpoint(Spec):
    name: Name
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    defaults: BatchDefaults = Field(default_factory=BatchDefaults)

    _v_name = field_validator("name")(classmethod(lambda cls, v: validate_name(v)))


class BatchResources(_Base):
    instance_count: Int = Field(1, ge=1, le=256)


class RetrySettings(_Base):
    max_retries: Int = Field(3, ge=0, le=100)
    timeout: Int = Field(30, ge=1, le=30 * DAY_S, description="Seconds one mini-batch may take.")


class BatchDeployment(Spec):
    name: Name
    endpoint_name: Name
    model: str
    description: str = ""
    code_configuration: CodeConfiguration | None = None
    compute: str = "local"
    resources: BatchResources = Field(default_factory=BatchResources)
    max_concurrency_per_instance: Int = Field(1, ge=1, le=64)
    mini_batch_size: Int = Field(10, ge=1, le=1_000_000, description="Files per mini-batch.")
    mini_batch_rows: Int | None = Field(None, ge=1, le=10**9, description="Split files into mini-batches of this many rows.")
    output_action: Literal["append_row", "summary_only"] = "append_row"
    output_file_name: str = "predictions.csv"
    retry_settings: RetrySettings = Field(default_factory=RetrySettings)
    error_threshold: Int = Field(-1, ge=-1, le=10**9)
    logging_level: Literal["debug", "info", "warning", "error"] = "info"
    environment_variables: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)

    _v_name = field_validator("name", "endpoint_name")(classmethod(lambda cls, v: validate_name(v)))
    _v_model = field_validator("model")(classmethod(lambda cls, v: validate_model(v)))
    _v_env = field_validator("environment_variables")(classmethod(lambda cls, v: validate_environment(v)))

    @field_validator("compute")
    @classmethod
    def _compute(cls, value: str) -> str:
        if value != "local" and not re.match(r"^(tcp|tls)://[^\s/:]+:\d+$", value):
            raise ValueError(f"{value!r} must be 'local' or a Dask scheduler address like tcp://host:8786")
        return value

    @field_validator("output_file_name")
    @classmethod
    def _output_name(cls, value: str) -> str:
        if "/" in value or "\\" in value or not value.endswith((".csv", ".parquet")):
            raise ValueError(f"{value!r} must be a file name ending in .csv or .parquet")
        return value


