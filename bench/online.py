#!/usr/bin/env python
"""Online serving benchmark: our endpoint versus ``mlflow models serve``, same machine, one run.

    .venv/bin/python bench/online.py [--duration 30] [--models rf,lr]

What it does, in one run (see bench/README.md):

1. installs the load generator if missing (``wrk`` from apt; ``hey`` built with Go only if apt fails);
2. makes a throw-away workspace home (``ENDPOINTS_HOME`` in a temp dir, SQLite registry) and trains
   and registers two models on the same 12-column synthetic numeric frame, with a signature and an
   input example: a RandomForest classifier (100 trees) and a LogisticRegression;
3. measures the physical limit: in-process ``model.predict`` on 32-row batches, one core, one thread;
4. for each model, serves it with ``mlflow models serve -w 1`` and ``-w 2``, with our endpoint (one
   deployment, ``instance_count: 2``, key auth, through the host's gateway) and with one extra
   instance process called directly over TCP (the gateway's own cost), and loads each with
   single-row ``dataframe_split`` JSON requests at concurrency 1 and 32 (``--duration`` seconds each);
5. prints a markdown table, writes it to ``bench/results/online.md`` (and ``online.json``) and
   replaces the block between ``<!-- bench:online:start -->`` and ``<!-- bench:online:end -->`` in
   the top-level README.md.

Every process it starts runs in its own process group and is killed on exit, whatever happens.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as _dt
import io
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
START_MARK = "<!-- bench:online:start -->"
END_MARK = "<!-- bench:online:end -->"
N_FEATURES = 12
BATCH_ROWS = 32
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")

MODELS = {
    "rf": ("RandomForest (100 trees)", "bench-rf"),
    "lr": ("LogisticRegression", "bench-lr"),
}

# Targets (issue 4 item 8), as ratios from the same run.
TARGET_RF_X, TARGET_LR_X, TARGET_LR_P50_MS, TARGET_GATEWAY_MS = 10.0, 3.0, 5.0, 1.0


class BenchError(RuntimeError):
    """A clear reason the benchmark cannot go on."""


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# processes we start: each in its own session/process group, all killed on exit
# --------------------------------------------------------------------------------------------

class Procs:
    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path | None]] = []

    def start(self, name: str, cmd: list[str], *, env: dict[str, str] | None = None, log: Path | None = None,
              preexec: Any = None) -> subprocess.Popen[bytes]:
        out: Any = subprocess.DEVNULL
        if log is not None:
            out = open(log, "ab")
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, preexec_fn=preexec, cwd=str(ROOT))
        finally:
            if log is not None:
                out.close()
        self.procs.append((name, proc, log))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left of it."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # The group may outlive its leader (uvicorn workers): kill the rest too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        self.procs = [p for p in self.procs if p[1] is not proc]

    def stop_all(self) -> None:
        for _, proc, _ in list(reversed(self.procs)):
            self.stop(proc, timeout=5.0)


def process_tree(pid: int) -> list[int]:
    import psutil

    try:
        root = psutil.Process(pid)
        return [pid] + [c.pid for c in root.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_snapshot(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user + system) so far of each group of processes, and of our waited-for
    children (the load generator runs as one) under "load generator"."""
    import resource

    import psutil

    out: dict[str, float] = {}
    for label, pids in groups.items():
        total = 0.0
        for pid in pids:
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        out[label] = total
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["load generator"] = ru.ru_utime + ru.ru_stime
    return out


