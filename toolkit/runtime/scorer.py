"""A deployment's model, loaded: parse a body, predict, format the answer.

Two kinds of deployment:

* an MLflow model folder, loaded with ``mlflow.pyfunc.load_model``.  For the ``mlflow.sklearn``
  flavor, input that the protocol already enforced against the signature goes straight to the
  unwrapped estimator's predict function (the one the pyfunc wrapper would call, honouring
  ``pyfunc_predict_fn``): pyfunc's own wrapper would only enforce the schema a second time and
  then make the same call, so the result is identical (tested) and ~0.5 ms cheaper per call.
* a scoring script (``code_configuration``), Azure style: a ``.py`` file defining ``init()``
  (optional, called once) and ``run(data)`` (or ``run(data, params)``).  Before ``init`` the
  model folder is exported as ``AZUREML_MODEL_DIR`` (Azure's name) and ``ENDPOINTS_MODEL_DIR``,
  and the code folder is put on ``sys.path``.  ``run`` receives:

  - a pandas DataFrame for the MLflow JSON formats, Azure's ``input_data``, CSV and Parquet,
    built as MLflow builds it without a signature (the script owns its input, so the model's
    signature is not enforced here; a pyfunc model the script calls still enforces it);
  - the decoded JSON value as is when the body is JSON but none of those formats.

  ``run`` may return a dict (sent as the response body as is) or anything else (sent as
  ``{"predictions": <value>}``, DataFrames as records, arrays as lists, as MLflow does).

Concurrent requests are coalesced into one predict call by :mod:`.batcher`.
"""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import InvalidInput, ModelError, ToolkitError
from .protocol import ParsedInput, TabularSchema, dumps, parse_request, predictions_body
from .protocol.v2 import OutputRequest, parse_v2_request, v2_body, v2_metadata
from .scripts import load_scoring_script

__all__ = ["Scorer", "model_error"]

_MAX_MESSAGE = 2000


def model_error(err: BaseException, who: str = "the model") -> ToolkitError:
    """What the model raised, as the error the caller sees (schema failures are the caller's)."""
    if isinstance(err, ToolkitError):
        return err
    msg = getattr(err, "message", None) or str(err) or repr(err)
    if len(msg) > _MAX_MESSAGE:
        msg = msg[:_MAX_MESSAGE] + "..."
    if getattr(err, "error_class", None) == "SCHEMA_ENFORCEMENT_FAILED" or "Failed to enforce schema" in msg:
        return InvalidInput(msg)
    return ModelError(f"{who} raised {type(err).__name__}: {msg}", details={"exception": type(err).__name__})


