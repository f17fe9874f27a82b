"""Online endpoints and deployments: the store is written first, then the online service is told.

Each method validates against the rules that span resources, writes the store, records an event
and calls the online service's hook, which returns at once (slow work runs in its background
tasks; callers poll ``provisioning_state``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from ..errors import Conflict, InvalidSpec, NotFound
from ..events import EventReason
from ..context import HostContext
from .. import credentials as auth
from ..specs import OnlineDeployment, OnlineEndpoint, TrafficTable, parse_spec
from .rules import OD, OE, check_code, check_deployment_limit, check_not_busy, check_traffic, refuse_existing, \
    resolve_model, same_name
from .views import deployment_view, endpoint_view

__all__ = ["OnlineControl", "KeyType"]

# token: a new token-signing secret, which revokes every token issued so far.
KeyType = Literal["primary", "secondary", "token"]


class OnlineControl:
    """The online half of :class:`toolkit.control.ControlPlane`."""

    ctx: HostContext

    # --- endpoints ------------------------------------------------------------------------
    def online_endpoints(self) -> list[dict[str, Any]]:
        return [endpoint_view(self.ctx, e) for e in self.ctx.store.list(OE)]

    def online_endpoint(self, name: str) -> dict[str, Any]:
        return endpoint_view(self.ctx, self.ctx.store.get(OE, name))

    async def create_online_endpoint(self, spec: OnlineEndpoint) -> dict[str, Any]:
        """Create only: an existing endpoint is a Conflict (``update`` changes it)."""
        refuse_existing(self.ctx.store, OE, spec.name, spec.name, f"online endpoint {spec.name!r}")
        return await self.put_online_endpoint(spec.name, spec)

    async def put_online_endpoint(self, name: str, spec: OnlineEndpoint) -> dict[str, Any]:
        """Create or update; a spec that does not set traffic keeps the stored traffic. A new
        endpoint gets its keys and token secret minted here."""
        ctx = self.ctx
        same_name(name, spec.name)
        existing = ctx.store.find(OE, name)
        if existing is not None:
            # A spec file without traffic must not wipe the traffic set with `update --traffic`.
            for field in ("traffic", "mirror_traffic"):
                if field not in spec.model_fields_set:
                    setattr(spec, field, existing.spec.get(field, {}))
            spec = parse_spec(OnlineEndpoint, spec.to_dict())
        if spec.auth_mode == "none" and not ctx.settings.loopback:
            raise InvalidSpec("auth_mode: 'none' is only allowed when the host listens on loopback")
        check_traffic(ctx.store, spec)
        res = ctx.store.put(OE, name, name, spec.to_dict(), "Succeeded")
        if ctx.store.get_secrets(name) is None:
            ctx.store.put_secrets(name, **auth.new_secrets())
        ctx.event(EventReason.EndpointUpdated if existing else EventReason.EndpointCreated,
                  f"auth_mode={spec.auth_mode} traffic={spec.traffic or {}} mirror={spec.mirror_traffic or {}}",
                  endpoint=name)
        await ctx.online.endpoint_changed(name)
        return endpoint_view(ctx, res)

    async def set_traffic(self, name: str, traffic: TrafficTable | None = None,
                          mirror_traffic: TrafficTable | None = None) -> dict[str, Any]:
        """Set live and/or mirror traffic (None leaves a table as it is)."""
        ctx = self.ctx
        current = ctx.store.get(OE, name).spec
        if traffic is not None:
            current["traffic"] = traffic
            # Giving a deployment live traffic ends its mirroring (a mirror must have 0 live traffic).
            current["mirror_traffic"] = {k: v for k, v in current.get("mirror_traffic", {}).items()
                                         if traffic.get(k, 0) == 0}
        if mirror_traffic is not None:
            current["mirror_traffic"] = mirror_traffic
        spec = parse_spec(OnlineEndpoint, current)
        check_traffic(ctx.store, spec)
        res = ctx.store.put(OE, name, name, spec.to_dict(), "Succeeded")
        ctx.event(EventReason.TrafficUpdated, f"traffic={spec.traffic} mirror={spec.mirror_traffic}", endpoint=name)
        await ctx.online.endpoint_changed(name)
        return endpoint_view(ctx, res)

    async def delete_online_endpoint(self, name: str) -> dict[str, Any]:
        """Delete the endpoint, every deployment under it (their instances stopped) and its keys."""
        ctx = self.ctx
        ctx.store.get(OE, name)
        ctx.store.set_state(OE, name, name, "Deleting")
        for d in ctx.store.list(OD, name):
            ctx.store.set_state(OD, name, d.name, "Deleting")
        await ctx.online.endpoint_deleted(name)
        ctx.store.delete_children(OD, name)
        ctx.store.delete(OE, name)
        ctx.store.delete_secrets(name)
        ctx.event(EventReason.EndpointDeleted, "endpoint and its deployments deleted", endpoint=name)
        return {"name": name, "deleted": True}

    def credentials(self, name: str) -> dict[str, Any]:
        """The keys (key mode) or a freshly signed token (token mode)."""
        ctx = self.ctx
        spec = ctx.store.get(OE, name).spec
        secrets_row = ctx.store.get_secrets(name)
        if secrets_row is None:
            raise NotFound(f"endpoint {name!r} has no credentials")
        if spec["auth_mode"] == "token":
            return {"auth_mode": "token", **auth.issue_token(name, secrets_row["token_secret"])}
        return {"auth_mode": spec["auth_mode"], "primaryKey": secrets_row["primary_key"],
                "secondaryKey": secrets_row["secondary_key"]}

    async def regenerate_keys(self, name: str, key_type: KeyType) -> dict[str, Any]:
        ctx = self.ctx
        ctx.store.get(OE, name)
        ctx.store.put_secrets(name, **auth.regenerated(ctx.store.get_secrets(name), key_type))
        ctx.event(EventReason.KeyRegenerated, "the token-signing secret was rotated: tokens issued before are revoked"
                  if key_type == "token" else f"the {key_type} key was regenerated", endpoint=name)
        await ctx.online.endpoint_changed(name)
        return {"name": name, "regenerated": key_type}

    # --- deployments ----------------------------------------------------------------------
    def online_deployments(self, endpoint: str) -> list[dict[str, Any]]:
        self.ctx.store.get(OE, endpoint)
        return [deployment_view(self.ctx, d, events=0) for d in self.ctx.store.list(OD, endpoint)]

    def online_deployment(self, endpoint: str, name: str) -> dict[str, Any]:
        return deployment_view(self.ctx, self.ctx.store.get(OD, endpoint, name))

    async def create_online_deployment(self, spec: OnlineDeployment) -> dict[str, Any]:
        """Create only: an existing deployment is a Conflict (``update`` changes it)."""
        refuse_existing(self.ctx.store, OD, spec.endpoint_name, spec.name,
                        f"deployment {spec.name!r} of online endpoint {spec.endpoint_name!r}")
        return await self.put_online_deployment(spec.endpoint_name, spec.name, spec)

    async def put_online_deployment(self, endpoint: str, name: str, spec: OnlineDeployment) -> dict[str, Any]:
        """Create or update; the model is pinned to the version it resolves to now.  Returns at
        once with state Creating/Updating (the online service starts the instances)."""
        ctx = self.ctx
        same_name(name, spec.name)
        same_name(endpoint, spec.endpoint_name, "endpoint_name")
        ctx.store.get(OE, endpoint)
        existing = ctx.store.find(OD, endpoint, name)
        if existing is None:
            check_deployment_limit(ctx.store, endpoint)
        else:
            check_not_busy(existing.provisioning_state, name)
        check_code(spec)
        resolved = await asyncio.to_thread(resolve_model, ctx.registry, spec.model)
        state = "Updating" if existing else "Creating"
        ctx.store.put(OD, endpoint, name, spec.to_dict(), state, model_version=resolved.label)
        ctx.event(EventReason.DeploymentUpdating if existing else EventReason.DeploymentCreating,
                  f"model {spec.model} resolved to {resolved.label}; {spec.instance_count} x {spec.instance_type}",
                  endpoint=endpoint, deployment=name)
        await ctx.online.deploy(endpoint, name)
        return deployment_view(ctx, ctx.store.get(OD, endpoint, name))

    async def delete_online_deployment(self, endpoint: str, name: str) -> dict[str, Any]:
        """Delete a deployment that takes no live or mirrored traffic; its zero entries leave the
        endpoint's traffic tables."""
        ctx = self.ctx
        ep = ctx.store.get(OE, endpoint).spec
        ctx.store.get(OD, endpoint, name)
        if ep.get("traffic", {}).get(name, 0) > 0:
            raise Conflict(
                f"deployment {name!r} has {ep['traffic'][name]}% live traffic; move its traffic to other "
                "deployments first (online-endpoint update --traffic)"
            )
        if ep.get("mirror_traffic", {}).get(name, 0) > 0:
            raise Conflict(f"deployment {name!r} receives mirrored traffic; set its mirror_traffic to 0 first")
        ctx.store.set_state(OD, endpoint, name, "Deleting")
        await ctx.online.undeploy(endpoint, name)
        ctx.store.delete(OD, endpoint, name)
        # Drop zero entries naming the deleted deployment so the traffic table stays clean.
        for field in ("traffic", "mirror_traffic"):
            ep[field] = {k: v for k, v in ep.get(field, {}).items() if k != name}
        ctx.store.put(OE, endpoint, endpoint, ep, "Succeeded")
        ctx.event(EventReason.DeploymentDeleted, "deployment deleted", endpoint=endpoint, deployment=name)
        await ctx.online.endpoint_changed(endpoint)
        return {"endpoint": endpoint, "name": name, "deleted": True}

    def deployment_logs(self, endpoint: str, name: str, lines: int = 100) -> dict[str, Any]:
        self.ctx.store.get(OD, endpoint, name)
        return {"endpoint": endpoint, "name": name, "logs": self.ctx.online.logs(endpoint, name, lines)}

    def stats(self, endpoint: str | None = None) -> dict[str, Any]:
        """Per-deployment rps, latency percentiles and errors over the sliding window."""
        return self.ctx.online.stats(endpoint)