def uds_get_json(path: str, route: str) -> dict[str, Any]:
    import http.client

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(self.timeout)
            self.sock.connect(path)

    conn = Conn("localhost", timeout=5)
    try:
        conn.request("GET", route)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tail(path: Path | None, lines: int = 25) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join("    " + line for line in text[-lines:])


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 10.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str, log: Path | None, timeout: float) -> float:
    """Poll ``url`` until 200; a clear error (with the log's tail) if the process dies or times out."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with code {proc.returncode} before it was ready; its log:\n{tail(log)}")
        try:
            status, _ = http("GET", url, timeout=2.0)
            if status == 200:
                return time.monotonic() - t0
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.25)
    raise BenchError(f"{what} was not ready at {url} after {timeout:.0f} s; its log:\n{tail(log)}")


# --------------------------------------------------------------------------------------------
# the load generator: wrk (preferred) or hey
# --------------------------------------------------------------------------------------------

def _apt_install(pkg: str) -> bool:
    if not shutil.which("apt-get"):
        return False
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for update in (False, True):
        if update:
            subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, capture_output=True)
        r = subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", pkg], env=env, capture_output=True)
        if r.returncode == 0 and shutil.which(pkg):
            return True
    return False


def ensure_load_generator() -> tuple[str, str]:
    """('wrk'|'hey', path), installing wrk with apt, or hey with Go only if apt fails."""
    path = shutil.which("wrk")
    if path:
        return "wrk", path
    say("wrk is missing: apt-get install -y wrk")
    if _apt_install("wrk"):
        return "wrk", shutil.which("wrk") or "wrk"
    gobin = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "endpoints-bench" / "bin"
    hey = shutil.which("hey") or (str(gobin / "hey") if (gobin / "hey").exists() else None)
    if hey:
        return "hey", hey
    go = shutil.which("go")
    if go:
        say("apt failed; building hey with `go install github.com/rakyll/hey@latest`")
        gobin.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([go, "install", "github.com/rakyll/hey@latest"], env={**os.environ, "GOBIN": str(gobin)},
                           capture_output=True, text=True)
        if r.returncode == 0 and (gobin / "hey").exists():
            return "hey", str(gobin / "hey")
        raise BenchError(f"cannot install a load generator: apt-get install wrk failed and go install hey failed:\n{r.stderr[-2000:]}")
    raise BenchError("cannot install a load generator: `apt-get install -y wrk` failed (not root, or no apt) and there is "
                     "no Go toolchain to build hey; install wrk (or put hey on PATH) and run again")


_WRK_LUA = r"""
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
%(auth)s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "p50_us": %%.1f, "p90_us": %%.1f, "p99_us": %%.1f, "max_us": %%.1f, ' ..
    '"mean_us": %%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
  -- 1000 quantiles, so runs cut in chunks (interleaved measurements) can be merged
  local q = {}
  for i = 0, 999 do q[#q + 1] = string.format("%%.1f", latency:percentile((i + 0.5) / 10)) end
  io.write('BENCH_QUANTILES [' .. table.concat(q, ",") .. ']\n')
end
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    quantiles_ms: list[float] = field(default_factory=list, repr=False)  # 1000, at (i + 0.5) / 10 %

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("quantiles_ms")
        return d

    @classmethod
    def merge(cls, parts: list["LoadResult"]) -> "LoadResult":
        """One result from runs of the same thing cut in chunks: counts add up, percentiles come
        from the chunks' quantiles, each weighted by its number of requests."""
        if len(parts) == 1:
            return parts[0]
        samples = sorted((v, p.requests / max(1, len(p.quantiles_ms))) for p in parts for v in p.quantiles_ms)
        total = sum(w for _, w in samples)

        def pct(q: float) -> float:
            acc = 0.0
            for v, w in samples:
                acc += w
                if acc >= q / 100 * total:
                    return v
            return samples[-1][0] if samples else 0.0

        req = sum(p.requests for p in parts)
        secs = sum(p.seconds for p in parts)
        return cls(requests=req, seconds=secs, rps=req / secs if secs else 0.0, p50_ms=pct(50), p99_ms=pct(99),
                   non2xx=sum(p.non2xx for p in parts), socket_errors=sum(p.socket_errors for p in parts),
                   quantiles_ms=[])


class LoadGenerator:
    def __init__(self, kind: str, path: str, workdir: Path) -> None:
        self.kind, self.path, self.workdir = kind, path, workdir
        self._n = 0

    def version(self) -> str:
        if self.kind == "wrk":
            r = subprocess.run([self.path, "-v"], capture_output=True, text=True)
            first = (r.stdout or r.stderr).strip().splitlines()
            return first[0].split(" Copyright")[0] if first else "wrk"
        return "hey"

    def run(self, url: str, body: bytes, headers: dict[str, str], concurrency: int, seconds: float) -> LoadResult:
        self._n += 1
        if self.kind == "wrk":
            return self._wrk(url, body, headers, concurrency, seconds)
        return self._hey(url, body, headers, concurrency, seconds)

    def _wrk(self, url: str, body: bytes, headers: dict[str, str], c: int, seconds: float) -> LoadResult:
        text = body.decode()
        if "]==]" in text:
            raise BenchError("the request body cannot be embedded in the wrk script")
        auth = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
        script = self.workdir / f"wrk-{self._n}.lua"
        fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold a key
        with os.fdopen(fd, "w") as fh:
            fh.write(_WRK_LUA % {"body": text, "auth": auth})
        threads = max(1, min(c, 2))
        cmd = [self.path, "-t", str(threads), "-c", str(c), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
               "-s", str(script), url]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        script.unlink(missing_ok=True)
        m = re.search(r"^BENCH_JSON (\{.*\})$", r.stdout, re.M)
        if r.returncode != 0 or m is None:
            raise BenchError(f"wrk failed (exit {r.returncode}):\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
        d = json.loads(m.group(1))
        qm = re.search(r"^BENCH_QUANTILES (\[.*\])$", r.stdout, re.M)
        secs = d["duration_us"] / 1e6
        return LoadResult(
            requests=d["requests"], seconds=secs, rps=d["requests"] / secs if secs else 0.0,
            p50_ms=d["p50_us"] / 1000, p99_ms=d["p99_us"] / 1000, non2xx=d["status"],
            socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"],
            quantiles_ms=[v / 1000 for v in json.loads(qm.group(1))] if qm else [],
        )

    def _hey(self, url: str, body: bytes, headers: dict[str, str], c: int, seconds: float) -> LoadResult:
        bodyfile = self.workdir / f"hey-{self._n}.json"
        bodyfile.write_bytes(body)
        cmd = [self.path, "-z", f"{max(1, round(seconds))}s", "-c", str(c), "-m", "POST", "-T", "application/json",
               "-D", str(bodyfile), "-t", "10", "-o", "csv"]
        for k, v in headers.items():
            cmd += ["-H", f"{k}: {v}"]
        cmd.append(url)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        bodyfile.unlink(missing_ok=True)
        if r.returncode != 0:
            raise BenchError(f"hey failed (exit {r.returncode}):\n{r.stderr[-1500:]}")
        lat: list[float] = []
        non2xx = 0
        last = 0.0
        for row in csv.DictReader(io.StringIO(r.stdout)):
            try:
                code = int(row["status-code"])
                lat.append(float(row["response-time"]) * 1000)
                last = max(last, float(row["offset"]) + float(row["response-time"]))
            except (KeyError, ValueError):
                continue
            if not 200 <= code < 300:
                non2xx += 1
        if not lat:
            raise BenchError(f"hey returned no results:\n{r.stdout[-800:]}\n{r.stderr[-800:]}")
        lat.sort()
        secs = last or seconds
        pct = lambda q: lat[min(len(lat) - 1, int(q / 100 * len(lat)))]  # noqa: E731
        return LoadResult(requests=len(lat), seconds=secs, rps=len(lat) / secs, p50_ms=pct(50), p99_ms=pct(99),
                          non2xx=non2xx, socket_errors=0, quantiles_ms=[pct((i + 0.5) / 10) for i in range(1000)])


# --------------------------------------------------------------------------------------------
# models: train and register; the physical limit (in-process predict, one core)
# --------------------------------------------------------------------------------------------

def make_frame(n: int = 4000) -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=N_FEATURES, n_informative=8, n_redundant=2,
                               random_state=0)
    return pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(N_FEATURES)]), y


