"""The workload description the advisor decides from (a pydantic spec, also loadable from YAML).

It answers the mission's four questions in the user's words:

* how often predictions are needed: ``frequency`` ("per request", "every 1 week", "monthly") with
  the arrival rates ``peak_rps`` / ``avg_rps`` of an on-arrival workload;
* how soon results are needed: ``latency_ms`` (a percentile target, p99 by default) or
  ``deadline`` ("12h", "within 3 days");
* one at a time or in batches: ``rows_per_request`` / ``rows_per_run``;
* what compute costs: ``prices`` (per core-hour and per GiB-hour) and ``hours_per_day`` the
  online service must be up.

Friendly strings are parsed into numbers once, here, so the sizing code only sees seconds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator, model_validator

from ..errors import InvalidSpec
from ..specs import validate_model, apply_overrides

__all__ = [
    "Workload",
    "Frequency",
    "Prices",
    "DEFAULT_PRICES",
    "HOURS_PER_MONTH",
    "parse_frequency",
    "parse_duration",
    "format_duration",
    "parse_workload",
    "load_workload",
]

# The cloud billing convention (365 * 24 / 12 = 730): what "a month" of always-on costs.
HOURS_PER_MONTH = 730.0

_UNIT_S = {
    "second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0, "week": 7 * 86400.0,
    "month": HOURS_PER_MONTH * 3600.0, "quarter": 3 * HOURS_PER_MONTH * 3600.0, "year": 12 * HOURS_PER_MONTH * 3600.0,
}
_UNIT_ALIASES = {
    "s": "second", "sec": "second", "secs": "second", "second": "second", "seconds": "second",
    "m": "minute", "min": "minute", "mins": "minute", "minute": "minute", "minutes": "minute",
    "h": "hour", "hr": "hour", "hrs": "hour", "hour": "hour", "hours": "hour",
    "d": "day", "day": "day", "days": "day",
    "w": "week", "wk": "week", "week": "week", "weeks": "week",
    "mo": "month", "month": "month", "months": "month",
    "q": "quarter", "quarter": "quarter", "quarters": "quarter",
    "y": "year", "yr": "year", "year": "year", "years": "year",
}
_ADVERBS = {
    "hourly": (1, "hour"), "daily": (1, "day"), "nightly": (1, "day"), "weekly": (1, "week"),
    "fortnightly": (2, "week"), "biweekly": (2, "week"), "monthly": (1, "month"),
    "quarterly": (1, "quarter"), "yearly": (1, "year"), "annually": (1, "year"),
}
_ON_ARRIVAL = {
    "per request", "on request", "on arrival", "on event", "per event", "each event", "on each event",
    "as each event arrives", "as events arrive", "on demand", "real time", "realtime", "continuous",
    "continuously", "streaming", "per upload", "on upload", "when requested",
}
_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10,
          "twelve": 12, "fifteen": 15, "thirty": 30}
_NUM = r"(\d+(?:\.\d+)?|" + "|".join(_WORDS) + r")"


def _number(text: str) -> float:
    return float(_WORDS.get(text, text))


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower().replace("-", " ").replace("_", " "))


def parse_duration(value: Any, *, bare_unit: str = "second") -> float:
    """``"12h"``, ``"within 12 hours"``, ``"30 min"``, ``"2 days"`` -> seconds.

    A bare number is read in ``bare_unit`` (seconds for deadlines).
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value) * _UNIT_S[bare_unit]
    else:
        text = _norm(str(value)).removeprefix("within ").removeprefix("in ").removeprefix("by ")
        text = text.replace("an hour", "1 hour").replace("a day", "1 day").replace("a week", "1 week")
        m = re.fullmatch(_NUM + r" ?([a-z]+)?", text)
        if not m:
            raise ValueError(f"{value!r} is not a duration; write e.g. '30s', '15 min', '12h', '3 days'")
        unit = _UNIT_ALIASES.get(m.group(2) or bare_unit[0])
        if unit is None:
            raise ValueError(f"{value!r}: unknown time unit {m.group(2)!r}")
        seconds = _number(m.group(1)) * _UNIT_S[unit]
    if seconds <= 0:
        raise ValueError(f"{value!r} must be a positive duration")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human duration: ``850 ms``, ``14 s``, ``6.5 min``, ``12 h``, ``3 days``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * (2 if unit == "days" else 1):
            n = seconds / size
            return f"{n:.0f} {unit}" if abs(n - round(n)) < 0.05 else f"{n:.1f} {unit}"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