class Scorer:
    """One loaded deployment.  ``parse*`` run on the event loop; ``predict`` in a worker thread."""

    def __init__(
        self, *, name: str, version: str | None, signature: Any | None, input_example: Any = None,
        model: Any = None, run: Callable[..., Any] | None = None, flavor: str = "python_function",
        load_seconds: float = 0.0,
    ) -> None:
        self.name = name
        self.version = version
        self.signature = signature
        self.input_example = input_example
        self.model = model
        self.flavor = flavor
        self.load_seconds = load_seconds
        # A scoring script owns its input (it often preprocesses before the model sees anything),
        # so its frames are built as MLflow builds them without a signature: no enforcement.
        self.schema = TabularSchema(None) if run is not None else TabularSchema.from_signature(signature)
        self._run = run
        self._run_takes_params = False
        if run is not None:
            ps = inspect.signature(run).parameters
            self._run_takes_params = "params" in ps or any(p.kind is p.VAR_KEYWORD for p in ps.values())
        self._fast_predict: Callable[[Any], Any] | None = None
        if model is not None and getattr(model, "loader_module", None) == "mlflow.sklearn":
            predict_fn = model.metadata.flavors.get("python_function", {}).get("predict_fn", "predict")
            try:
                self._fast_predict = getattr(model.get_raw_model(), predict_fn)
            except Exception:  # no raw model or no such function: pyfunc's path only
                self._fast_predict = None

    # --- loading -------------------------------------------------------------------------
    @classmethod
    def load(
        cls, model_path: str | os.PathLike[str], *, code: str | None = None, scoring_script: str | None = None,
        name: str | None = None, version: str | None = None,
    ) -> "Scorer":
        """Load a model folder (and the scoring script, if given); failures are :class:`ModelError`."""
        import mlflow.models

        t0 = time.perf_counter()
        path = Path(model_path)
        name = name or path.name
        mlmodel = path / "MLmodel"
        if scoring_script:
            meta = None
            if mlmodel.exists():
                try:
                    meta = mlflow.models.Model.load(str(mlmodel))
                except Exception as err:
                    raise ModelError(f"cannot read {mlmodel}: {err}") from err
            run = _load_script(path, code, scoring_script)
            example = _input_example(meta, path) if meta is not None else None
            return cls(name=name, version=version, signature=getattr(meta, "signature", None), input_example=example,
                       run=run, flavor="scoring_script", load_seconds=time.perf_counter() - t0)
        if not mlmodel.exists():
            raise ModelError(f"{path} is not an MLflow model folder (no MLmodel file)")
        try:
            import mlflow.pyfunc

            model = mlflow.pyfunc.load_model(str(path))
        except Exception as err:
            raise ModelError(f"cannot load the MLflow model at {path}: {type(err).__name__}: {err}") from err
        meta = model.metadata
        flavor = next((f for f in meta.flavors if f != "python_function"), "python_function")
        return cls(name=name, version=version, signature=meta.signature, input_example=_input_example(meta, path),
                   model=model, flavor=flavor, load_seconds=time.perf_counter() - t0)

    # --- the request path ------------------------------------------------------------------
    @property
    def is_script(self) -> bool:
        return self._run is not None

    @property
    def batchable(self) -> bool:
        """Scripts are never batched: their output need not have one entry per row."""
        return self._run is None

    def parse(self, body: bytes, content_type: str | None) -> ParsedInput:
        return parse_request(body, content_type, self.schema, allow_raw=self.is_script)

    def parse_v2(self, body: bytes, header_len: int | None = None) -> ParsedInput:
        return parse_v2_request(body, self.schema, header_len)

    def predict(self, inp: ParsedInput) -> Any:
        """Run the model (blocking); errors come out as InvalidInput or ModelError."""
        data = inp.frame
        try:
            if self._run is not None:
                if self._run_takes_params:
                    return self._run(data, params=inp.params)
                return self._run(data)
            if inp.enforced and self._fast_predict is not None and not inp.params:
                return self._fast_predict(data)
            return self.model.predict(data, params=inp.params)
        except Exception as err:
            raise model_error(err, "the scoring script" if self._run is not None else "the model") from None

    def body(self, preds: Any) -> bytes:
        """The JSON response body of one request's output."""
        if self._run is not None and isinstance(preds, dict):
            return dumps(preds)
        return predictions_body(preds)

    def v2_body(self, preds: Any, request_id: str | None = None,
                outputs: OutputRequest | None = None) -> tuple[bytes, int | None]:
        """The V2 response body, and the JSON header's length when binary outputs follow it."""
        if self._run is not None and isinstance(preds, dict) and "outputs" in preds:
            return dumps(preds), None
        return v2_body(preds, self.name, self.version, request_id, outputs)

    def v2_metadata(self) -> dict[str, Any]:
        return v2_metadata(self.name, self.version, self.signature, self.flavor)


def _input_example(meta: Any, path: Path) -> Any:
    try:
        return meta.load_input_example(str(path))
    except Exception:
        return None


def _load_script(model_dir: Path, code: str | None, scoring_script: str) -> Callable[..., Any]:
    script = Path(scoring_script)
    if code and not script.is_absolute():
        script = Path(code) / script
    return load_scoring_script(script, model_dir).run
