"""Endpoints view: online and batch endpoints with their deployments; traffic, keys, log, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..format import STATE_STYLE
from ..messages import OpenLive, OpenTest
from .base import DataView, run_on_host

if TYPE_CHECKING:  # pragma: no cover
    from toolkit.views import DeploymentStatus, EndpointStatus

__all__ = ["EndpointsView"]


def _state(state: str | None) -> Text:
    return Text(state or "-", style=STATE_STYLE.get(state or "", ""))


def _instances(dep: "DeploymentStatus") -> str:
    ready = sum(1 for i in dep.instances if i.ready)
    return f"{ready}/{dep.instance_count}" if dep.instances else (str(dep.instance_count) if dep.instance_count else "-")


class EndpointsView(DataView):
    BINDINGS = [
        Binding("t", "edit_traffic", "Traffic"),
        Binding("l", "log", "Log"),
        Binding("k", "credentials", "Keys"),
        Binding("v", "live", "Live", show=False),
        Binding("s", "test", "Test"),
        Binding("d", "delete", "Delete"),
    ]

    def compose(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="endpoints-table", cursor_type="row")
        table.add_columns("Name", "Kind", "State", "Model", "Traffic", "Inst")
        yield table
        yield Static("", id="endpoint-detail")

    # --- data -----------------------------------------------------------------------------------
    def rows(self) -> list[tuple[str, "EndpointStatus", "DeploymentStatus | None"]]:
        snap = self.app.snapshot
        if snap is None:
            return []
        out: list[tuple[str, Any, Any]] = []
        for kind, endpoints in (("online", snap.online_endpoints), ("batch", snap.batch_endpoints)):
            for ep in endpoints:
                out.append((kind, ep, None))
                for dep in ep.deployments:
                    out.append((kind, ep, dep))
        return out

    def update_view(self) -> None:
        table = self.query_one("#endpoints-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for kind, ep, dep in self.rows():
            if dep is None:
                table.add_row(Text(ep.name, style="bold"), f"{kind}/{ep.auth_mode}" if kind == "online" else kind,
                              "", "", "", "", key=f"{kind}:{ep.name}")
                continue
            if kind == "online":
                share = f"{dep.traffic}%" + (f" m{dep.mirror}%" if dep.mirror else "")
            else:
                share = "default" if ep.default_deployment == dep.name else ""
            model = f"{dep.model_version or dep.model or '-'}"
            table.add_row(f" └ {dep.name}", "", _state(dep.state), model, share, _instances(dep),
                          key=f"{kind}:{ep.name}/{dep.name}")
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        else:
            self.query_one("#endpoint-detail", Static).update(
                "No endpoints yet. Deploy a model from the Models view (1, then d).")
            return
        self.show_detail()

    def selected(self) -> tuple[str, "EndpointStatus", "DeploymentStatus | None"] | None:
        rows = self.rows()
        row = self.query_one("#endpoints-table", DataTable).cursor_row
        return rows[row] if rows and 0 <= row < len(rows) else None

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def on_data_table_row_selected(self, _: DataTable.RowSelected) -> None:
        self.action_live()

    def show_detail(self) -> None:
        picked = self.selected()
        detail = self.query_one("#endpoint-detail", Static)
        if picked is None:
            detail.update("")
            return
        kind, ep, dep = picked
        if dep is None:
            if kind == "online":
                traffic = ", ".join(f"{k} {v}%" for k, v in ep.traffic.items()) or "none"
                mirror = ", ".join(f"{k} {v}%" for k, v in ep.mirror_traffic.items() if v) or "none"
                detail.update(Text.assemble((ep.name, "bold"), f"  {ep.scoring_uri or ''}\n",
                                            f"traffic: {traffic}   mirror: {mirror}   auth: {ep.auth_mode}"))
            else:
                detail.update(Text.assemble((ep.name, "bold"), f"  batch, default deployment: "
                                            f"{ep.default_deployment or '-'}\n", ep.description or ""))
            return
        lines = [Text.assemble((f"{ep.name}/{dep.name}", "bold"), f"  {dep.model or ''}  {dep.instance_type or ''}")]
        if dep.instances:
            lines.append(Text("instances: " + ", ".join(f"{i.id} {i.state}" for i in dep.instances[:4])))
        detail.update(Text("\n").join(lines))

    def _online_endpoint(self) -> tuple["EndpointStatus", "DeploymentStatus | None"] | None:
        picked = self.selected()
        if picked is None or picked[0] != "online":
            self.app.notify("select an online endpoint or one of its deployments", severity="warning")
            return None
        return picked[1], picked[2]

    # --- actions --------------------------------------------------------------------------------
    def action_edit_traffic(self) -> None:
        from ..screens.traffic import TrafficScreen

        picked = self._online_endpoint()
        if picked is None:
            return
        ep = picked[0]
        if not ep.deployments:
            self.app.notify(f"{ep.name} has no deployments to send traffic to", severity="warning")
            return
        self.app.push_screen(TrafficScreen(ep), self._apply_traffic)

    def _apply_traffic(self, result: tuple[str, dict[str, int], dict[str, int]] | None) -> None:
        if result is None or not self.need_host():
            return
        name, traffic, mirror = result
        run_on_host(self, self.ws.online_endpoints.update_traffic, name, traffic, mirror, title="traffic",
                    done=lambda _: (self.app.notify(f"{name}: traffic applied"), self.app.poll()))

    def action_credentials(self) -> None:
        from ..screens.credentials import CredentialsScreen

        picked = self._online_endpoint()
        if picked is None or not self.need_host():
            return
        name = picked[0].name
        run_on_host(self, self.ws.online_endpoints.get_credentials, name, title="credentials",
                    done=lambda creds: self.app.push_screen(CredentialsScreen(name, creds)))

    def action_log(self) -> None:
        from ..screens.log import LogScreen

        picked = self._online_endpoint()
        if picked is None:
            return
        ep, dep = picked
        dep = dep or (ep.deployments[0] if ep.deployments else None)
        if dep is None:
            self.app.notify(f"{ep.name} has no deployments", severity="warning")
            return
        self.app.push_screen(LogScreen(ep.name, dep.name))

    def action_live(self) -> None:
        picked = self.selected()
        if picked is not None and picked[0] == "online":
            self.post_message(OpenLive(picked[1].name))

    def action_test(self) -> None:
        picked = self._online_endpoint()
        if picked is not None:
            self.post_message(OpenTest(picked[0].name, picked[1].name if picked[1] else None))

    def action_delete(self) -> None:
        from ..screens.confirm import ConfirmScreen

        picked = self.selected()
        if picked is None:
            return
        kind, ep, dep = picked
        what = f"{kind} deployment {ep.name}/{dep.name}" if dep else f"{kind} endpoint {ep.name} and its deployments"
        self.app.push_screen(ConfirmScreen(f"Delete {what}?", confirm="Delete"),
                             lambda yes: self._delete(kind, ep.name, dep.name if dep else None) if yes else None)

    def _delete(self, kind: str, endpoint: str, deployment: str | None) -> None:
        if not self.need_host():
            return
        ws = self.ws
        if deployment:
            ops = ws.online_deployments if kind == "online" else ws.batch_deployments
            fn, args = ops.delete, (endpoint, deployment)
        else:
            ops = ws.online_endpoints if kind == "online" else ws.batch_endpoints
            fn, args = ops.delete, (endpoint,)
        label = f"{endpoint}/{deployment}" if deployment else endpoint
        run_on_host(self, fn, *args, title="delete",
                    done=lambda _: (self.app.notify(f"deleted {label}"), self.app.poll()))
