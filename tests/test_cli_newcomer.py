"""The CLI as a newcomer meets it: help, progress, suggestions, safety, and no surprise hosts.

Every command runs as a real subprocess against a real host; stdin is /dev/null (no terminal),
as in CI or a pipe.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import run_cli
from toolkit.cli import build_parser
from toolkit.cli.help import HELP, commands
from toolkit.demo.data import write_oj_weekly_files
from toolkit.host import daemon

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PROGRESS = re.compile(r"^(Queued|Running|Finalizing|Completed|Failed): \d+/(\d+|\?) mini-batches.*rows", re.M)


def cli(*args: str, home, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENDPOINTS_HOME": str(home.root)}
    return subprocess.run([sys.executable, "-m", "toolkit", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def test_every_subcommand_has_a_line_and_an_example_and_nothing_extra():
    parser = build_parser()
    listed = set(commands(parser))
    assert listed <= set(HELP), f"sub-commands without help: {sorted(map(str, listed - set(HELP)))}"
    extra = set(HELP) - listed - {("tui", None)}  # tui is listed only where its package is installed
    assert not extra, f"help for commands that do not exist: {extra}"
    for noun, verb in listed:
        line, example = HELP[(noun, verb)]
        assert line and "\n" not in line and example.startswith(f"endpoints {noun}")
        # every example parses: it names real options
        parsed = parser.parse_args(shlex.split(example)[1:])
        assert parsed.noun == noun
    top = run_cli("--help")
    assert top.returncode == 0 and "examples:" in top.stdout
    for noun, verb in (("online-deployment", "get-logs"), ("batch-endpoint", "invoke"), ("job", None)):
        out = run_cli(*[w for w in (noun, verb) if w], "--help").stdout
        assert HELP[(noun, verb)][0][1:] in " ".join(out.split()) and HELP[(noun, verb)][1] in out


def test_read_command_after_down_says_no_host_instead_of_starting_one(home):
    proc = cli("online-endpoint", "list", home=home)
    assert proc.returncode == 1
    assert "no host is running" in proc.stderr and "endpoints up" in proc.stderr
    assert daemon.read_host(home) is None
    models = cli("models", "list", home=home)
    assert models.returncode == 1 and daemon.read_host(home) is None


def test_unknown_model_name_version_and_alias_suggest_what_exists(workspace):
    home = workspace.home
    typo = cli("models", "show", "chrun", home=home)
    assert typo.returncode == 1 and "did you mean 'churn'" in typo.stderr, typo.stderr
    dep = cli("online-endpoint", "create", "--name", "shop", home=home)
    assert dep.returncode == 0, dep.stderr
    bad_version = cli("online-deployment", "create", "--name", "blue", "--endpoint-name", "shop",
                      "--set", "model=models:/churn/9", home=home)
    assert bad_version.returncode != 0
    assert "has no version '9'" in bad_version.stderr and "versions: 1, 2" in bad_version.stderr
    assert "champion (1)" in bad_version.stderr
    bad_name = cli("online-deployment", "create", "--name", "blue", "--endpoint-name", "shop",
                   "--set", "model=models:/oj_sales/1", home=home)
    assert "did you mean 'oj-sales'" in bad_name.stderr, bad_name.stderr


def test_invoke_without_traffic_names_the_cli_flags(workspace):
    home = workspace.home
    assert cli("online-endpoint", "create", "-f", str(EXAMPLES / "churn-endpoint.yml"), home=home).returncode == 0
    proc = cli("online-endpoint", "invoke", "--name", "churn", "--request-file", str(EXAMPLES / "churn-request.json"),
               home=home)
    assert proc.returncode == 1
    assert "--deployment-name" in proc.stderr and "--traffic" in proc.stderr and "X-Deployment" not in proc.stderr


def _batch_endpoint(home) -> None:
    for args in (("batch-endpoint", "create", "-f", str(EXAMPLES / "oj-sales-endpoint.yml")),
                 ("batch-deployment", "create", "-f", str(EXAMPLES / "oj-sales-deployment.yml"), "--set-default",
                  "--set", "resources.instance_count=1", "--set", "mini_batch_size=1")):
        proc = cli(*args, home=home)
        assert proc.returncode == 0, proc.stderr


def test_stream_shows_progress_lines_when_piped_and_all_failed_jobs_fail(workspace, tmp_path):
    home = workspace.home
    _batch_endpoint(home)
    files = write_oj_weekly_files(tmp_path / "weekly", weeks=4, stores=3)
    rows = sum(len(f.read_text().splitlines()) - 1 for f in files)
    ok = cli("batch-endpoint", "invoke", "--name", "oj-sales", "--input", str(tmp_path / "weekly"), "--stream",
             home=home)
    assert ok.returncode == 0, ok.stderr
    lines = PROGRESS.findall(ok.stdout)
    assert lines and f"Completed: 4/4 mini-batches, {rows:,} rows" in ok.stdout, ok.stdout
    assert "\r" not in ok.stdout  # plain lines, not a redrawn bar
    assert "JobCompleted" in ok.stdout

    # Every file lacks the model's columns: each one fails, whatever error_threshold says (-1).
    broken = tmp_path / "broken"
    broken.mkdir()
    for i in range(3):
        (broken / f"part-{i}.csv").write_text("a,b\n1,2\n")
    bad = cli("batch-endpoint", "invoke", "--name", "oj-sales", "--input", str(broken), "--stream", home=home)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert re.search(r"^state\s+Failed$", bad.stdout, re.M), bad.stdout
    assert "every input file failed (3 of 3)" in bad.stdout
    job_id = re.search(r"^id\s+(\S+)$", bad.stdout, re.M).group(1)
    shown = json.loads(cli("job", "show", job_id, "-o", "json", home=home).stdout)
    assert shown["state"] == "Failed"

    # Files no reader can read are refused at submit: no job is created.
    jsons = tmp_path / "jsons"
    jsons.mkdir()
    (jsons / "rows.json").write_text("[]")
    before = len(json.loads(cli("job", "list", "-o", "json", home=home).stdout))
    refused = cli("batch-endpoint", "invoke", "--name", "oj-sales", "--input", str(jsons), home=home)
    assert refused.returncode != 0 and "none of its 1 file(s) is CSV or Parquet (found .json)" in refused.stderr
    assert len(json.loads(cli("job", "list", "-o", "json", home=home).stdout)) == before


SLOW_SCRIPT = '''
import os, time
import mlflow.pyfunc
import pandas as pd

def init():
    global model
    model = mlflow.pyfunc.load_model(os.environ["AZUREML_MODEL_DIR"])

def run(mini_batch):
    time.sleep(2)
    frames = [pd.read_csv(p) for p in mini_batch]
    return pd.DataFrame({"prediction": model.predict(pd.concat(frames))})
'''


def test_ctrl_c_while_streaming_leaves_the_job_running_and_says_how_to_reattach(workspace, tmp_path):
    home = workspace.home
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(textwrap.dedent(SLOW_SCRIPT))
    assert cli("batch-endpoint", "create", "--name", "slow", home=home).returncode == 0
    made = cli("batch-deployment", "create", "--name", "slow", "--endpoint-name", "slow", "--set-default",
               "--set", "model=models:/oj-sales/1", "--set", f"code_configuration.code={code}",
               "--set", "code_configuration.scoring_script=score.py", "--set", "mini_batch_size=1",
               "--set", "resources.instance_count=1", home=home)
    assert made.returncode == 0, made.stderr
    write_oj_weekly_files(tmp_path / "weekly", weeks=20, stores=2)
    env = {**os.environ, "ENDPOINTS_HOME": str(home.root)}
    proc = subprocess.Popen([sys.executable, "-m", "toolkit", "batch-endpoint", "invoke", "--name", "slow", "--input",
                             str(tmp_path / "weekly"), "--stream"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env)
    try:
        first = proc.stdout.readline()  # the first event: the job exists and is being followed
        assert "JobQueued" in first, first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    job_id = re.search(r"endpoints job stream (\S+)", err).group(1)
    assert f"endpoints job cancel {job_id}" in err and "goes on" in err
    assert "Traceback" not in err
    state = workspace.jobs.get(job_id).state
    assert state not in ("Canceled", "Failed"), state
    workspace.jobs.cancel(job_id)


def test_advise_apply_on_a_live_endpoint_changes_nothing_without_yes(workspace):
    home = workspace.home
    assert cli("online-endpoint", "create", "-f", str(EXAMPLES / "churn-endpoint.yml"), home=home).returncode == 0
    made = cli("online-deployment", "create", "-f", str(EXAMPLES / "churn-blue.yml"), "--set", "instance_count=1",
               "--all-traffic", home=home)
    assert made.returncode == 0, made.stderr
    assert re.search(r"blue: \w+, instances \d of \d ready", made.stderr), made.stderr  # instances shown starting
    before = workspace.online_endpoints.get("churn").to_dict()
    advise = ("advise", "--model", "models:/churn@champion", "--frequency", "per request", "--latency-ms", "200",
              "--peak-rps", "5", "-o", "json")
    dry = cli(*advise, "--dry-run", home=home)
    assert dry.returncode == 0, dry.stderr
    assert "plan:" in dry.stderr and "dry run: nothing was changed" in dry.stderr
    assert "traffic of churn: blue=100 -> " in dry.stderr, dry.stderr

    refused = cli(*advise, "--apply", home=home)
    assert refused.returncode == 1, refused.stderr
    assert "not applied" in refused.stderr and "--yes" in refused.stderr
    after = workspace.online_endpoints.get("churn").to_dict()
    assert after["traffic"] == before["traffic"] == {"blue": 100}
    assert after["description"] == before["description"]
    assert [d.name for d in workspace.online_deployments.list("churn")] == ["blue"]


def test_follow_prints_only_new_log_lines_and_progress_lines_read_well():
    from toolkit.cli.online_deployment import new_lines as _new_lines
    from toolkit.cli.progress import progress_line

    assert _new_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert _new_lines(["a", "b"], ["a", "b"]) == []
    assert _new_lines(["x"], ["y", "z"]) == ["y", "z"]  # rotated past what was seen: print it all
    job = {"state": "Running", "progress": {"total_minibatches": 13, "completed": 4, "failed": 1, "rows": 2400,
                                            "rows_per_s": 3403.2, "eta_s": 65}}
    assert progress_line(job) == "Running: 5/13 mini-batches (1 failed), 2,400 rows, 3,403 rows/s, ETA 1m05s"
