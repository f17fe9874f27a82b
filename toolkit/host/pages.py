"""What a browser sees on the host: ``GET /`` (the workspace at a glance) and
``GET /endpoints/{e}/docs`` (Swagger UI for one endpoint).

Swagger UI's JavaScript and CSS come from the ``swagger-ui-bundle`` Python package and are
served by the host under ``/ui/swagger-ui/``: the pages make no request that leaves the machine
(no CDN, no fonts, and Swagger UI's online validator badge is turned off).

The pages show names, URLs, deployments and traffic, never a key or a token.  An endpoint's
OpenAPI document needs the endpoint's key (as scoring does), so the docs page asks for it and
keeps it in the tab's ``sessionStorage``; ``#key=...`` in the URL works too (a fragment never
reaches the server, so the key is not in any log).
"""

from __future__ import annotations

import html
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..context import HostContext

__all__ = ["Pages", "is_page_path", "ASSETS_PREFIX"]

ASSETS_PREFIX = "/ui/swagger-ui"
_OE, _OD, _BE = "online-endpoint", "online-deployment", "batch-endpoint"

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:60rem;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.muted{color:#666}code{background:#f4f4f4;padding:0 .25rem;border-radius:3px}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
th{font-weight:600;background:#fafafa}.state-Succeeded{color:#18794e}.state-Failed{color:#b42318}
"""


def is_page_path(path: str) -> bool:
    """Whether the host sends ``path`` here (checked on every request: keep it cheap)."""
    return path == "/" or path.startswith(ASSETS_PREFIX) or (path.startswith("/endpoints/") and path.endswith("/docs"))


def _swagger_dir() -> str | None:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # the package is a dependency; a broken install still gets the home page
        return None
    return str(swagger_ui_path)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


class Pages:
    """A small Starlette app of the host's HTML pages and the Swagger UI assets."""

    def __init__(self, ctx: HostContext) -> None:
        self.ctx = ctx
        routes: list[Any] = [
            Route("/", self.home, methods=["GET", "HEAD"]),
            Route("/endpoints/{endpoint}/docs", self.docs, methods=["GET", "HEAD"]),
        ]
        assets = _swagger_dir()
        if assets:
            routes.append(Mount(ASSETS_PREFIX, app=StaticFiles(directory=assets), name="swagger-ui"))
        self.app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    # --- GET / ----------------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        store, url = self.ctx.store, self.ctx.settings.url
        online = store.list(_OE)
        batch = store.list(_BE)
        up = time.time() - (self.ctx.settings.started_at or time.time())
        parts = [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            "<title>Endpoints Toolkit host</title>",
            f"<link rel='icon' href='{ASSETS_PREFIX}/favicon-32x32.png'><style>{_STYLE}</style></head><body>",
            "<h1>Endpoints Toolkit host</h1>",
            f"<p class='muted'>workspace <code>{_e(self.ctx.home.root)}</code> &middot; {_e(url)} &middot; "
            f"version {_e(__version__)} &middot; up {up:.0f} s</p>",
            "<p><a href='/metrics'>Prometheus metrics</a> &middot; "
            "<a href='/v2/health/ready'>V2 readiness</a> &middot; "
            "control plane API: <code>/api/v1</code> (admin token)</p>",
            "<h2>Online endpoints</h2>",
        ]
        if not online:
            parts.append("<p class='muted'>None yet: <code>endpoints online-endpoint create -f endpoint.yml</code></p>")
        else:
            parts.append("<table><tr><th>endpoint</th><th>scoring URL</th><th>auth</th>"
                         "<th>deployments (traffic)</th><th>docs</th></tr>")
            for ep in online:
                parts.append(self._online_row(ep, url))
            parts.append("</table>")
        parts.append("<h2>Batch endpoints</h2>")
        if not batch:
            parts.append("<p class='muted'>None yet: <code>endpoints batch-endpoint create -f endpoint.yml</code></p>")
        else:
            parts.append("<table><tr><th>endpoint</th><th>default deployment</th><th>invoke</th></tr>")
            for ep in batch:
                default = (ep.spec.get("defaults") or {}).get("deployment_name")
                parts.append(f"<tr><td>{_e(ep.name)}</td><td>{_e(default or '-')}</td>"
                             f"<td><code>endpoints batch-endpoint invoke --name {_e(ep.name)} --input PATH</code></td></tr>")
            parts.append("</table>")
        parts.append("<p class='muted'>Keys: <code>endpoints online-endpoint get-credentials --name E</code>. "
                     "This page shows no secret.</p></body></html>")
        return HTMLResponse("".join(parts))

    def _online_row(self, ep: Any, url: str) -> str:
        traffic = ep.spec.get("traffic") or {}
        mirror = ep.spec.get("mirror_traffic") or {}
        deps = []
        for d in self.ctx.store.list(_OD, ep.name):
            share = f"{traffic.get(d.name, 0)}%" + (f", mirror {mirror[d.name]}%" if mirror.get(d.name) else "")
            deps.append(f"<b>{_e(d.name)}</b> {_e(d.model_version or d.spec.get('model'))} "
                        f"<span class='state-{_e(d.provisioning_state)}'>{_e(d.provisioning_state)}</span> ({_e(share)})")
        return (f"<tr><td>{_e(ep.name)}</td><td><code>{_e(url)}/endpoints/{_e(ep.name)}/score</code></td>"
                f"<td>{_e(ep.spec.get('auth_mode', 'key'))}</td><td>{'<br>'.join(deps) or '-'}</td>"
                f"<td><a href='/endpoints/{_e(ep.name)}/docs'>Swagger UI</a></td></tr>")

    # --- GET /endpoints/{e}/docs ------------------------------------------------------------
    async def docs(self, request: Request) -> Response:
        name = request.path_params["endpoint"]
        ep = self.ctx.store.find(_OE, name)
        if ep is None:
            return JSONResponse({"error_code": "NotFound", "message": f"online endpoint {name!r} does not exist"},
                                status_code=404)
        if _swagger_dir() is None:
            return JSONResponse({"error_code": "NotAvailable",
                                 "message": "Swagger UI needs the swagger-ui-bundle package: pip install swagger-ui-bundle"},
                                status_code=404)
        needs_key = ep.spec.get("auth_mode", "key") != "none"
        config = {"endpoint": name, "url": f"/endpoints/{name}/swagger.json", "needsKey": needs_key}
        return HTMLResponse(_DOCS_PAGE.replace("{{TITLE}}", _e(name)).replace("{{PREFIX}}", ASSETS_PREFIX)
                            .replace("{{CONFIG}}", json.dumps(config).replace("<", "\\u003c")))


async def _not_found(request: Request, err: Exception) -> Response:
    status = getattr(err, "status_code", 404)
    return JSONResponse({"error_code": "NotFound" if status == 404 else "MethodNotAllowed",
                         "message": f"no route {request.method} {request.url.path}"}, status_code=status)


# The key box sits above Swagger UI; the key goes into every request Swagger UI makes (the
# document itself and "Try it out"), through a request interceptor.
_DOCS_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{{TITLE}}: Swagger UI</title>
<link rel="icon" href="{{PREFIX}}/favicon-32x32.png">
<link rel="stylesheet" href="{{PREFIX}}/swagger-ui.css">
<style>body{margin:0;font-family:system-ui,sans-serif}#keybar{padding:.6rem 1rem;background:#f6f6f6;border-bottom:1px solid #ddd}
#keybar input{width:28rem}#keybar .msg{color:#b42318;margin-left:1rem}</style>
</head><body>
<div id="keybar"><a href="/">&larr; host</a> &middot; endpoint <b>{{TITLE}}</b>
<span id="keyform"> &middot; key or token: <input id="key" type="password" autocomplete="off"
 placeholder="endpoints online-endpoint get-credentials --name {{TITLE}}"> <button id="load">Load</button></span>
<span class="msg" id="msg"></span></div>
<div id="swagger-ui"></div>
<script src="{{PREFIX}}/swagger-ui-bundle.js"></script>
<script>
(function () {
  var cfg = {{CONFIG}};
  var store = "endpoint-key:" + cfg.endpoint;
  var m = /(?:^|[#&])key=([^&]+)/.exec(location.hash.slice(1));
  if (m) { sessionStorage.setItem(store, decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname); }
  if (!cfg.needsKey) { document.getElementById("keyform").style.display = "none"; }
  function key() { return sessionStorage.getItem(store) || ""; }
  function show() {
    if (cfg.needsKey && !key()) { document.getElementById("msg").textContent = "this endpoint needs its key to show its API"; return; }
    document.getElementById("msg").textContent = "";
    window.ui = SwaggerUIBundle({
      url: cfg.url, dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout",
      requestInterceptor: function (req) { if (cfg.needsKey && key()) { req.headers["Authorization"] = "Bearer " + key(); } return req; },
      onComplete: function () { document.body.setAttribute("data-swagger-ready", "1"); }
    });
  }
  document.getElementById("load").onclick = function () { sessionStorage.setItem(store, document.getElementById("key").value.trim()); show(); };
  show();
})();
</script></body></html>
"""
