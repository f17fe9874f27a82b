"""``endpoints online-endpoint ...``: create, update (spec, traffic), show, list, delete, invoke,
credentials and key rotation."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import InvalidSpec
from .common import EXIT_OK, add_common, add_lookup_verbs, add_spec_args, load_spec_args, name_of, parse_pairs, workspace
from .output import emit, kv, table

__all__ = ["register"]

_EP_COLS = ["name", "auth_mode", "provisioning_state", "traffic", "mirror_traffic", "scoring_uri"]


def _traffic_flags(args: argparse.Namespace) -> tuple[dict[str, int] | None, dict[str, int] | None]:
    traffic = parse_pairs(args.traffic, "--traffic") if args.traffic is not None else None
    mirror = parse_pairs(args.mirror_traffic, "--mirror-traffic") if args.mirror_traffic is not None else None
    return traffic, mirror


def cmd_oe_create(args: argparse.Namespace) -> int:
    from ..specs import OnlineEndpoint

    spec = load_spec_args(OnlineEndpoint, args, name=args.name, auth_mode=getattr(args, "auth_mode", None))
    ops = workspace(args).online_endpoints
    if args.verb == "create":
        result = ops.create(spec)
    else:
        result = ops.create_or_update(spec)
        if args.traffic is not None or args.mirror_traffic is not None:
            result = ops.update_traffic(spec.name, *_traffic_flags(args))
    emit(args, result, lambda d: kv(d))
    return EXIT_OK


def cmd_oe_update(args: argparse.Namespace) -> int:
    if args.file:
        return cmd_oe_create(args)
    if not args.name:
        raise InvalidSpec("give -f endpoint.yml or --name with --traffic/--mirror-traffic")
    if args.traffic is None and args.mirror_traffic is None and not args.set:
        raise InvalidSpec("nothing to update: give --traffic, --mirror-traffic or --set")
    traffic, mirror = _traffic_flags(args)
    result = workspace(args).online_endpoints.update(args.name, set=args.set, traffic=traffic, mirror_traffic=mirror)
    emit(args, result, lambda d: kv(d))
    return EXIT_OK


def cmd_oe_show(args: argparse.Namespace) -> int:
    emit(args, workspace(args, start=False).online_endpoints.get(name_of(args)), lambda d: kv(d))
    return EXIT_OK


def cmd_oe_list(args: argparse.Namespace) -> int:
    emit(args, list(workspace(args, start=False).online_endpoints.list()), lambda rows: table(rows, _EP_COLS))
    return EXIT_OK


def cmd_oe_delete(args: argparse.Namespace) -> int:
    emit(args, workspace(args).online_endpoints.delete(name_of(args)), lambda d: f"deleted online endpoint {d['name']}")
    return EXIT_OK


def cmd_oe_invoke(args: argparse.Namespace) -> int:
    resp = workspace(args).online_endpoints.invoke(args.name, request_file=args.request_file,
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
    emit(args, workspace(args, start=False).online_endpoints.get_credentials(args.name), lambda d: kv(d))
    return EXIT_OK


def cmd_oe_regenerate(args: argparse.Namespace) -> int:
    emit(args, workspace(args).online_endpoints.regenerate_keys(args.name, args.key_type),
         lambda d: f"rotated the token-signing secret of {d['name']}: tokens issued before no longer work"
         if d["regenerated"] == "token" else f"regenerated the {d['regenerated']} key of {d['name']}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    oe = sub.add_parser("online-endpoint", help="online endpoints").add_subparsers(dest="verb", required=True)
    for verb, func in (("create", cmd_oe_create), ("update", cmd_oe_update)):
        p = oe.add_parser(verb)
        add_common(p)
        add_spec_args(p)
        p.add_argument("--auth-mode", choices=["key", "token", "none"])
        p.add_argument("--traffic", help='e.g. "blue=90 green=10"')
        p.add_argument("--mirror-traffic", help='e.g. "green=10"')
        p.set_defaults(func=func)
    add_lookup_verbs(oe, cmd_oe_show, cmd_oe_delete, cmd_oe_list)
    p = oe.add_parser("invoke")
    add_common(p)
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-r", "--request-file", required=True)
    p.add_argument("-d", "--deployment-name")
    p.set_defaults(func=cmd_oe_invoke)
    p = oe.add_parser("get-credentials")
    add_common(p)
    p.add_argument("-n", "--name", required=True)
    p.set_defaults(func=cmd_oe_credentials)
    p = oe.add_parser(
        "regenerate-keys", help="renew a key, or the token-signing secret (revokes issued tokens)",
        description="Renew one credential of an endpoint; the old one stops working at once. "
                    "primary/secondary: a key (auth_mode key; rotate one while clients use the other). "
                    "token: the secret that signs tokens (auth_mode token), so every token issued "
                    "so far is revoked; clients get a new one with get-credentials.")
    add_common(p)
    p.add_argument("-n", "--name", required=True)
    p.add_argument("--key-type", choices=["primary", "secondary", "token"], required=True,
                   help="primary or secondary key, or token (the token-signing secret)")
    p.set_defaults(func=cmd_oe_regenerate)
