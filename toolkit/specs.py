"""Pydantic specs of the four resources (DESIGN.md section 5) and their YAML loading.

The field names follow Azure ML's online/batch endpoint YAML so an Azure user feels at home.
Rules that span resources (an endpoint's traffic naming deployments that exist, the 20
deployments limit) are checked by the host against the state store; the rules a single spec can
check on its own live here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Type, TypeVar

import yaml
from pydantic import (
    BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat, StrictInt, ValidationError, WithJsonSchema,
    field_validator, model_validator,
)

from .errors import InvalidSpec

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


# --- loading ----------------------------------------------------------------------------------

S = TypeVar("S", bound=Spec)
KINDS: dict[str, Type[Spec]] = {
    "online-endpoint": OnlineEndpoint,
    "online-deployment": OnlineDeployment,
    "batch-endpoint": BatchEndpoint,
    "batch-deployment": BatchDeployment,
}


def format_errors(errors: list[Any], source: str | None = None) -> str:
    """One line per pydantic error: ``source: field: reason`` (locations given without the part
    FastAPI prepends, such as ``body``)."""
    lines = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field (not part of the spec)"
        elif e.get("type") in ("int_type", "float_type") and isinstance(e.get("input"), bool):
            kind = "a whole number" if e["type"] == "int_type" else "a number"
            msg = f"must be {kind}, not the boolean {str(e['input']).lower()}"
        # Rules spanning fields name their field at the start of the message themselves.
        where = f"{loc}: " if loc else ""
        lines.append(f"{source + ': ' if source else ''}{where}{msg}")
    return "\n".join(lines)


def format_validation_error(err: ValidationError, source: str | None = None) -> str:
    """One line per problem: ``file: field: reason``."""
    return format_errors(list(err.errors()), source)


def _fields_of(err: ValidationError) -> list[str]:
    fields = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if not loc:
            loc = e["msg"].removeprefix("Value error, ").split(":", 1)[0]
        fields.append(loc)
    return fields


def parse_spec(cls: Type[S], data: Any, source: str | None = None) -> S:
    """Validate ``data`` as ``cls``; raise :class:`InvalidSpec` naming the field and rule."""
    if not isinstance(data, dict):
        where = f"{source}: " if source else ""
        raise InvalidSpec(f"{where}a {cls.__name__} spec must be a mapping of fields, got {type(data).__name__}")
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise InvalidSpec(format_validation_error(err, source), details={"fields": _fields_of(err)}) from None


def _coerce(value: str) -> Any:
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``--set a.b=value`` overrides (values parsed as YAML scalars)."""
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidSpec(f"--set {item!r}: expected key=value")
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise InvalidSpec(f"--set {item!r}: {p} is not a mapping")
        node[parts[-1]] = _coerce(raw)
    return data


MAX_SPEC_BYTES = 4 * 1024 * 1024


def read_spec_file(path: str | Path) -> Any:
    """The YAML document in ``path``; an unreadable, binary or malformed file is an
    :class:`InvalidSpec` naming the file and saying what is wrong (never a traceback)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            # Bounded: `-f /dev/zero` or a multi-gigabyte file must not hang or exhaust memory.
            raw = fh.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise InvalidSpec(f"{p}: file not found") from None
    except IsADirectoryError:
        raise InvalidSpec(f"{p}: is a folder; give the path of a YAML spec file") from None
    except OSError as err:
        raise InvalidSpec(f"{p}: cannot read ({err.strerror or err})") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise InvalidSpec(f"{p}: larger than {MAX_SPEC_BYTES // (1024 * 1024)} MiB; a spec is a small YAML text file")
    if b"\0" in raw:
        raise InvalidSpec(f"{p}: is a binary file, not a YAML spec (it contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InvalidSpec(f"{p}: is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
                          "a spec is a YAML text file") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise InvalidSpec(f"{p}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise InvalidSpec(f"{p}: not valid YAML: nested too deeply") from None


def load_spec(cls: Type[S], path: str | Path, overrides: list[str] | None = None) -> S:
    """Read a YAML spec file; errors name the file, the field and the reason."""
    p = Path(path)
    data = read_spec_file(p)
    if data is None:
        data = {}
    if isinstance(data, dict):
        data.pop("$schema", None)
        data = apply_overrides(data, overrides)
    spec = parse_spec(cls, data, source=str(p))
    # A relative code folder is relative to the YAML file, as in Azure's CLI.
    cc = getattr(spec, "code_configuration", None)
    if cc is not None and not Path(cc.code).is_absolute():
        cc.code = str((p.parent / cc.code).resolve())
    model = getattr(spec, "model", None)
    if model and ":/" not in model and not Path(model).is_absolute() and (p.parent / model).exists():
        spec.model = str((p.parent / model).resolve())
    return spec
