"""A model profile: load time, resident memory and predict latency, measured on this machine.

The measurement runs in a child process (``probe.py``) with a timeout, so a slow or crashing
model never hangs or crashes the caller, and the memory it reports is that of a process holding
only the model.  The child runs single-threaded (OMP/MKL/OpenBLAS capped at one thread): the
numbers are *per core*, which is what the sizing multiplies by instances and workers.

Profiles are cached as JSON under ``<home>/endpoints/cache/profiles/<name>-<version>.json``,
keyed by the concrete model version, this machine's CPU count and the batch sizes; a cache hit
reads one small file.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidSpec, ModelError, NotFound, RequestTimeout
from ..home import Home
from ..registry import Registry, ResolvedModel

__all__ = ["ModelProfile", "profile_model", "PROFILE_SIZES", "PROFILE_FORMAT", "profile_cache_path"]

PROFILE_SIZES: tuple[int, ...] = (1, 8, 64, 512, 4096)
# Bump when the measurement changes meaning, so older cached profiles are measured again.
PROFILE_FORMAT = 1
_PROBE = Path(__file__).with_name("probe.py")


class ModelProfile(BaseModel):
    """What one model version costs to load and to run, per core, on this machine."""

    model_config = ConfigDict(extra="ignore")

    model_uri: str = Field(description="The concrete model: models:/name/version or a folder.")
    name: str
    version: str
    cpu_count: int
    threads: int = 1
    import_s: float = Field(0.0, description="Seconds to import MLflow and the model's libraries in a fresh process.")
    load_s: float = Field(0.0, description="Seconds to load the model (mlflow.pyfunc.load_model).")
    first_predict_ms: float = 0.0
    baseline_rss_mib: float = Field(0.0, description="Resident memory of the process before the model loads.")
    loaded_rss_mib: float = Field(0.0, description="Resident memory right after the model loaded.")
    rss_mib: float = Field(0.0, description="Peak resident memory over the whole measurement.")
    rss_mib_by_rows: dict[int, float] = Field(default_factory=dict)
    latency_ms: dict[int, float] = Field(default_factory=dict, description="Median predict time by batch size (rows).")
    latency_max_ms: dict[int, float] = Field(default_factory=dict)
    repeats: dict[int, int] = Field(default_factory=dict)
    example_rows: int = 1
    bytes_per_row: float = Field(0.0, description="JSON size of one input row (for the online payload limit).")
    complete: bool = False
    note: str = ""
    measured_at: float = 0.0
    measure_s: float = 0.0
    timeout_s: float = 0.0
    key: str = ""
    platform: str = ""
    from_cache: bool = Field(False, exclude=True)

    # --- what the sizing reads --------------------------------------------------------------
    @property
    def startup_s(self) -> float:
        """Cold start of one process: imports, model load, first call."""
        return self.import_s + self.load_s + self.first_predict_ms / 1000.0

    @property
    def model_mib(self) -> float:
        """Memory the model itself adds to a process."""
        return max(self.loaded_rss_mib - self.baseline_rss_mib, 0.0)

    def _points(self, table: dict[int, float]) -> list[tuple[int, float]]:
        return sorted((int(k), float(v)) for k, v in table.items())

    def latency_at(self, rows: float) -> float:
        """Predict time in ms for ``rows`` rows: piecewise linear between measured sizes, and
        beyond the largest size along the per-row slope of the last segment (never below the
        average per-row time at that size, so extrapolation stays on the safe side)."""
        pts = self._points(self.latency_ms)
        if not pts:
            raise ValueError("the profile has no latency measurements")
        rows = max(float(rows), 1.0)
        if rows <= pts[0][0]:
            return pts[0][1]
        for (r0, t0), (r1, t1) in zip(pts, pts[1:]):
            if rows <= r1:
                return t0 + (t1 - t0) * (rows - r0) / (r1 - r0)
        r_last, t_last = pts[-1]
        slope = (pts[-1][1] - pts[-2][1]) / (pts[-1][0] - pts[-2][0]) if len(pts) > 1 else t_last / r_last
        slope = max(slope, 0.5 * t_last / r_last)
        return t_last + slope * (rows - r_last)

    def rss_at(self, rows: float) -> float:
        """Peak resident memory (MiB) of a process scoring ``rows`` rows at once."""
        pts = self._points(self.rss_mib_by_rows)
        if not pts:
            return self.rss_mib or self.loaded_rss_mib
        if rows <= pts[-1][0]:
            # Peak RSS only grows, so the first size at or above ``rows`` bounds it.
            return next(v for r, v in pts if r >= rows)
        # Growth per row from the last measured sizes (inputs, outputs and copies grow linearly).
        if len(pts) > 1 and pts[-1][0] > pts[0][0]:
            per_row = max((pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0]), 0.0)
        else:
            per_row = 0.0
        per_row = max(per_row, 4 * self.bytes_per_row / 2**20)  # at least a few copies of the input
        return pts[-1][1] + per_row * (rows - pts[-1][0])

    def rows_per_s(self, rows: float) -> float:
        return rows / (self.latency_at(rows) / 1000.0)

    @property
    def best_rows(self) -> int:
        """The measured batch size with the highest throughput."""
        return max((int(r) for r in self.latency_ms), key=lambda r: self.rows_per_s(r))

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump(mode="json")
        d["startup_s"] = round(self.startup_s, 4)
        d["best_rows"] = self.best_rows if self.latency_ms else None
        d["rows_per_s_at_best"] = round(self.rows_per_s(self.best_rows), 1) if self.latency_ms else None
        return d

    def __repr__(self) -> str:
        lat = ", ".join(f"{r}: {v:.2f} ms" for r, v in self._points(self.latency_ms))
        state = "" if self.complete else f" (incomplete: {self.note})"
        return (
            f"ModelProfile({self.label}: load {self.load_s:.2f} s (+{self.import_s:.2f} s imports), "
            f"RSS {self.rss_mib:.0f} MiB, predict {{{lat}}}, "
            f"best {self.rows_per_s(self.best_rows):,.0f} rows/s at {self.best_rows} rows{state})"
            if self.latency_ms else f"ModelProfile({self.label}: no latency measured{state})"
        )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "model"


def _identity(resolved: ResolvedModel) -> tuple[str, str]:
    """(name, version) of a resolved model; a folder's 'version' is a hash of its MLmodel file."""
    if resolved.name and resolved.version:
        return resolved.name, resolved.version
    path = Path(resolved.local_path)
    mlmodel = path / "MLmodel"
    digest = hashlib.sha256(mlmodel.read_bytes() if mlmodel.exists() else resolved.uri.encode()).hexdigest()[:12]
    return path.name if resolved.uri == str(path) else _slug(resolved.uri), digest