def train_and_register(home: Any, keys: list[str]) -> dict[str, str]:
    """Fit and register the chosen models; returns {key: models:/name/version}."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from toolkit.demo.models import ensure_experiment, log_sklearn_model

    ensure_experiment(home)
    X, y = make_frame()
    uris = {}
    for key in keys:
        model = (RandomForestClassifier(n_estimators=100, random_state=0) if key == "rf"
                 else LogisticRegression(max_iter=1000)).fit(X, y)
        name = MODELS[key][1]
        info, _ = log_sklearn_model(model, name, X, registered_name=name)
        uris[key] = f"models:/{name}/{info.registered_model_version}"
    return uris


def download_model(uri: str, dest: Path) -> str:
    import mlflow.artifacts

    dest.mkdir(parents=True, exist_ok=True)
    return str(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest)))


def cpus_preexec(cpus: list[int]) -> Any:
    def pin() -> None:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, set(cpus))
    return pin


def cpu_affinity(pid: int) -> list[int] | None:
    import psutil

    try:
        return list(psutil.Process(pid).cpu_affinity())
    except (psutil.Error, AttributeError):
        return None


def single_thread_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(base if base is not None else os.environ)
    env.update({v: "1" for v in THREAD_VARS})
    return env


def predict_limit_child(model_dir: str, rows_file: str, seconds: float) -> None:
    """(Runs in a child pinned to one CPU with one thread.)  Prints JSON timings of predict."""
    import mlflow.pyfunc
    import mlflow.sklearn
    import pandas as pd

    rows = json.loads(Path(rows_file).read_text())
    df32 = pd.DataFrame(rows["data"][:BATCH_ROWS], columns=rows["columns"])
    df1 = df32.head(1)
    model = mlflow.sklearn.load_model(model_dir)
    pyfunc = mlflow.pyfunc.load_model(model_dir)

    def timeit(fn: Any, budget: float) -> tuple[int, float, list[float]]:
        for _ in range(5):
            fn()
        times: list[float] = []
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < budget:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return len(times), time.perf_counter() - t0, times

    n, el, times32 = timeit(lambda: model.predict(df32), seconds)
    arr32 = df32.to_numpy()
    import warnings

    with warnings.catch_warnings():  # "X does not have valid feature names": expected here
        warnings.simplefilter("ignore")
        _, _, timesa = timeit(lambda: model.predict(arr32), max(0.5, seconds / 3))
    _, _, times1 = timeit(lambda: model.predict(df1), max(0.5, seconds / 3))
    _, _, timesp = timeit(lambda: pyfunc.predict(df1), max(0.5, seconds / 3))
    print("LIMIT_JSON " + json.dumps({
        "batches": n, "seconds": el, "rows_per_s": n * BATCH_ROWS / el,
        "batch32_ms": statistics.median(times32) * 1000,
        "ndarray32_ms": statistics.median(timesa) * 1000,
        "row1_ms": statistics.median(times1) * 1000,
        "pyfunc_row1_ms": statistics.median(timesp) * 1000,
    }), flush=True)


def physical_limit(model_dir: str, rows_file: Path, seconds: float) -> dict[str, float]:
    env = single_thread_env()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_predict-limit", model_dir, str(rows_file),
           str(seconds)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, preexec_fn=cpus_preexec([0]),
                       timeout=300, start_new_session=True)
    m = re.search(r"^LIMIT_JSON (\{.*\})$", r.stdout, re.M)
    if r.returncode != 0 or m is None:
        raise BenchError(f"the in-process predict measurement failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return json.loads(m.group(1))


# --------------------------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------------------------

@dataclass
class Row:
    model: str
    server: str
    concurrency: int
    result: LoadResult
    kind: str  # mlflow | ours | direct
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per request, by process group
    cores_busy: float = 0.0                                 # CPU seconds / wall seconds, all of them


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    procs: Procs
    load: LoadGenerator
    rows: list[Row] = field(default_factory=list)
    limits: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ws: Any = None
    batching: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    _body: bytes = b""

    # --- helpers -----------------------------------------------------------------------------
    def measure(self, key: str, server: str, kind: str, url: str, body: bytes, headers: dict[str, str],
                concurrencies: list[int], groups: dict[str, list[int]] | None = None) -> None:
        """Warm up, then load ``url``; ``groups`` names the server's processes (label -> pids) so
        the CPU each spent per request can be reported next to the load generator's."""
        for c in concurrencies:
            warm = min(3.0, max(1.0, self.args.duration / 10))
            self.load.run(url, body, headers, c, warm)
            before = cpu_snapshot(groups or {})
            res = self.load.run(url, body, headers, c, self.args.duration)
            after = cpu_snapshot(groups or {})
            row = Row(key, server, c, res, kind)
            n = max(1, res.requests)
            spent = {label: after[label] - before[label] for label in after}
            row.cpu_ms = {label: v * 1000 / n for label, v in spent.items()}
            row.cores_busy = sum(spent.values()) / res.seconds if res.seconds else 0.0
            self.rows.append(row)
            self._say_row(row)

    def measure_interleaved(self, key: str, targets: list[tuple[str, str, str, dict[str, str], dict[str, list[int]]]],
                            c: int, chunks: int | None = None) -> None:
        """Measure several servers (server, kind, url, headers, groups) at concurrency ``c`` in
        alternating chunks, ``duration`` seconds each in all: drift in the machine's load then
        hits them alike, which matters when comparing latencies a millisecond apart."""
        chunks = chunks or max(2, min(6, int(self.args.duration // 5)))
        warm = min(3.0, max(1.0, self.args.duration / 10))
        for _, _, url, headers, _ in targets:
            self.load.run(url, self._body, headers, c, warm)
        parts: dict[str, list[LoadResult]] = {t[0]: [] for t in targets}
        spent: dict[str, dict[str, float]] = {t[0]: {} for t in targets}
        for _ in range(chunks):
            for server, _, url, headers, groups in targets:
                before = cpu_snapshot(groups)
                parts[server].append(self.load.run(url, self._body, headers, c, self.args.duration / chunks))
                after = cpu_snapshot(groups)
                for label in after:
                    spent[server][label] = spent[server].get(label, 0.0) + after[label] - before[label]
        for server, kind, _, _, _ in targets:
            res = LoadResult.merge(parts[server])
            row = Row(key, server, c, res, kind)
            row.cpu_ms = {label: v * 1000 / max(1, res.requests) for label, v in spent[server].items()}
            row.cores_busy = sum(spent[server].values()) / res.seconds if res.seconds else 0.0
            self.rows.append(row)
            self._say_row(row)

    def _say_row(self, row: Row) -> None:
        res = row.result
        err = f", {res.non2xx} non-2xx, {res.socket_errors} socket errors" if res.errors else ""
        say(f"  {MODELS[row.model][0]:<24} {row.server:<34} c={row.concurrency:<3} {res.rps:8.1f} req/s  "
            f"p50 {res.p50_ms:7.2f} ms  p99 {res.p99_ms:8.2f} ms{err}")

    @staticmethod
    def check_answer(what: str, url: str, body: bytes, headers: dict[str, str], expected: list[Any]) -> None:
        status, out = http("POST", url, body, {"Content-Type": "application/json", **headers}, timeout=30)
        if status != 200:
            raise BenchError(f"{what} answered {status} to a valid request: {out[:500]!r}")
        preds = json.loads(out).get("predictions")
        if preds != expected:
            raise BenchError(f"{what} predicted {preds!r}, in-process predict gives {expected!r}")

    # --- mlflow models serve ------------------------------------------------------------------
    def mlflow_serve(self, key: str, uri: str, workers: int, body: bytes, expected: list[Any]) -> None:
        port = free_port()
        log = self.tmp / f"mlflow-{key}-w{workers}.log"
        # mlflow execs `uvicorn` by name: the venv's bin folder must be on PATH even when not activated.
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
        cmd = [mlflow_bin if Path(mlflow_bin).exists() else "mlflow", "models", "serve", "-m", uri,
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
        what = f"`mlflow models serve -w {workers}` ({uri})"
        say(f"starting {what} on port {port}")
        proc = self.procs.start(f"mlflow-w{workers}", cmd, env=env, log=log)
        try:
            took = wait_ready(f"http://127.0.0.1:{port}/ping", proc, what, log, timeout=240)
            say(f"  ready in {took:.1f} s")
            url = f"http://127.0.0.1:{port}/invocations"
            self.check_answer(what, url, body, {}, expected)
            groups = {"server": process_tree(proc.pid)}
            self.measure(key, f"mlflow models serve -w {workers}", "mlflow", url, body, {}, [1, 32], groups)
        finally:
            self.procs.stop(proc)

    # --- ours ---------------------------------------------------------------------------------
    def workspace(self) -> Any:
        if self.ws is None:
            import toolkit

            port = free_port()
            say(f"starting our host on port {port} (home {self.tmp / 'home'})")
            t0 = time.monotonic()
            self.ws = toolkit.Workspace(self.tmp / "home", port=port)
            say(f"  host up in {time.monotonic() - t0:.1f} s at {self.ws.url}")
        return self.ws

    def ours(self, key: str, uri: str, model_dir: str, body: bytes, expected: list[Any]) -> None:
        ws = self.workspace()
        name = MODELS[key][1]
        say(f"deploying {uri} to endpoint {name!r}: one deployment, instance_count 2, key auth")
        t0 = time.monotonic()
        from toolkit.errors import ToolkitError

        try:
            ws.online_endpoints.create_or_update({"name": name, "auth_mode": "key"})
            ws.online_deployments.create_or_update(
                {"name": "blue", "endpoint_name": name, "model": uri, "instance_count": 2}, all_traffic=True)
        except ToolkitError as err:
            logs = ""
            with contextlib.suppress(Exception):
                logs = ws.online_deployments.get_logs(name, "blue", lines=20)
            raise BenchError(f"our deployment of {uri} failed: {err}\n{logs}") from None
        say(f"  deployment Succeeded in {time.monotonic() - t0:.1f} s")
        direct = None
        try:
            key_secret = ws.online_endpoints.get_credentials(name)["primaryKey"]
            auth = {"Authorization": f"Bearer {key_secret}"}
            url = f"{ws.url}/endpoints/{name}/score"
            self.check_answer(f"our endpoint {name}", url, body, auth, expected)
            status, _ = http("POST", url, body, {"Content-Type": "application/json"})
            if status != 401:
                raise BenchError(f"key auth is not on: a request without a key got {status}, not 401")

            host_pid = ws.host_info.pid
            instances = [p for p in process_tree(host_pid) if p != host_pid]
            groups = {"host (gateway)": [host_pid], "instances": instances}

            # The gateway's own cost: the same kind of instance process, called directly over TCP,
            # pinned to the CPU of the instance that serves lone requests through the gateway.
            before = cpu_snapshot({str(p): [p] for p in instances})
            self.load.run(url, body, auth, 1, 1.0)
            after = cpu_snapshot({str(p): [p] for p in instances})
            serving = max(instances, key=lambda p: after.get(str(p), 0.0) - before.get(str(p), 0.0))
            direct, durl = self.direct_instance(key, uri, model_dir, cpu_affinity(serving))
            self.check_answer("the direct instance", durl, body, {}, expected)
            self._body = body
            self.measure_interleaved(key, [
                ("ours: gateway, 2 instances", "ours", url, auth, groups),
                ("ours: one instance, no gateway", "direct", durl, {}, {"instances": [direct.pid]}),
            ], 1)
            self.procs.stop(direct)
            direct = None
            socks = self.instance_sockets()
            before, t0 = self.instance_stats(socks), time.monotonic()
            self.measure(key, "ours: gateway, 2 instances", "ours", url, body, auth, [32], groups)
            self.batching_note(key, before, self.instance_stats(socks), time.monotonic() - t0)
        finally:
            if direct is not None:
                self.procs.stop(direct)
            with contextlib.suppress(Exception):
                ws.online_endpoints.delete(name)

    def direct_instance(self, key: str, uri: str, model_dir: str,
                        cpus: list[int] | None) -> tuple[subprocess.Popen[bytes], str]:
        """One more instance process like the deployment's (cpu-small: one CPU, one thread, the
        same config fields and defaults), on a TCP port so wrk can reach it."""
        from toolkit.specs import OnlineDeployment

        spec = OnlineDeployment(name="direct", endpoint_name=MODELS[key][1], model=uri, instance_count=1)
        rs = spec.request_settings
        cfg = {
            "endpoint": MODELS[key][1], "deployment": "direct", "instance_id": "direct-0",
            "model_path": model_dir, "model_uri": uri, "code": None, "scoring_script": None,
            "batching": spec.batching.model_dump(), "request_timeout_ms": rs.request_timeout_ms,
            "max_concurrent_requests_per_instance": rs.max_concurrent_requests_per_instance,
            "max_body_bytes": rs.max_body_bytes,
        }
        cfg_path = self.tmp / f"direct-{key}.json"
        cfg_path.write_text(json.dumps(cfg))
        port = free_port()
        log = self.tmp / f"direct-{key}.log"
        env = single_thread_env()
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [sys.executable, "-m", "toolkit.runtime.instance", "--port", str(port), "--config", str(cfg_path)]
        proc = self.procs.start("direct-instance", cmd, env=env, log=log, preexec=cpus_preexec(cpus or [0]))
        took = wait_ready(f"http://127.0.0.1:{port}/health/ready", proc, "the direct instance", log, timeout=180)
        say(f"  direct instance ready in {took:.1f} s on port {port}")
        return proc, f"http://127.0.0.1:{port}/score"

    def instance_sockets(self) -> list[str]:
        run = self.ws.home.run_dir
        return sorted(str(p) for p in run.glob("*.sock"))

    @staticmethod
    def instance_stats(socks: list[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for sock in socks:
            with contextlib.suppress(OSError, ValueError):
                out[sock] = uds_get_json(sock, "/stats")
        return out

    def batching_note(self, key: str, before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]],
                      wall: float) -> None:
        """How well the instances' micro-batcher coalesced requests during the concurrency-32 run
        (warm-up included, which is at the same concurrency)."""
        out = []
        for sock, a in after.items():
            b = before.get(sock)
            if not b:
                continue
            batches = a["batches"] - b["batches"]
            if batches:
                busy = a["predict_seconds"] - b["predict_seconds"]
                out.append({"rows_per_predict": (a["rows"] - b["rows"]) / batches,
                            "predict_share": busy / wall if wall else 0.0,
                            "ms_per_predict": busy / batches * 1000})
        if out:
            self.batching[key] = out

    def stop_host(self) -> None:
        """Stop our host (and, with it, its instances), even one whose start was interrupted."""
        from toolkit.home import Home
        from toolkit.host import daemon

        home = self.ws.home if self.ws is not None else Home.resolve(self.tmp / "home")
        if home.host_json.exists() or self.ws is not None:
            with contextlib.suppress(Exception):
                daemon.stop(home)
        self.ws = None


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------

def best_mlflow(rows: list[Row], key: str, c: int) -> Row | None:
    cands = [r for r in rows if r.kind == "mlflow" and r.model == key and r.concurrency == c]
    return max(cands, key=lambda r: r.result.rps) if cands else None


def find(rows: list[Row], key: str, kind: str, c: int) -> Row | None:
    return next((r for r in rows if r.model == key and r.kind == kind and r.concurrency == c), None)


def fmt_ms(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    import mlflow
    import sklearn

    return {"cores": usable, "cpu": cpu, "memory": mem, "python": platform.python_version(),
            "mlflow": mlflow.__version__, "sklearn": sklearn.__version__, "os": platform.platform(terse=True)}


def verdicts(rows: list[Row]) -> list[tuple[str, bool | None, str]]:
    """(target, met?, how far) for each target we have data for."""
    out: list[tuple[str, bool | None, str]] = []
    for key, want in (("rf", TARGET_RF_X), ("lr", TARGET_LR_X)):
        ours, best = find(rows, key, "ours", 32), best_mlflow(rows, key, 32)
        if ours and best and best.result.rps:
            x = ours.result.rps / best.result.rps
            p99_ok = ours.result.p99_ms < best.result.p99_ms
            ok = x >= want and p99_ok and ours.result.errors == 0
            out.append((f"{MODELS[key][0]} at concurrency 32: >= {want:.0f}x mlflow's req/s with a lower p99", ok,
                        f"{x:.1f}x ({ours.result.rps:.0f} vs {best.result.rps:.0f} req/s), p99 "
                        f"{fmt_ms(ours.result.p99_ms)} vs {fmt_ms(best.result.p99_ms)} ms"
                        + (f", {ours.result.errors} errors" if ours.result.errors else "")))
    lr1 = find(rows, "lr", "ours", 1)
    if lr1:
        out.append((f"LogisticRegression at concurrency 1: p50 < {TARGET_LR_P50_MS:.0f} ms through the gateway",
                    lr1.result.p50_ms < TARGET_LR_P50_MS, f"{fmt_ms(lr1.result.p50_ms)} ms"))
    for key in MODELS:
        g, d = find(rows, key, "ours", 1), find(rows, key, "direct", 1)
        if g and d:
            extra = g.result.p50_ms - d.result.p50_ms
            out.append((f"gateway cost at p50, concurrency 1 ({MODELS[key][0]}): <= {TARGET_GATEWAY_MS:.0f} ms",
                        extra <= TARGET_GATEWAY_MS,
                        f"{extra:+.2f} ms ({fmt_ms(g.result.p50_ms)} through the gateway vs "
                        f"{fmt_ms(d.result.p50_ms)} direct)"))
    return out


def render(b: Bench, started: float, info: dict[str, Any], lg_version: str) -> str:
    rows = b.rows
    lines = [
        f"Run {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, {info['cores']} cores ({info['cpu']}, {info['memory']}), "
        f"Python {info['python']}, mlflow {info['mlflow']}, scikit-learn {info['sklearn']}, load generator "
        f"{lg_version}; {b.args.duration:g} s per measurement after a short warm-up; single-row `dataframe_split` "
        f"JSON bodies, 12 numeric columns, models logged with a signature and an input example. Ours: one deployment, "
        f"`instance_count: 2` (`cpu-small`), key auth, default request and batching settings, through the host's "
        f"gateway; at concurrency 1 it and one instance called directly are measured in alternating chunks (same "
        f"total time) so drift hits both alike. \"Best mlflow\" is the worker count with more req/s at that "
        f"concurrency. The load generator runs on the same cores. Command: `.venv/bin/python bench/online.py` "
        f"({(time.monotonic() - started) / 60:.1f} min).",
        "",
        "| model | server | concurrency | req/s | p50 ms | p99 ms | errors | ratio vs best mlflow |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = {"mlflow": 0, "ours": 1, "direct": 2}
    for key in MODELS:
        for c in (1, 32):
            best = best_mlflow(rows, key, c)
            for r in sorted((r for r in rows if r.model == key and r.concurrency == c),
                            key=lambda r: (order[r.kind], r.server)):
                res = r.result
                ratio = f"{res.rps / best.result.rps:.2f}x" if best and best.result.rps else "n/a"
                errs = str(res.errors) if not res.errors else f"{res.errors} ({res.non2xx} non-2xx, {res.socket_errors} socket)"
                lines.append(f"| {MODELS[key][0]} | {r.server} | {c} | {res.rps:.0f} | {fmt_ms(res.p50_ms)} | "
                             f"{fmt_ms(res.p99_ms)} | {errs} | {ratio} |")
    cpu_rows = [r for r in rows if r.cpu_ms and r.concurrency == 32]
    if cpu_rows:
        lines += ["", "Where the CPU went at concurrency 32 (CPU ms per request, from the processes' CPU times; "
                  f"{info['cores']} cores means at most {info['cores']:.1f} cores busy):", "",
                  "| model | server | server processes | load generator | cores busy |",
                  "|---|---|---|---:|---:|"]
        for r in cpu_rows:
            server = ", ".join(f"{k} {v:.2f}" for k, v in r.cpu_ms.items() if k != "load generator")
            lines.append(f"| {MODELS[r.model][0]} | {r.server} | {server} | {r.cpu_ms.get('load generator', 0):.2f} | "
                         f"{r.cores_busy:.2f} |")
    lines.append("")
    for key, lim in b.limits.items():
        lines.append(
            f"- Physical limit, {MODELS[key][0]}: in-process `model.predict` of {BATCH_ROWS} rows takes "
            f"{lim['batch32_ms']:.2f} ms on one core with one thread ({lim['ndarray32_ms']:.2f} ms given a numpy array "
            f"instead of a DataFrame) = {lim['rows_per_s']:,.0f} rows/s per core, i.e. "
            f"{lim['rows_per_s']:,.0f} single-row req/s per core if every request were batched perfectly "
            f"(x{info['cores']} cores = {lim['rows_per_s'] * info['cores']:,.0f}); one row alone: "
            f"{lim['row1_ms']:.2f} ms with the estimator, {lim['pyfunc_row1_ms']:.2f} ms through mlflow's pyfunc.")
    for key in MODELS:
        g, d = find(rows, key, "ours", 1), find(rows, key, "direct", 1)
        if g and d:
            lines.append(f"- Gateway cost, {MODELS[key][0]}: p50 at concurrency 1 is {fmt_ms(g.result.p50_ms)} ms "
                         f"through the gateway vs {fmt_ms(d.result.p50_ms)} ms calling one instance directly: "
                         f"{g.result.p50_ms - d.result.p50_ms:+.2f} ms.")
    for key, insts in b.batching.items():
        lines.append(f"- Micro-batching, {MODELS[key][0]}, ours at concurrency 32: " + "; ".join(
            f"instance {i + 1}: {x['rows_per_predict']:.1f} rows per predict call, {x['ms_per_predict']:.1f} ms per "
            f"call, in predict {x['predict_share'] * 100:.0f}% of the time" for i, x in enumerate(insts)) + ".")
    for n in b.notes:
        lines.append(f"- {n}")
    v = verdicts(rows)
    if v:
        met = [t for t in v if t[1]]
        parts = [f"{'met' if ok else '**not met**'}: {what}: {how}" for what, ok, how in v]
        why = []
        rf_target = next((t for t in v if t[0].startswith(MODELS["rf"][0]) and "concurrency 32" in t[0]), None)
        if rf_target and not rf_target[1] and "rf" in b.batching and "rf" in b.limits:
            lim, bt = b.limits["rf"], b.batching["rf"]
            rows_pp = statistics.mean(x["rows_per_predict"] for x in bt)
            why.append(f"The RandomForest's predict costs nearly the same for 1 row as for {BATCH_ROWS} "
                       f"({lim['row1_ms']:.1f} vs {lim['batch32_ms']:.1f} ms here), so its throughput is set by the "
                       f"rows per predict call, and our instances averaged {rows_pp:.1f} at concurrency 32 (of up to 16 "
                       f"in flight per instance): a batch holds only the requests that reached the instance while "
                       f"the previous predict ran, so the faster the gateway forwards, the bigger the batches.")
        lines += ["", f"**Targets: {len(met)} of {len(v)} met** (ratios from this run). " + "; ".join(parts) + ". "
                  + " ".join(why)]
    return "\n".join(lines) + "\n"


def write_readme(block: str) -> None:
    text = README.read_text()
    new_block = f"{START_MARK}\n{block}{END_MARK}"
    if START_MARK in text and END_MARK in text:
        head, rest = text.split(START_MARK, 1)
        _, tail_ = rest.split(END_MARK, 1)
        text = head + new_block + tail_
    else:
        text = text.rstrip("\n") + (
            "\n\n## Online benchmark\n\n"
            "`make bench-online` (or `.venv/bin/python bench/online.py`; see [bench/README.md](bench/README.md)) "
            "serves the same two models with `mlflow models serve` and with our endpoint on this machine, in one "
            "run, and rewrites the block below.\n\n" + new_block + "\n")
    tmp = README.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(README)


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per measurement (default 30)")
    ap.add_argument("--models", default="rf,lr", help="comma-separated: rf, lr (default both)")
    ap.add_argument("--servers", default="mlflow,ours", help="comma-separated: mlflow, ours (default both)")
    ap.add_argument("--limit-seconds", type=float, default=3.0, help="seconds of in-process predict per model")
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite README.md (results/ still written)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workspace (printed) for inspection")
    args = ap.parse_args(argv)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    servers = {s.strip() for s in args.servers.split(",") if s.strip()}
    bad = [k for k in keys if k not in MODELS] + [s for s in servers if s not in ("mlflow", "ours")]
    if bad or not keys:
        ap.error(f"unknown --models/--servers value(s): {', '.join(bad) or '(none given)'}")

    started = time.monotonic()
    load1 = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="ept-bench-"))
    procs = Procs()
    bench: Bench | None = None

    def on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        kind, path = ensure_load_generator()
        load = LoadGenerator(kind, path, tmp)
        lg_version = load.version()
        say(f"load generator: {lg_version}; workspace {tmp}")
        home_dir = tmp / "home"
        os.environ["ENDPOINTS_HOME"] = str(home_dir)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home_dir / 'mlflow.db'}"
        os.environ.pop("MLFLOW_REGISTRY_URI", None)
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        from toolkit.home import Home

        home = Home.resolve(home_dir).ensure()
        bench = Bench(args, tmp, procs, load)
        info = machine()
        say(f"machine: {info['cores']} cores, {info['cpu']}; load average {load1:.2f}")

        say("training and registering: " + ", ".join(MODELS[k][0] for k in keys))
        uris = train_and_register(home, keys)
        X, _ = make_frame()
        rows_file = tmp / "rows.json"
        rows_file.write_text(json.dumps({"columns": list(X.columns), "data": X.head(BATCH_ROWS).values.tolist()}))
        body = json.dumps({"dataframe_split": {"columns": list(X.columns),
                                               "data": [X.iloc[0].tolist()]}}).encode()
        model_dirs = {k: download_model(uris[k], tmp / "models" / k) for k in keys}

        for k in keys:
            lim = physical_limit(model_dirs[k], rows_file, args.limit_seconds)
            bench.limits[k] = lim
            say(f"physical limit {MODELS[k][0]}: predict({BATCH_ROWS} rows) {lim['batch32_ms']:.2f} ms -> "
                f"{lim['rows_per_s']:,.0f} rows/s per core; 1 row {lim['row1_ms']:.2f} ms "
                f"(pyfunc {lim['pyfunc_row1_ms']:.2f} ms)")

        import mlflow.pyfunc

        for k in keys:
            expected = mlflow.pyfunc.load_model(model_dirs[k]).predict(X.head(1)).tolist()
            if "mlflow" in servers:
                for w in (1, 2):
                    bench.mlflow_serve(k, uris[k], w, body, expected)
            if "ours" in servers:
                bench.ours(k, uris[k], model_dirs[k], body, expected)

        bench.stop_host()
        load2 = os.getloadavg()[0]
        bench.notes.append(f"1-minute load average {load1:.2f} before the run, {load2:.2f} after "
                           f"(other work on the machine skews absolute numbers; the ratios are what counts)")
        report = render(bench, started, info, lg_version)
        print("\n" + report)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "online.md").write_text(report)
        (RESULTS / "online.json").write_text(json.dumps({
            "machine": info, "duration_s": args.duration, "limits": bench.limits,
            "rows": [{"model": r.model, "server": r.server, "concurrency": r.concurrency, **r.result.summary(),
                      "cpu_ms_per_request": r.cpu_ms, "cores_busy": r.cores_busy}
                     for r in bench.rows],
            "verdicts": [{"target": t, "met": ok, "measured": how} for t, ok, how in verdicts(bench.rows)],
            "batching": bench.batching, "notes": bench.notes,
        }, indent=2))
        say(f"wrote {RESULTS / 'online.md'} and online.json")
        if not args.no_readme:
            write_readme(report)
            say(f"updated the online benchmark block of {README}")
        say(f"done in {(time.monotonic() - started) / 60:.1f} min")
        return 0
    except BenchError as err:
        print(f"\nbenchmark failed: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if bench is not None:
            bench.stop_host()
        procs.stop_all()
        if args.keep:
            print(f"kept the workspace {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--_predict-limit":
        predict_limit_child(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