class Frequency(BaseModel):
    """How often predictions are needed: as each event arrives, or on a schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["on_arrival", "scheduled"]
    every: float | None = Field(None, gt=0)
    unit: Literal["second", "minute", "hour", "day", "week", "month", "quarter", "year"] | None = None

    @model_validator(mode="after")
    def _schedule_complete(self) -> "Frequency":
        if self.kind == "scheduled" and (self.every is None or self.unit is None):
            raise ValueError("a scheduled frequency needs every and unit (e.g. every 1 week)")
        return self

    @property
    def scheduled(self) -> bool:
        return self.kind == "scheduled"

    @property
    def period_s(self) -> float | None:
        """Seconds between scheduled runs (None when predictions are needed on arrival)."""
        if self.kind != "scheduled":
            return None
        return float(self.every) * _UNIT_S[self.unit]  # type: ignore[index, arg-type]

    @property
    def runs_per_month(self) -> float | None:
        p = self.period_s
        return None if p is None else HOURS_PER_MONTH * 3600 / p

    def __str__(self) -> str:
        if self.kind == "on_arrival":
            return "on arrival"
        n = self.every or 1
        num = f"{n:g}"
        return f"every {self.unit}" if n == 1 else f"every {num} {self.unit}s"


def parse_frequency(value: Any) -> Frequency:
    """``"per request"``, ``"on arrival"``, ``"every minute"``, ``"every 3 months"``, ``"weekly"``,
    ``"twice a day"`` or ``{"every": 1, "unit": "week"}`` -> :class:`Frequency`."""
    if isinstance(value, Frequency):
        return value
    if isinstance(value, dict):
        data = dict(value)
        data.setdefault("kind", "scheduled" if "every" in data or "unit" in data else "on_arrival")
        if isinstance(data.get("unit"), str):
            data["unit"] = _UNIT_ALIASES.get(data["unit"].lower(), data["unit"])
        return Frequency.model_validate(data)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a frequency; write e.g. 'per request', 'every 1 week', 'monthly'")
    text = _norm(value)
    if text in _ON_ARRIVAL or text.startswith(("as each", "when each", "whenever")):
        return Frequency(kind="on_arrival")
    if text in _ADVERBS:
        n, unit = _ADVERBS[text]
        return Frequency(kind="scheduled", every=n, unit=unit)  # type: ignore[arg-type]
    m = re.fullmatch(r"(?:every|each|once (?:a|an|per|every)|once|per) (?:" + _NUM + r" ?)?([a-z]+)", text)
    if m:
        unit = _UNIT_ALIASES.get(m.group(2))
        if unit:
            return Frequency(kind="scheduled", every=_number(m.group(1) or "1"), unit=unit)  # type: ignore[arg-type]
    m = re.fullmatch(r"(twice|" + _NUM + r" times) (?:a|an|per|every) ([a-z]+)", text)
    if m:
        unit = _UNIT_ALIASES.get(m.group(3))
        times = 2.0 if m.group(1) == "twice" else _number(m.group(2))
        if unit and times > 0:
            # "3 times a day" = every 8 hours: same period, expressed in the next smaller unit.
            seconds = _UNIT_S[unit] / times
            for smaller in ("day", "hour", "minute", "second"):
                if seconds >= _UNIT_S[smaller]:
                    return Frequency(kind="scheduled", every=round(seconds / _UNIT_S[smaller], 6), unit=smaller)  # type: ignore[arg-type]
    raise ValueError(
        f"{value!r} is not a frequency; write 'per request' (as each event arrives) or a schedule such as "
        "'every 15 minutes', 'hourly', 'every 1 week', 'monthly', 'every 3 months'"
    )


class Prices(BaseModel):
    """What compute costs.  Defaults: AWS Fargate on-demand, Linux/x86, us-east-1 (per second
    billing): $0.04048 per vCPU-hour and $0.004445 per GB-hour, close to the other clouds'
    on-demand container prices.  Override with your own (e.g. your cluster's internal rate)."""

    model_config = ConfigDict(extra="forbid")

    core_hour: float = Field(0.04048, ge=0, description="Price of one core (vCPU) for one hour.")
    gib_hour: float = Field(0.004445, ge=0, description="Price of one GiB of memory for one hour.")
    currency: str = Field("USD", min_length=1, max_length=8)

    def hourly(self, cores: float, memory_gib: float) -> float:
        return cores * self.core_hour + memory_gib * self.gib_hour

    def format(self, amount: float) -> str:
        symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(self.currency)
        if amount == 0:
            text = "0.00"
        elif amount < 0.01:
            text = f"{amount:.4f}"
        elif amount < 100:
            text = f"{amount:,.2f}"
        else:
            text = f"{amount:,.0f}"
        return f"{symbol}{text}" if symbol else f"{text} {self.currency}"


DEFAULT_PRICES = Prices()


class Workload(BaseModel):
    """How a model is used.  Construct it from keywords, a dict, or a YAML file (:func:`load_workload`).

    Friendly inputs: ``frequency="every 1 week"``, ``deadline="12h"``, ``latency="p99 200ms"``
    (or ``latency_ms=200``).  Stored normalised: ``deadline_s`` in seconds.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    model: str = Field(description="Registry URI of the model (models:/name/version or models:/name@alias) or a model folder.")
    name: str | None = Field(None, description="Endpoint name for to_specs(); default: derived from the model name.")
    description: str = ""
    frequency: Frequency = Field(description="'per request' (as each event arrives) or a schedule ('every 1 week').")
    peak_rps: float | None = Field(None, ge=0, description="Peak arrival rate of requests per second (on-arrival workloads).")
    avg_rps: float | None = Field(None, ge=0, description="Average arrival rate of requests per second.")
    latency_ms: float | None = Field(None, gt=0, description="Latency target for one request, at latency_percentile.")
    latency_percentile: float = Field(99.0, gt=50, lt=100)
    deadline_s: float | None = Field(None, gt=0, description="Results needed within this many seconds ('deadline': '12h').")
    rows_per_request: int = Field(1, ge=1, description="Rows in one request (on-arrival workloads).")
    rows_per_run: int | None = Field(None, ge=1, description="Rows scored by one scheduled run.")
    hours_per_day: float = Field(24.0, gt=0, le=24, description="Hours a day the online service must be up.")
    max_workers: int | None = Field(
        None, ge=1, le=1000, description="Most batch workers available (default: this machine's cores for the local cluster)."
    )
    prices: Prices = Field(default_factory=Prices)

    @model_validator(mode="before")
    @classmethod
    def _friendly(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "deadline" in data:
            raw = data.pop("deadline")
            if raw is not None:
                try:
                    data["deadline_s"] = parse_duration(raw)
                except ValueError as err:
                    raise ValueError(f"deadline: {err}") from None
        if "latency" in data:
            raw = data.pop("latency")
            if raw is not None:
                pct, ms = _parse_latency(raw)
                data["latency_ms"] = ms
                if pct is not None:
                    data["latency_percentile"] = pct
        if isinstance(data.get("latency_ms"), str):
            pct, ms = _parse_latency(data["latency_ms"])
            data["latency_ms"] = ms
            if pct is not None:
                data["latency_percentile"] = pct
        return data

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        return validate_model(value)

    @field_validator("frequency", mode="before")
    @classmethod
    def _frequency(cls, value: Any) -> Frequency:
        return parse_frequency(value)

    @field_serializer("frequency")
    def _frequency_out(self, value: Frequency) -> str:
        return str(value)

    @model_validator(mode="after")
    def _rules(self) -> "Workload":
        # Messages start with the field they are about; parse_workload puts it in the error's location.
        if self.peak_rps is not None and self.avg_rps is not None and self.avg_rps > self.peak_rps:
            raise ValueError(f"avg_rps: the average rate ({self.avg_rps:g}/s) cannot exceed peak_rps ({self.peak_rps:g}/s)")
        if self.frequency.kind == "on_arrival":
            if not (self.peak_rps or self.avg_rps):
                raise ValueError("peak_rps: a workload whose predictions are needed on arrival needs an arrival rate "
                                 "(peak_rps and/or avg_rps, requests per second, above 0)")
            if self.latency_ms is None and self.deadline_s is None:
                raise ValueError("latency_ms: say how soon results are needed: latency_ms (e.g. 200) or deadline (e.g. '1h')")
        else:
            if self.rows_per_run is None:
                raise ValueError("rows_per_run: a scheduled workload needs rows_per_run (how many rows each run scores)")
        return self

    # --- derived numbers the sizing uses -------------------------------------------------
    @property
    def peak(self) -> float:
        """Peak requests per second (a missing peak is the average: we never invent bursts)."""
        return float(self.peak_rps if self.peak_rps else (self.avg_rps or 0.0))

    @property
    def average(self) -> float:
        """Average requests per second (a missing average is the peak: costs stay conservative)."""
        return float(self.avg_rps if self.avg_rps else (self.peak_rps or 0.0))

    @property
    def need_s(self) -> float:
        """How soon results are needed, in seconds: the latency target, else the deadline, else the
        period of the schedule (a run must finish before the next one starts)."""
        if self.latency_ms is not None:
            return self.latency_ms / 1000.0
        if self.deadline_s is not None:
            return self.deadline_s
        return float(self.frequency.period_s or 0.0)

    def describe_need(self) -> str:
        if self.latency_ms is not None:
            return f"p{self.latency_percentile:g} {format_duration(self.latency_ms / 1000)}"
        return f"within {format_duration(self.need_s)}"

    def with_changes(self, **changes: Any) -> "Workload":
        """A validated copy with some fields changed (used by the what-if analysis)."""
        data = self.model_dump(mode="json")
        data.update(changes)
        return Workload.model_validate(data)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _parse_latency(value: Any) -> tuple[float | None, float]:
    """``200`` (ms), ``"200ms"``, ``"p99 200 ms"``, ``"p95 1.5s"`` -> (percentile or None, ms)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return None, float(value)
    text = _norm(str(value))
    pct = None
    m = re.match(r"p(\d+(?:\.\d+)?)\s*(?:of\s+|at\s+|under\s+|<=?\s*)?(.*)$", text)
    if m:
        pct, text = float(m.group(1)), m.group(2)
    m = re.fullmatch(r"(\d+(?:\.\d+)?) ?(ms|msec|milliseconds?)?", text)
    if m:
        return pct, float(m.group(1))
    try:
        return pct, parse_duration(text) * 1000
    except ValueError:
        raise ValueError(f"latency_ms: {value!r} is not a latency; write e.g. 200, '200ms', 'p99 200 ms', '1.5s'") from None


_PREFIXED = re.compile(r"^([a-z_]+): (.*)$", re.S)


def parse_workload(data: Any, source: str | None = None) -> Workload:
    """Validate ``data`` as a :class:`Workload`; raise :class:`InvalidSpec` naming the field."""
    where = f"{source}: " if source else ""
    if isinstance(data, Workload):
        return data
    if not isinstance(data, dict):
        raise InvalidSpec(f"{where}a workload must be a mapping of fields, got {type(data).__name__}")
    try:
        return Workload.model_validate(data)
    except ValidationError as err:
        lines, fields = [], []
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"])
            msg = e["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown field (not part of the workload)"
            m = _PREFIXED.match(msg)
            if m and (not loc or loc == m.group(1)):
                loc, msg = m.group(1), m.group(2)
            loc = loc or "(workload)"
            fields.append(loc)
            lines.append(f"{where}{loc}: {msg}")
        raise InvalidSpec("\n".join(lines), details={"fields": fields}) from None


def load_workload(path: str | Path, overrides: list[str] | None = None) -> Workload:
    """Read a workload YAML file (``--set key=value`` overrides apply, as for the other specs)."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise InvalidSpec(f"{p}: file not found") from None
    except yaml.YAMLError as err:
        raise InvalidSpec(f"{p}: not valid YAML: {getattr(err, 'problem', None) or err}") from None
    if data is None:
        data = {}
    if isinstance(data, dict):
        data.pop("$schema", None)
        data = apply_overrides(data, overrides)
    workload = parse_workload(data, source=str(p))
    if ":/" not in workload.model and not Path(workload.model).is_absolute() and (p.parent / workload.model).exists():
        workload = workload.with_changes(model=str((p.parent / workload.model).resolve()))
    return workload
