"""What the SDK returns: read-only views of host records with a useful repr and an HTML table."""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

__all__ = ["Entity", "EntityList", "format_time"]

# Fields shown first (and in the one-line repr), per kind of record.
_SUMMARY = ("name", "endpoint_name", "endpoint", "provisioning_state", "state", "model", "model_version",
            "auth_mode", "traffic", "mirror_traffic", "instance_type", "instance_count", "scoring_uri")


def format_time(ts: Any) -> str:
    if not isinstance(ts, (int, float)) or ts <= 0:
        return str(ts)
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value is None or value == "" else str(value)


class Entity:
    """A record from the host (an endpoint, a deployment, a model, a job...).

    Attribute and item access both work (``ep.traffic``, ``ep["traffic"]``); ``to_dict()`` gives
    the JSON the host returned.
    """

    kind = "entity"

    def __init__(self, data: dict[str, Any], kind: str | None = None) -> None:
        self._data = data
        if kind:
            self.kind = kind

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_data"][name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def to_json(self) -> str:
        return json.dumps(self._data, indent=2, default=str)

    def _summary(self) -> list[tuple[str, Any]]:
        return [(k, self._data[k]) for k in _SUMMARY if k in self._data and self._data[k] not in (None, "", {}, [])]

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v!r}" for k, v in self._summary()[:6])
        return f"<{self.kind} {parts}>"

    def _repr_html_(self) -> str:
        rows = []
        for k, v in self._data.items():
            if k == "events" and isinstance(v, list):
                v = "<br>".join(
                    html.escape(f"{format_time(e.get('ts'))} {e.get('reason')}: {e.get('message')}") for e in v[-5:]
                ) or "-"
                rows.append(f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>")
                continue
            if k.endswith("_at"):
                v = format_time(v)
            rows.append(
                f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                f"<td style='text-align:left'>{html.escape(_cell(v))}</td></tr>"
            )
        return f"<table><caption style='text-align:left'><b>{html.escape(self.kind)}</b></caption>{''.join(rows)}</table>"


class EntityList(list):  # type: ignore[type-arg]
    """A list of entities that renders as one table in a notebook."""

    def __init__(self, items: list[Entity], kind: str) -> None:
        super().__init__(items)
        self.kind = kind

    def _repr_html_(self) -> str:
        if not self:
            return f"<i>no {html.escape(self.kind)}s</i>"
        cols = [k for k, _ in self[0]._summary()] or list(self[0].to_dict())[:6]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(_cell(e.get(c)))}</td>" for c in cols) + "</tr>"
            for e in self
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

