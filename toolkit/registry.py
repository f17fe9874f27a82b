"""Read access to the MLflow Model Registry, without loading models.

Deployments name models by URI; the host resolves an alias to a concrete version once, when a
deployment is created or updated, and records it, so a later alias move never changes what a
running deployment serves.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import InvalidSpec, NotFound
from .home import DEFAULT_EXPERIMENT, Home

__all__ = ["Registry", "ModelVersionInfo", "RegisteredModelInfo", "ResolvedModel", "ensure_experiment", "pinned_uri", "fetch_model"]


def ensure_experiment(home: Home, name: str = DEFAULT_EXPERIMENT) -> str:
    """The experiment with its artifacts inside the home (not in whatever folder we run from)."""
    import mlflow

    home.configure_mlflow()
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        location = home.artifacts.as_uri() if "://" not in home.tracking_uri or home.tracking_uri.startswith("sqlite") else None
        exp_id = mlflow.create_experiment(name, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def pinned_uri(model: str, model_version: str | None) -> str:
    """The registry version the control plane recorded (``name:version``), so an alias that moved
    since the deployment was created does not change what it serves (after a restart, or for a job)."""
    if model.startswith("models:/") and model_version and ":" in model_version:
        name, _, version = str(model_version).rpartition(":")
        if version.isdigit():
            return f"models:/{name}/{version}"
    return model


def fetch_model(uri: str, cache: Path | None = None, tracking_uri: str | None = None) -> str:
    """A local folder holding the model at ``uri`` (a folder is used where it is).

    With ``cache`` (a folder), the model is fetched once into ``cache/<uri>`` and reused; the copy
    lands under a temporary name first, so a reader never sees half a model.  ``tracking_uri`` is
    for a process that has not configured MLflow (a remote batch worker).
    """
    if os.path.isdir(uri):
        return uri
    import mlflow
    import mlflow.artifacts

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    if cache is None:
        return mlflow.artifacts.download_artifacts(artifact_uri=uri)
    folder = cache / re.sub(r"[^A-Za-z0-9._-]+", "_", uri.split(":/", 1)[-1]).strip("_")
    if (folder / "MLmodel").exists():
        return str(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp))
    try:
        os.replace(tmp, folder)
    except OSError:  # another job fetched it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return str(folder)


@dataclass
class ModelVersionInfo:
    name: str
    version: str
    aliases: list[str]
    tags: dict[str, str]
    source: str
    run_id: str | None
    status: str
    created_at: float
    signature: dict[str, Any] | None = None
    has_input_example: bool = False
    flavors: list[str] = field(default_factory=list)
    # The first rows of the saved input example as ``{"columns", "data"}`` (MLflow's
    # dataframe_split), for the UIs' test panels; read with the signature.
    input_example: dict[str, Any] | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["uri"] = self.uri
        return d


@dataclass
class RegisteredModelInfo:
    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, str]
    versions: list[ModelVersionInfo]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "tags": self.tags,
            "aliases": self.aliases, "versions": [v.to_dict() for v in self.versions],
        }


@dataclass
class ResolvedModel:
    """A model URI pinned to what it points at now."""

    requested: str
    uri: str              # concrete: models:/name/version, runs:/..., or an absolute folder
    name: str | None = None
    version: str | None = None

    @property
    def label(self) -> str:
        """What ``show`` prints as the model version."""
        return f"{self.name}:{self.version}" if self.name else self.uri

    @cached_property
    def local_path(self) -> str:
        """Download (or locate) the model folder; instances and workers load from here."""
        return fetch_model(self.uri)


def _signature_dict(sig: Any) -> dict[str, Any] | None:
    if sig is None:
        return None
    out = {"inputs": None, "outputs": None, "params": None}
    for part in ("inputs", "outputs", "params"):
        schema = getattr(sig, part, None)
        if schema is not None:
            out[part] = schema.to_dict()
    return out


class Registry:
    """A thin layer over :class:`mlflow.MlflowClient` for the workspace's registry."""

    def __init__(self, home: Home) -> None:
        self.home = home
        home.configure_mlflow()
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=home.tracking_uri, registry_uri=home.registry_uri)

    # --- listing --------------------------------------------------------------------------
    def _version_info(self, mv: Any, with_signature: bool = True) -> ModelVersionInfo:
        info = ModelVersionInfo(
            name=mv.name, version=str(mv.version), aliases=list(getattr(mv, "aliases", []) or []),
            tags=dict(mv.tags or {}), source=mv.source, run_id=mv.run_id, status=mv.status,
            created_at=(mv.creation_timestamp or 0) / 1000.0,
        )
        if with_signature:
            try:
                import mlflow.models

                mi = mlflow.models.get_model_info(f"models:/{mv.name}/{mv.version}")
                info.signature = _signature_dict(mi.signature)
                info.has_input_example = mi.saved_input_example_info is not None
                info.flavors = sorted(mi.flavors)
                if info.has_input_example:
                    info.input_example = self._example_rows(info.uri)
            except Exception as err:  # a broken version must not hide the others
                info.tags = {**info.tags, "_error": f"cannot read model metadata: {err}"}
        return info

    def list_models(self, with_signature: bool = True) -> list[RegisteredModelInfo]:
        out = []
        for rm in self.client.search_registered_models(max_results=1000):
            out.append(self._model_info(rm, with_signature))
        return sorted(out, key=lambda m: m.name)

    def _model_info(self, rm: Any, with_signature: bool) -> RegisteredModelInfo:
        versions = self.client.search_model_versions(f"name='{rm.name}'", max_results=1000)
        vinfos = sorted((self._version_info(v, with_signature) for v in versions), key=lambda v: int(v.version))
        aliases = {a: v for a, v in (getattr(rm, "aliases", {}) or {}).items()}
        # search_model_versions leaves aliases empty; the registered model knows them.
        for info in vinfos:
            info.aliases = sorted(a for a, v in aliases.items() if str(v) == info.version)
        return RegisteredModelInfo(
            name=rm.name, description=rm.description or "", tags=dict(rm.tags or {}),
            aliases={a: str(v) for a, v in aliases.items()}, versions=vinfos,
        )

    def get_model(self, name: str, with_signature: bool = True) -> RegisteredModelInfo:
        from mlflow.exceptions import MlflowException

        try:
            rm = self.client.get_registered_model(name)
        except MlflowException:
            raise NotFound(f"registered model {name!r} does not exist{self._suggest_model(name)}") from None
        return self._model_info(rm, with_signature)

    def _example_rows(self, uri: str, rows: int = 5) -> dict[str, Any] | None:
        """A version's input example as JSON-safe ``{"columns", "data"}``, for the UIs' test panels."""
        import json

        import pandas as pd

        try:
            example = self.input_example(uri)
        except Exception:  # an unreadable example must not hide the model
            return None
        if isinstance(example, pd.DataFrame):
            split = json.loads(example.head(rows).to_json(orient="split", date_format="iso"))
            return {"columns": split["columns"], "data": split["data"]}
        return None

    def _suggest_model(self, name: str) -> str:
        """``; did you mean 'churn'?`` from the registered names (or how to list/register them)."""
        try:
            names = sorted(m.name for m in self.client.search_registered_models(max_results=1000))
        except Exception:  # the suggestion is a courtesy; the error stands without it
            return ""
        if not names:
            return "; the registry is empty: register a model first (see docs/own-model.md)"
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        close += [n for n in names if n.lower() == name.lower() and n not in close]
        if close:
            return "; did you mean " + " or ".join(repr(n) for n in close) + "? (`endpoints models list`)"
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        return f"; registered models: {shown}"

    def _versions_and_aliases(self, name: str) -> str:
        """``versions 1, 2; aliases champion (1), challenger (2)`` for an error message."""
        try:
            info = self.get_model(name, with_signature=False)
        except NotFound:
            return ""
        versions = ", ".join(v.version for v in info.versions) or "none"
        aliases = ", ".join(f"{a} ({v})" for a, v in sorted(info.aliases.items())) or "none"
        return f"; it has versions: {versions}; aliases: {aliases}"

    # --- resolving ------------------------------------------------------------------------
    def resolve(self, uri: str) -> ResolvedModel:
        """Pin ``uri`` to a concrete version; unknown model, version or alias is :class:`NotFound`."""
        from mlflow.exceptions import MlflowException

        if uri.startswith("models:/"):
            rest = uri[len("models:/"):]
            if "@" in rest:
                name, _, alias = rest.partition("@")
                self.get_model(name, with_signature=False)  # a clear error for an unknown model
                try:
                    mv = self.client.get_model_version_by_alias(name, alias)
                except MlflowException:
                    raise NotFound(f"model {name!r} has no alias {alias!r}{self._versions_and_aliases(name)}") from None
                return ResolvedModel(uri, f"models:/{name}/{mv.version}", name, str(mv.version))
            name, _, version = rest.partition("/")
            if not version:
                raise InvalidSpec(f"model URI {uri!r} needs a version or an alias (models:/name/1 or models:/name@alias)")
            self.get_model(name, with_signature=False)
            if version.lower() == "latest":
                versions = self.client.search_model_versions(f"name='{name}'")
                if not versions:
                    raise NotFound(f"model {name!r} has no versions")
                version = str(max(int(v.version) for v in versions))
            try:
                self.client.get_model_version(name, version)
            except MlflowException:
                raise NotFound(f"model {name!r} has no version {version!r}{self._versions_and_aliases(name)}") from None
            return ResolvedModel(uri, f"models:/{name}/{version}", name, version)
        if uri.startswith("runs:/"):
            return ResolvedModel(uri, uri)
        try:
            path = Path(uri.removeprefix("file://")).expanduser()
        except RuntimeError:  # "~someone/model" naming a user this machine does not have
            raise NotFound(f"model folder {uri!r} does not exist (cannot expand '~')") from None
        if not (path / "MLmodel").exists():
            raise NotFound(f"model folder {str(path)!r} does not exist or has no MLmodel file")
        return ResolvedModel(uri, str(path.resolve()))

    def signature(self, uri: str) -> Any:
        """The MLflow ModelSignature of a model URI (or None), read without loading the model."""
        import mlflow.models

        return mlflow.models.get_model_info(uri).signature

    def input_example(self, uri: str) -> Any:
        """The saved input example (a DataFrame for tabular models), or None."""
        import mlflow.models

        resolved = self.resolve(uri)
        model = mlflow.models.Model.load(resolved.local_path)
        try:
            return model.load_input_example(resolved.local_path)
        except Exception:
            return None