def _cache_key(resolved: ResolvedModel, version: str, sizes: tuple[int, ...]) -> str:
    return json.dumps({"format": PROFILE_FORMAT, "uri": resolved.uri, "version": version,
                       "cpus": os.cpu_count(), "sizes": list(sizes)}, sort_keys=True)


def profile_cache_path(home: Home, name: str, version: str) -> Path:
    return home.cache / "profiles" / f"{_slug(name)}-{_slug(version)}.json"


def _read_cache(path: Path, key: str, timeout_s: float) -> ModelProfile | None:
    try:
        data = json.loads(path.read_text())
        profile = ModelProfile.model_validate(data)
    except (OSError, ValueError):
        return None
    if profile.key != key:
        return None
    # An incomplete profile (it timed out) is reused unless the caller now allows more time.
    if not profile.complete and timeout_s > profile.timeout_s:
        return None
    profile.from_cache = True
    return profile


def _write_cache(path: Path, profile: ModelProfile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".profile-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(profile.model_dump(mode="json"), fh, indent=1)
    os.replace(tmp, path)  # concurrent profilers never leave a torn file


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # One thread: the profile is per core, and a profiler must not grab every core of a shared host.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS"):
        env[var] = "1"
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def _measure(resolved: ResolvedModel, sizes: tuple[int, ...], timeout_s: float, seconds_per_size: float) -> dict[str, Any]:
    """Run the probe; return its results (possibly partial after a timeout)."""
    with tempfile.TemporaryDirectory(prefix="toolkit-profile-") as tmp:
        out = os.path.join(tmp, "profile.json")
        args = {"model_path": resolved.local_path, "output": out, "sizes": list(sizes),
                "seconds_per_size": seconds_per_size}
        proc = subprocess.Popen(
            [sys.executable, str(_PROBE), json.dumps(args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, env=_child_env(), cwd=tmp, start_new_session=True,
        )
        timed_out = False
        try:
            _, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            _, stderr = proc.communicate()
        try:
            with open(out) as fh:
                result = json.load(fh)
        except (OSError, ValueError):
            result = {}
    result["_timed_out"] = timed_out
    result["_returncode"] = proc.returncode
    result["_stderr"] = (stderr or b"").decode(errors="replace")[-2000:]
    return result


def profile_model(
    where: Home | Registry | str | os.PathLike[str] | None,
    model: str,
    *,
    timeout_s: float = 90.0,
    refresh: bool = False,
    sizes: tuple[int, ...] = PROFILE_SIZES,
    seconds_per_size: float = 0.3,
) -> ModelProfile:
    """Measure (or read from the cache) the profile of ``model`` (a registry URI or folder).

    Raises :class:`NotFound` for an unknown model, :class:`RequestTimeout` when the model does
    not even load within ``timeout_s`` and :class:`ModelError` when it fails to load or predict.
    A timeout after the model loaded gives an incomplete profile (``complete=False``) built from
    the batch sizes measured so far.
    """
    registry = where if isinstance(where, Registry) else Registry(where if isinstance(where, Home) else Home.resolve(where))
    home = registry.home
    try:
        resolved = registry.resolve(model)
    except NotFound as err:
        raise NotFound(f"model: {err}") from None
    except InvalidSpec as err:
        raise InvalidSpec(f"model: {err}") from None
    name, version = _identity(resolved)
    sizes = tuple(sorted(set(int(s) for s in sizes)))
    key = _cache_key(resolved, version, sizes)
    path = profile_cache_path(home, name, version)
    if not refresh:
        cached = _read_cache(path, key, timeout_s)
        if cached is not None:
            return cached

    started = time.time()
    raw = _measure(resolved, sizes, timeout_s, seconds_per_size)
    label = f"{name} v{version}" if resolved.name else resolved.uri
    if raw.get("error") and not raw.get("latency_ms"):
        raise ModelError(f"profiling {label} failed: {raw['error']}", details={"model": resolved.uri})
    if raw["_timed_out"] and not raw.get("latency_ms"):
        stage = raw.get("stage", "starting")
        raise RequestTimeout(
            f"profiling {label} timed out after {timeout_s:g} s (stage reached: {stage}); "
            "the model is too slow to load here, or allow more time (timeout_s)",
            details={"model": resolved.uri, "stage": stage},
        )
    if not raw.get("latency_ms"):
        tail = raw["_stderr"].strip().splitlines()[-1:] or [f"exit code {raw['_returncode']}"]
        raise ModelError(f"profiling {label} failed: the measuring process died ({tail[0]})",
                         details={"model": resolved.uri})
    note = ""
    if raw["_timed_out"]:
        measured = sorted(int(k) for k in raw["latency_ms"])
        note = f"timed out after {timeout_s:g} s; measured batch sizes {measured}, larger ones extrapolated"
    elif raw.get("error"):
        note = f"stopped early: {raw['error']}"
    profile = ModelProfile.model_validate({
        **{k: v for k, v in raw.items() if not k.startswith("_")},
        "model_uri": resolved.uri, "name": name, "version": version, "cpu_count": os.cpu_count() or 1,
        "complete": bool(raw.get("complete")) and not raw["_timed_out"], "note": note,
        "measured_at": started, "measure_s": time.time() - started, "timeout_s": timeout_s, "key": key,
        "platform": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
    })
    _write_cache(path, profile)
    return profile
