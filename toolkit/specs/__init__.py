"""Pydantic specs of the four resources (DESIGN.md section 5) and their YAML loading.

The field names follow Azure ML's online/batch endpoint YAML so an Azure user feels at home.
Rules that span resources (an endpoint's traffic naming deployments that exist, the 20
deployments limit) are checked by the host against the state store; the rules a single spec can
check on its own live here.
"""

from __future__ import annotations

from .common import (
    INSTANCE_TYPES, MAX_DEPLOYMENTS_PER_ENDPOINT, Batching, CodeConfiguration, InstanceType, Int, Percent, Probe,
    RequestSettings, ScaleSettings, Spec, TrafficTable, validate_model, validate_name,
)
from .files import KINDS, apply_overrides, format_errors, format_validation_error, load_spec, parse_spec, read_spec_file
from .resources import (
    BatchDefaults, BatchDeployment, BatchEndpoint, BatchResources, OnlineDeployment, OnlineEndpoint, RetrySettings,
)

__all__ = [
    "Spec",
    "OnlineEndpoint",
    "OnlineDeployment",
    "BatchEndpoint",
    "BatchDeployment",
    "CodeConfiguration",
    "RequestSettings",
    "Probe",
    "ScaleSettings",
    "Batching",
    "BatchDefaults",
    "BatchResources",
    "RetrySettings",
    "INSTANCE_TYPES",
    "InstanceType",
    "MAX_DEPLOYMENTS_PER_ENDPOINT",
    "Int",
    "Percent",
    "TrafficTable",
    "load_spec",
    "read_spec_file",
    "parse_spec",
    "apply_overrides",
    "format_validation_error",
    "format_errors",
    "validate_name",
    "validate_model",
    "KINDS",
]
