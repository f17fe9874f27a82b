"""``endpoints``: the command line, nouns and verbs after ``az ml`` (DESIGN.md section 4).

Exit codes: 0 ok, 1 the operation failed, 2 bad usage or an invalid spec (the field is named).
Every read command takes ``-o json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .entities import format_time
from .errors import InvalidInput, InvalidSpec, ToolkitError
from .home import Home

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# --- output -----------------------------------------------------------------------------------


def _plain(data: Any) -> Any:
    return data.to_dict() if hasattr(data, "to_dict") else data


def _emit(args: argparse.Namespace, data: Any, human: Callable[[Any], str] | None = None) -> None:
    if isinstance(data, list):
        data = [_plain(d) for d in data]
    else:
        data = _plain(data)
    if getattr(args, "output", "table") == "json" or human is None:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(human(data))


def _table(rows: list[dict[str, Any]], cols: Sequence[str]) -> str:
    if not rows:
        return "(none)"

    def cell(v: Any) -> str:
        if isinstance(v, dict):
            return " ".join(f"{k}={x}" for k, x in v.items()) or "-"
        if isinstance(v, list):
            return ",".join(map(str, v)) or "-"
        return "-" if v in (None, "") else str(v)

    grid = [[c.upper() for c in cols]] + [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in grid) for i in range(len(cols))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in grid)


def _kv(data: dict[str, Any], skip: Sequence[str] = ()) -> str:
    lines = []
    for k, v in data.items():
        if k in skip:
            continue
        if k.endswith("_at"):
            v = format_time(v)
        if isinstance(v, (dict, list)):
            v = json.dumps(v, default=str)
        lines.append(f"{k:<22} {v}")
    return "\n".join(lines)


def _show_with_events(data: dict[str, Any]) -> str:
    out = _kv(data, skip=("events", "instances"))
    if data.get("instances"):
        out += "\n\ninstances:\n" + _table(data["instances"], [c for c in ("id", "state", "pid", "restarts", "rss_mib", "cpu_percent") if any(c in i for i in data["instances"])])
    if data.get("events"):
        out += "\n\nevents:\n" + "\n".join(
            f"  {format_time(e['ts'])}  {e['reason']:<22} {e['message']}" for e in data["events"]
        )
    return out


# --- helpers ----------------------------------------------------------------------------------


def _ws(args: argparse.Namespace, start: bool = True) -> Any:
    from .workspace import Workspace

    return Workspace(args.home, start=start, port=getattr(args, "port", None))


def _parse_pairs(text: str | None, flag: str) -> dict[str, int]:
    """``"blue=90 green=10"`` (spaces or commas) -> {"blue": 90, "green": 10}."""
    out: dict[str, int] = {}
    for item in (text or "").replace(",", " ").split():
        name, sep, pct = item.partition("=")
        if not sep or not pct.strip().lstrip("-").isdigit():
            raise InvalidSpec(f"{flag}: {item!r} is not name=percent")
        out[name.strip()] = int(pct)
    return out


def _load(cls: Any, args: argparse.Namespace, **extra: Any) -> Any:
    from .specs import apply_overrides, load_spec, parse_spec

    if args.file:
        return load_spec(cls, args.file, args.set)
    data = apply_overrides({k: v for k, v in extra.items() if v is not None}, args.set)
    return parse_spec(cls, data, source="command line")


def _not_yet(what: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        print(f"{what} is not available yet in this version of endpoints-toolkit", file=sys.stderr)
        return EXIT_FAILED

    return run


# --- host -------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from .host import daemon

    home = Home.resolve(args.home)
    if args.foreground:
        return daemon.serve(home, args.host, args.port, foreground=True)
    info = daemon.start_background(home, host=args.host, port=args.port)
    _emit(args, info.to_dict(), lambda d: f"host running at {d['url']} (pid {d['pid']}, home {d['home']})")
    return EXIT_OK


def cmd_down(args: argparse.Namespace) -> int:
    from .host import daemon

    info = daemon.stop(Home.resolve(args.home))
    print("host stopped" + (f" (pid {info.pid})" if info else ": none was running"))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from .host import daemon

    home = Home.resolve(args.home)
    if daemon.read_host(home) is None:
        _emit(args, {"running": False, "home": str(home.root)}, lambda d: f"no host running for {d['home']}")
        return EXIT_FAILED
    data = {"running": True, **_ws(args, start=False).status().to_dict()}

    def human(d: dict[str, Any]) -> str:
        jobs = " ".join(f"{k}={v}" for k, v in d.get("jobs", {}).items()) or "none"
        return (
            f"host      {d['url']}  (pid {d['pid']}, up {d['uptime_s']:.0f} s, version {d['version']})\n"
            f"home      {d['home']}\n"
            f"registry  {d['tracking_uri']}\n"
            f"online    {d['online_endpoints']} endpoint(s), {d['online_deployments']} deployment(s)\n"
            f"batch     {d['batch_endpoints']} endpoint(s), {d['batch_deployments']} deployment(s)\n"
            f"jobs      {jobs}"
            + _cluster_lines(d.get("cluster"))
        )

    _emit(args, data, human)
    return EXIT_OK


def _cluster_lines(cluster: dict[str, Any] | None) -> str:
    """The batch compute of ``status``: local workers, who may connect, the dashboard; remote schedulers."""
    if not cluster or "local" not in cluster:
        return f"\ncluster   {cluster['error']}" if cluster and cluster.get("error") else ""
    local = cluster["local"]
    board = local.get("dashboard") or {}
    urls = board.get("urls") or []
    where = ", ".join(urls) if urls else (board.get("setting", "off") if not board.get("enabled") else "on (starts with the first job)")
    lines = [
        f"\ncluster   local {local['workers']}/{local['capacity']} worker(s)"
        + (" (TLS: only the host and its workers connect)" if local.get("security") == "tls" else ""),
        f"\ndashboard {where}",
    ]
    lines += [f"\nremote    {r['scheduler']}: {r['workers']} worker(s)" for r in cluster.get("remote", [])]
    return "".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo.run import run_demo

    return run_demo(Home.resolve(args.home), port=args.port)


def cmd_tui(args: argparse.Namespace) -> int:
    try:
        from tui.app import main as tui_main  # the TUI is a separate package; toolkit never imports textual
    except ImportError:
        return _not_yet("the terminal UI")(args)
    return tui_main(home=args.home)


# --- models -----------------------------------------------------------------------------------


def cmd_models_list(args: argparse.Namespace) -> int:
    models = [m.to_dict() for m in _ws(args, start=False).models.list()]

    def human(ms: list[dict[str, Any]]) -> str:
        rows = []
        for m in ms:
            for v in m["versions"]:
                rows.append({"name": m["name"], "version": v["version"], "aliases": v["aliases"],
                             "flavors": v.get("flavors"), "signature": "yes" if v.get("signature") else "no",
                             "created": format_time(v["created_at"])})
        return _table(rows, ["name", "version", "aliases", "flavors", "signature", "created"])

    _emit(args, models, human)
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace) -> int:
    m = _ws(args, start=False).models.get(args.name).to_dict()

    def human(d: dict[str, Any]) -> str:
        out = [f"{d['name']}: {d['description'] or ''}".rstrip(": "), f"aliases: {d['aliases'] or '-'}"]
        for v in d["versions"]:
            out.append(f"\nversion {v['version']}  aliases={v['aliases'] or '-'}  flavors={v.get('flavors')}  source={v['source']}")
            sig = v.get("signature") or {}
            inputs = json.loads(sig["inputs"]) if isinstance(sig.get("inputs"), str) else sig.get("inputs")
            if inputs:
                out.append("  inputs:  " + ", ".join(f"{c.get('name')}:{c.get('type')}" for c in inputs))
            outputs = json.loads(sig["outputs"]) if isinstance(sig.get("outputs"), str) else sig.get("outputs")
            if outputs:
                out.append("  outputs: " + ", ".join(f"{c.get('name', '-')}:{c.get('type')}" for c in outputs))
            out.append(f"  input example: {'yes' if v.get('has_input_example') else 'no'}")
        return "\n".join(out)

    _emit(args, m, human)
    return EXIT_OK


# --- online endpoints -------------------------------------------------------------------------

_EP_COLS = ["name", "auth_mode", "provisioning_state", "traffic", "mirror_traffic", "scoring_uri"]
_DEP_COLS = ["name", "endpoint_name", "model", "model_version", "instance_type", "instance_count", "provisioning_state"]


def cmd_oe_create(args: argparse.Namespace) -> int:
    from .specs import OnlineEndpoint

    spec = _load(OnlineEndpoint, args, name=args.name, auth_mode=getattr(args, "auth_mode", None))
    ws = _ws(args)
    if args.verb == "create":
        _refuse_existing(lambda: ws.online_endpoints.get(spec.name), f"online endpoint {spec.name!r}")
    result = ws.online_endpoints.create_or_update(spec)
    if args.verb == "update" and (args.traffic is not None or args.mirror_traffic is not None):
        result = _update_traffic(ws, spec.name, args)
    _emit(args, result, lambda d: _kv(d))
    return EXIT_OK


def _refuse_existing(get: Callable[[], Any], what: str) -> None:
    from .errors import Conflict, NotFound

    try:
        get()
    except NotFound:
        return
    raise Conflict(f"{what} already exists; use `update` to change it")


def _update_traffic(ws: Any, name: str, args: argparse.Namespace) -> Any:
    traffic = _parse_pairs(args.traffic, "--traffic") if args.traffic is not None else None
    mirror = _parse_pairs(args.mirror_traffic, "--mirror-traffic") if args.mirror_traffic is not None else None
    return ws.online_endpoints.update_traffic(name, traffic, mirror)


def cmd_oe_update(args: argparse.Namespace) -> int:
    if args.file:
        return cmd_oe_create(args)
    if not args.name:
        raise InvalidSpec("give -f endpoint.yml or --name with --traffic/--mirror-traffic")
    if args.traffic is None and args.mirror_traffic is None and not args.set:
        raise InvalidSpec("nothing to update: give --traffic, --mirror-traffic or --set")
    ws = _ws(args)
    if args.set:
        from .specs import OnlineEndpoint, apply_overrides, parse_spec

        current = ws.online_endpoints.get(args.name).to_dict()
        fields = set(OnlineEndpoint.model_fields)
        spec = parse_spec(OnlineEndpoint, apply_overrides({k: v for k, v in current.items() if k in fields}, args.set))
        ws.online_endpoints.create_or_update(spec)
    result = _update_traffic(ws, args.name, args) if (args.traffic is not None or args.mirror_traffic is not None) \
        else ws.online_endpoints.get(args.name)
    _emit(args, result, lambda d: _kv(d))
    return EXIT_OK


def cmd_oe_show(args: argparse.Namespace) -> int:
    _emit(args, _ws(args, start=False).online_endpoints.get(_name(args)), lambda d: _kv(d))
    return EXIT_OK


def cmd_oe_list(args: argparse.Namespace) -> int:
    _emit(args, list(_ws(args, start=False).online_endpoints.list()), lambda rows: _table(rows, _EP_COLS))
    return EXIT_OK


def cmd_oe_delete(args: argparse.Namespace) -> int:
    _emit(args, _ws(args).online_endpoints.delete(_name(args)), lambda d: f"deleted online endpoint {d['name']}")
    return EXIT_OK


def cmd_oe_invoke(args: argparse.Namespace) -> int:
    resp = _ws(args).online_endpoints.invoke(args.name, request_file=args.request_file,
                                              deployment_name=args.deployment_name, raw=True)
    body = resp.json()
    if args.output == "json":
        print(json.dumps(body))
    else:
        print(json.dumps(body))
        print(f"(served by {resp.headers.get('x-deployment')}, request id {resp.headers.get('x-request-id')})",
              file=sys.stderr)
    return EXIT_OK


def cmd_oe_credentials(args: argparse.Namespace) -> int:
    _emit(args, _ws(args, start=False).online_endpoints.get_credentials(args.name), lambda d: _kv(d))
    return EXIT_OK


def cmd_oe_regenerate(args: argparse.Namespace) -> int:
    _emit(args, _ws(args).online_endpoints.regenerate_keys(args.name, args.key_type),
          lambda d: f"rotated the token-signing secret of {d['name']}: tokens issued before no longer work"
          if d["regenerated"] == "token" else f"regenerated the {d['regenerated']} key of {d['name']}")
    return EXIT_OK


def _name(args: argparse.Namespace) -> str:
    if getattr(args, "name", None):
        return args.name
    if getattr(args, "file", None):
        from .specs import read_spec_file

        data = read_spec_file(args.file) or {}
        if isinstance(data, dict) and data.get("name"):
            return str(data["name"])
    raise InvalidSpec("name: give --name (or -f with a spec that has a name)")


# --- online deployments -----------------------------------------------------------------------


def cmd_od_create(args: argparse.Namespace) -> int:
    from .specs import OnlineDeployment

    spec = _load(OnlineDeployment, args, name=args.name, endpoint_name=args.endpoint_name)
    ws = _ws(args)
    if args.verb == "create":
        _refuse_existing(lambda: ws.online_deployments.get(spec.endpoint_name, spec.name),
                         f"deployment {spec.name!r} of {spec.endpoint_name!r}")
    ops = ws.online_deployments
    if args.no_wait and not args.all_traffic:
        result = ops.create_or_update(spec, wait=False)
    else:
        from .cli_progress import follow_deployment

        ops.create_or_update(spec, wait=False)
        # Instances take seconds to load a model: show them starting instead of a silent wait.
        follow_deployment(lambda: ops.get(spec.endpoint_name, spec.name))
        result = ops.wait(spec.endpoint_name, spec.name)  # raises with the reason if it Failed
        if args.all_traffic:
            ws.online_endpoints.update_traffic(spec.endpoint_name, {spec.name: 100})
            print(f"traffic: {spec.name}=100", file=sys.stderr)
            result = ops.get(spec.endpoint_name, spec.name)
    _emit(args, result, _show_with_events)
    return EXIT_OK


def _dep_names(args: argparse.Namespace) -> tuple[str, str]:
    endpoint, name = args.endpoint_name, args.name
    if (not endpoint or not name) and getattr(args, "file", None):
        from .specs import read_spec_file

        data = read_spec_file(args.file) or {}
        if isinstance(data, dict):
            endpoint, name = endpoint or data.get("endpoint_name"), name or data.get("name")
    if not endpoint or not name:
        raise InvalidSpec("give --endpoint-name and --name (or -f deployment.yml)")
    return endpoint, name


def cmd_od_show(args: argparse.Namespace) -> int:
    e, n = _dep_names(args)
    _emit(args, _ws(args, start=False).online_deployments.get(e, n), _show_with_events)
    return EXIT_OK


def cmd_od_list(args: argparse.Namespace) -> int:
    _emit(args, list(_ws(args, start=False).online_deployments.list(args.endpoint_name)), lambda rows: _table(rows, _DEP_COLS))
    return EXIT_OK


def cmd_od_delete(args: argparse.Namespace) -> int:
    e, n = _dep_names(args)
    _emit(args, _ws(args).online_deployments.delete(e, n), lambda d: f"deleted deployment {d['name']} of {d['endpoint']}")
    return EXIT_OK


def cmd_od_logs(args: argparse.Namespace) -> int:
    e, n = _dep_names(args)
    ops = _ws(args, start=False).online_deployments
    logs = ops.get_logs(e, n, lines=args.lines)
    if not args.follow:
        _emit(args, {"logs": logs} if args.output == "json" else logs, lambda d: d)
        return EXIT_OK
    if args.output == "json":
        raise InvalidSpec("--follow prints lines as they come; it cannot be combined with -o json")
    seen = logs.splitlines()
    if logs:
        print(logs, flush=True)
    try:
        while True:
            time.sleep(1.0)
            now = ops.get_logs(e, n, lines=max(args.lines, 1000)).splitlines()
            fresh = _new_lines(seen, now)
            if fresh:
                print("\n".join(fresh), flush=True)
            seen = now
    except KeyboardInterrupt:
        return EXIT_OK


def _new_lines(before: list[str], after: list[str]) -> list[str]:
    """The lines of ``after`` past the longest overlap of ``before``'s end with ``after``'s start."""
    for k in range(min(len(before), len(after)), 0, -1):
        if after[:k] == before[-k:]:
            return after[k:]
    return after


def cmd_od_test(args: argparse.Namespace) -> int:
    from .operations import score_spec_locally
    from .specs import OnlineDeployment, load_spec

    spec = load_spec(OnlineDeployment, args.file, args.set)
    status, body = score_spec_locally(spec, Path(args.request_file), home=Home.resolve(args.home))
    print(json.dumps(body))
    return EXIT_OK if status < 400 else EXIT_FAILED


# --- batch ------------------------------------------------------------------------------------

_BEP_COLS = ["name", "defaults", "deployments", "provisioning_state"]
_BDEP_COLS = ["name", "endpoint_name", "model", "model_version", "compute", "mini_batch_size", "provisioning_state"]
_JOB_COLS = ["id", "endpoint", "deployment", "state", "progress", "output"]


def cmd_be_create(args: argparse.Namespace) -> int:
    from .specs import BatchEndpoint

    spec = _load(BatchEndpoint, args, name=args.name)
    ws = _ws(args)
    if args.verb == "create":
        _refuse_existing(lambda: ws.batch_endpoints.get(spec.name), f"batch endpoint {spec.name!r}")
    _emit(args, ws.batch_endpoints.create_or_update(spec), lambda d: _kv(d))
    return EXIT_OK


def cmd_be_show(args: argparse.Namespace) -> int:
    _emit(args, _ws(args, start=False).batch_endpoints.get(_name(args)), lambda d: _kv(d))
    return EXIT_OK


def cmd_be_list(args: argparse.Namespace) -> int:
    _emit(args, list(_ws(args, start=False).batch_endpoints.list()), lambda rows: _table(rows, _BEP_COLS))
    return EXIT_OK


def cmd_be_delete(args: argparse.Namespace) -> int:
    _emit(args, _ws(args).batch_endpoints.delete(_name(args)), lambda d: f"deleted batch endpoint {d['name']}")
    return EXIT_OK


def cmd_be_invoke(args: argparse.Namespace) -> int:
    overrides = {"mini_batch_size": args.mini_batch_size, "instance_count": args.instance_count,
                 "max_retries": args.max_retries, "timeout": args.timeout, "error_threshold": args.error_threshold,
                 "output_file_name": args.output_file_name, "mini_batch_rows": args.mini_batch_rows}
    ws = _ws(args)
    job = ws.batch_endpoints.invoke(args.name, args.input, deployment_name=args.deployment_name,
                                    output=args.output_path, **overrides)
    if args.stream:
        print(f"job {job.id} {job.state}; following it (Ctrl-C stops watching, not the job)", file=sys.stderr)
        _stream_job(job)
        job.refresh()
    _emit(args, job, _job_human)
    return _job_exit(job.to_dict())


def _job_exit(job: dict[str, Any]) -> int:
    """0 for a job that scored its input (a warning when some files failed), else 1."""
    state = job.get("state")
    failed_files = (job.get("progress") or {}).get("failed_files") or 0
    if state == "Completed" and failed_files:
        print(f"warning: job {job.get('id')} completed, but {failed_files} file(s) failed: {job.get('message')}",
              file=sys.stderr)
    if state in ("Failed", "Canceled"):
        return EXIT_FAILED
    return EXIT_OK


def _job_human(d: dict[str, Any]) -> str:
    out = _kv({k: v for k, v in d.items() if k != "spec"})
    failed_files = (d.get("progress") or {}).get("failed_files") or 0
    if d.get("state") == "Completed" and failed_files:
        out += f"\nwarning                {failed_files} file(s) failed; see the error logs in {d.get('output')}"
    return out


def _stream_job(job: Any) -> None:
    from .cli_progress import follow_job, interrupted_job_message

    try:
        follow_job(job)
    except KeyboardInterrupt:
        print(interrupted_job_message(job.id), file=sys.stderr)
        raise _Interrupted() from None


class _Interrupted(Exception):
    """Ctrl-C after the message was printed: exit 130 without another word."""


def cmd_bd_create(args: argparse.Namespace) -> int:
    from .specs import BatchDeployment

    spec = _load(BatchDeployment, args, name=args.name, endpoint_name=args.endpoint_name)
    ws = _ws(args)
    if args.verb == "create":
        _refuse_existing(lambda: ws.batch_deployments.get(spec.endpoint_name, spec.name),
                         f"batch deployment {spec.name!r} of {spec.endpoint_name!r}")
    _emit(args, ws.batch_deployments.create_or_update(spec, set_default=args.set_default), lambda d: _kv(d))
    return EXIT_OK


def cmd_bd_show(args: argparse.Namespace) -> int:
    e, n = _dep_names(args)
    _emit(args, _ws(args, start=False).batch_deployments.get(e, n), lambda d: _kv(d))
    return EXIT_OK


def cmd_bd_list(args: argparse.Namespace) -> int:
    _emit(args, list(_ws(args, start=False).batch_deployments.list(args.endpoint_name)), lambda rows: _table(rows, _BDEP_COLS))
    return EXIT_OK


def cmd_bd_delete(args: argparse.Namespace) -> int:
    e, n = _dep_names(args)
    _emit(args, _ws(args).batch_deployments.delete(e, n), lambda d: f"deleted batch deployment {d['name']} of {d['endpoint']}")
    return EXIT_OK


def cmd_job_show(args: argparse.Namespace) -> int:
    _emit(args, _ws(args, start=False).jobs.get(args.id), _job_human)
    return EXIT_OK


def cmd_job_list(args: argparse.Namespace) -> int:
    _emit(args, list(_ws(args, start=False).jobs.list(args.endpoint_name, args.state)), lambda rows: _table(rows, _JOB_COLS))
    return EXIT_OK


def cmd_job_stream(args: argparse.Namespace) -> int:
    job = _ws(args, start=False).jobs.get(args.id)
    _stream_job(job)
    data = job.refresh().to_dict()
    print(f"job {job.id}: {data.get('state')}" + (f": {data['message']}" if data.get("message") else ""))
    code = _job_exit(data)
    return EXIT_OK if code == EXIT_OK and data.get("state") == "Completed" else EXIT_FAILED


def cmd_job_cancel(args: argparse.Namespace) -> int:
    _emit(args, _ws(args).jobs.cancel(args.id), _job_human)
    return EXIT_OK


# --- advisor ----------------------------------------------------------------------------------


def cmd_advise(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.file:
        from .specs import read_spec_file

        body = read_spec_file(args.file) or {}
        if not isinstance(body, dict):
            raise InvalidSpec(f"{args.file}: a workload must be a mapping of fields, got {type(body).__name__}")
    for key in ("model", "frequency", "latency_ms", "deadline", "rows_per_request", "rows_per_run",
                "peak_rps", "avg_rps", "hours_per_day"):
        value = getattr(args, key, None)
        if value is not None:
            body[key] = value
    if args.yes and not args.apply:
        raise InvalidSpec("--yes confirms --apply; give --apply too")
    ws = _ws(args)
    advice = ws.advise(body)
    _emit(args, advice.to_dict(), lambda d: repr(advice))
    if args.apply or args.dry_run:
        return _apply_advice(ws, advice, args)
    return EXIT_OK


def _apply_advice(ws: Any, advice: Any, args: argparse.Namespace) -> int:
    from .cli_apply import apply_changes, confirm, plan_changes, touches_live

    changes = plan_changes(ws, advice.to_specs())
    say = (lambda text: print(text, file=sys.stderr))
    say("\nplan:\n" + "\n".join(c.describe() for c in changes))
    if args.dry_run:
        say("dry run: nothing was changed")
        return EXIT_OK
    live = touches_live(changes)
    if live and not args.yes and not confirm(f"this changes {', '.join(live)}; apply?"):
        say(f"not applied: it would change {', '.join(live)}. Re-run with --yes to apply, or --dry-run to only look.")
        return EXIT_FAILED
    apply_changes(ws, changes, say)
    return EXIT_OK


def _for_cli(message: str, args: argparse.Namespace) -> str:
    """A host error in the words of the command line (flags, not HTTP headers)."""
    if "no deployment with traffic" in message:
        name = getattr(args, "name", None) or "E"
        message = message.split(";")[0] + (
            f"; name a deployment with --deployment-name D, or route traffic to one with "
            f'`endpoints online-endpoint update --name {name} --traffic "D=100"`')
    return message


# --- parser -----------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser, output: bool = True) -> None:
    p.add_argument("--home", default=None, help="workspace home (default $ENDPOINTS_HOME or ./mlruns)")
    if output:
        p.add_argument("-o", "--output", choices=["table", "json"], default="table")


def _spec_args(p: argparse.ArgumentParser, deployment: bool = False) -> None:
    p.add_argument("-f", "--file", help="YAML spec")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec field")
    p.add_argument("-n", "--name")
    if deployment:
        p.add_argument("-e", "--endpoint-name")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="endpoints", description="Local managed model endpoints: online and batch.")
    sub = parser.add_subparsers(dest="noun", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="start the host")
    _common(p)
    p.add_argument("--port", type=int, default=5080)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--foreground", action="store_true", help="run in this terminal (debugging)")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="stop the host and everything it started")
    _common(p, output=False)
    p.set_defaults(func=cmd_down)
    p = sub.add_parser("status", help="the host's URL, pid, uptime and what it holds")
    _common(p)
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("demo", help="the end-to-end demo")
    _common(p, output=False)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_demo)
    if _tui_available():  # listed only where it works
        p = sub.add_parser("tui", help="the terminal UI")
        _common(p, output=False)
        p.set_defaults(func=cmd_tui)

    models = sub.add_parser("models", help="registry models").add_subparsers(dest="verb", required=True)
    p = models.add_parser("list")
    _common(p)
    p.set_defaults(func=cmd_models_list)
    p = models.add_parser("show")
    _common(p)
    p.add_argument("name")
    p.set_defaults(func=cmd_models_show)

    # online-endpoint
    oe = sub.add_parser("online-endpoint", help="online endpoints").add_subparsers(dest="verb", required=True)
    for verb, func in (("create", cmd_oe_create), ("update", cmd_oe_update)):
        p = oe.add_parser(verb)
        _common(p)
        _spec_args(p)
        p.add_argument("--auth-mode", choices=["key", "token", "none"])
        p.add_argument("--traffic", help='e.g. "blue=90 green=10"')
        p.add_argument("--mirror-traffic", help='e.g. "green=10"')
        p.set_defaults(func=func)
    for verb, func in (("show", cmd_oe_show), ("delete", cmd_oe_delete)):
        p = oe.add_parser(verb)
        _common(p)
        p.add_argument("-n", "--name")
        p.add_argument("-f", "--file")
        p.set_defaults(func=func)
    p = oe.add_parser("list")
    _common(p)
    p.set_defaults(func=cmd_oe_list)
    p = oe.add_parser("invoke")
    _common(p)
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-r", "--request-file", required=True)
    p.add_argument("-d", "--deployment-name")
    p.set_defaults(func=cmd_oe_invoke)
    p = oe.add_parser("get-credentials")
    _common(p)
    p.add_argument("-n", "--name", required=True)
    p.set_defaults(func=cmd_oe_credentials)
    p = oe.add_parser(
        "regenerate-keys", help="renew a key, or the token-signing secret (revokes issued tokens)",
        description="Renew one credential of an endpoint; the old one stops working at once. "
                    "primary/secondary: a key (auth_mode key; rotate one while clients use the other). "
                    "token: the secret that signs tokens (auth_mode token), so every token issued "
                    "so far is revoked; clients get a new one with get-credentials.")
    _common(p)
    p.add_argument("-n", "--name", required=True)
    p.add_argument("--key-type", choices=["primary", "secondary", "token"], required=True,
                   help="primary or secondary key, or token (the token-signing secret)")
    p.set_defaults(func=cmd_oe_regenerate)

    # online-deployment
    od = sub.add_parser("online-deployment", help="online deployments").add_subparsers(dest="verb", required=True)
    for verb in ("create", "update"):
        p = od.add_parser(verb)
        _common(p)
        _spec_args(p, deployment=True)
        p.add_argument("--all-traffic", action="store_true", help="send 100%% of traffic here once it is ready")
        p.add_argument("--no-wait", action="store_true", help="return before the deployment is ready")
        p.set_defaults(func=cmd_od_create)
    for verb, func in (("show", cmd_od_show), ("delete", cmd_od_delete)):
        p = od.add_parser(verb)
        _common(p)
        p.add_argument("-n", "--name")
        p.add_argument("-e", "--endpoint-name")
        p.add_argument("-f", "--file")
        p.set_defaults(func=func)
    p = od.add_parser("list")
    _common(p)
    p.add_argument("-e", "--endpoint-name", required=True)
    p.set_defaults(func=cmd_od_list)
    p = od.add_parser("get-logs")
    _common(p)
    p.add_argument("-e", "--endpoint-name", required=True)
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-f", "--file", default=None)
    p.add_argument("--lines", type=int, default=100)
    p.add_argument("--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    p.set_defaults(func=cmd_od_logs)
    p = od.add_parser("test", help="score a spec in this process, creating nothing (a local endpoint)")
    _common(p)
    p.add_argument("-f", "--file", required=True)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("-r", "--request-file", required=True)
    p.set_defaults(func=cmd_od_test)

    # batch-endpoint
    be = sub.add_parser("batch-endpoint", help="batch endpoints").add_subparsers(dest="verb", required=True)
    for verb in ("create", "update"):
        p = be.add_parser(verb)
        _common(p)
        _spec_args(p)
        p.set_defaults(func=cmd_be_create)
    for verb, func in (("show", cmd_be_show), ("delete", cmd_be_delete)):
        p = be.add_parser(verb)
        _common(p)
        p.add_argument("-n", "--name")
        p.add_argument("-f", "--file")
        p.set_defaults(func=func)
    p = be.add_parser("list")
    _common(p)
    p.set_defaults(func=cmd_be_list)
    p = be.add_parser("invoke")
    _common(p)
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-i", "--input", required=True, help="folder, file, glob or fsspec URL")
    p.add_argument("-d", "--deployment-name")
    p.add_argument("--output-path", "--output-dir", dest="output_path", help="a new folder for the outputs")
    p.add_argument("--mini-batch-size", type=int)
    p.add_argument("--mini-batch-rows", type=int)
    p.add_argument("--instance-count", type=int)
    p.add_argument("--max-retries", type=int)
    p.add_argument("--timeout", type=int)
    p.add_argument("--error-threshold", type=int)
    p.add_argument("--output-file-name")
    p.add_argument("--stream", action="store_true", help="follow the job until it ends")
    p.set_defaults(func=cmd_be_invoke)

    # batch-deployment
    bd = sub.add_parser("batch-deployment", help="batch deployments").add_subparsers(dest="verb", required=True)
    for verb in ("create", "update"):
        p = bd.add_parser(verb)
        _common(p)
        _spec_args(p, deployment=True)
        p.add_argument("--set-default", action="store_true")
        p.set_defaults(func=cmd_bd_create)
    for verb, func in (("show", cmd_bd_show), ("delete", cmd_bd_delete)):
        p = bd.add_parser(verb)
        _common(p)
        p.add_argument("-n", "--name")
        p.add_argument("-e", "--endpoint-name")
        p.add_argument("-f", "--file")
        p.set_defaults(func=func)
    p = bd.add_parser("list")
    _common(p)
    p.add_argument("-e", "--endpoint-name", required=True)
    p.set_defaults(func=cmd_bd_list)

    # job
    job = sub.add_parser("job", help="batch jobs").add_subparsers(dest="verb", required=True)
    for verb, func in (("show", cmd_job_show), ("stream", cmd_job_stream), ("cancel", cmd_job_cancel)):
        p = job.add_parser(verb)
        _common(p)
        p.add_argument("id")
        p.set_defaults(func=func)
    p = job.add_parser("list")
    _common(p)
    p.add_argument("-e", "--endpoint-name")
    p.add_argument("--state")
    p.set_defaults(func=cmd_job_list)

    # advise
    p = sub.add_parser("advise", help="recommend online or batch for a workload")
    _common(p)
    p.add_argument("-f", "--file", help="workload YAML")
    p.add_argument("--model")
    p.add_argument("--frequency", help='"per request", "every 1 week", "monthly"...')
    p.add_argument("--latency-ms", type=float)
    p.add_argument("--deadline", help='e.g. "12h"')
    p.add_argument("--rows-per-request", type=int)
    p.add_argument("--rows-per-run", type=int)
    p.add_argument("--peak-rps", type=float)
    p.add_argument("--avg-rps", type=float)
    p.add_argument("--hours-per-day", type=float)
    p.add_argument("--apply", action="store_true",
                   help="deploy the recommended option (asks first when it would change an existing endpoint)")
    p.add_argument("--yes", "-y", action="store_true", help="with --apply: do not ask before changing existing resources")
    p.add_argument("--dry-run", action="store_true", help="show what --apply would create or change, change nothing")
    p.set_defaults(func=cmd_advise)
    from .cli_help import document

    return document(parser)


def _tui_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("tui.app") is not None
    except (ImportError, ValueError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if not hasattr(args, "verb"):
        args.verb = args.noun
    try:
        return args.func(args)
    except (InvalidSpec,) as err:
        print(f"error: {err.message}", file=sys.stderr)
        return EXIT_USAGE
    except InvalidInput as err:
        print(f"error: {err.message}", file=sys.stderr)
        return EXIT_USAGE if err.status_code == 400 and "request file" in err.message else EXIT_FAILED
    except ToolkitError as err:
        print(f"error: {_for_cli(err.message, args)}", file=sys.stderr)
        return EXIT_FAILED
    except _Interrupted:
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `endpoints ... | head` closed the pipe: not an error of ours
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
