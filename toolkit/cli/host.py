"""``endpoints up | down | status | demo | tui``: the host of a workspace and what runs on it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..home import Home
from .common import EXIT_FAILED, EXIT_OK, add_common, workspace
from .output import emit

__all__ = ["register", "cmd_up", "cmd_down", "cmd_status", "cmd_demo", "cmd_tui"]


def cmd_up(args: argparse.Namespace) -> int:
    from .. import launcher

    home = Home.resolve(args.home)
    if args.foreground:
        from ..host import daemon  # only here: running the server in this process

        return daemon.serve(home, args.host, args.port, foreground=True)
    info = launcher.start_background(home, host=args.host, port=args.port)
    emit(args, info.to_dict(), lambda d: f"host running at {d['url']} (pid {d['pid']}, home {d['home']})")
    return EXIT_OK


def cmd_down(args: argparse.Namespace) -> int:
    from .. import launcher

    info = launcher.stop(Home.resolve(args.home))
    print("host stopped" + (f" (pid {info.pid})" if info else ": none was running"))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from .. import launcher

    home = Home.resolve(args.home)
    if launcher.read_host(home) is None:
        emit(args, {"running": False, "home": str(home.root)}, lambda d: f"no host running for {d['home']}")
        return EXIT_FAILED
    data = {"running": True, **workspace(args, start=False).status().to_dict()}

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

    emit(args, data, human)
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
    from ..demo.run import run_demo

    return run_demo(Home.resolve(args.home), port=args.port)


def cmd_tui(args: argparse.Namespace) -> int:
    try:
        from tui.app import main as tui_main  # the TUI is a separate package; toolkit never imports textual
    except ImportError as err:
        print(f"error: the terminal UI cannot start: {err}; install it with `pip install 'endpoints-toolkit'` "
              "(it needs textual 8.2)", file=sys.stderr)
        return EXIT_FAILED
    return tui_main(home=args.home)


def _tui_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("tui.app") is not None
    except (ImportError, ValueError):
        return False


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="start the host")
    add_common(p)
    p.add_argument("--port", type=int, default=5080)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--foreground", action="store_true", help="run in this terminal (debugging)")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="stop the host and everything it started")
    add_common(p, output=False)
    p.set_defaults(func=cmd_down)
    p = sub.add_parser("status", help="the host's URL, pid, uptime and what it holds")
    add_common(p)
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("demo", help="the end-to-end demo")
    add_common(p, output=False)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_demo)
    if _tui_available():  # listed only where it works
        p = sub.add_parser("tui", help="the terminal UI")
        add_common(p, output=False)
        p.set_defaults(func=cmd_tui)
