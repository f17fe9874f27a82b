"""Train and register the demo models: ``churn`` v1/v2 and ``oj-sales`` v1.

scikit-learn models are saved with skops (MLflow's safe default).  skops refuses to load types
it was not told to trust, and MLflow only trusts a fixed list, so we record exactly the types
the saved model contains (computed by skops itself) as trusted: the model round-trips, and no
type outside it is ever trusted.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from ..home import Home
from ..registry import ensure_experiment
from .data import CHURN_FEATURES, OJ_FEATURES, churn_frame, oj_sales_frame

__all__ = ["register_demo_models", "log_sklearn_model", "ensure_experiment", "DEMO_MODELS"]

DEMO_MODELS = ("churn", "oj-sales")


def _trusted_types(model: Any) -> list[str]:
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def log_sklearn_model(
    model: Any, name: str, X: pd.DataFrame, *, registered_name: str | None = None,
    tags: dict[str, str] | None = None, params: dict[str, Any] | None = None,
) -> Any:
    """Log (and optionally register) a fitted scikit-learn model with signature and example."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    example = X.head(5)
    with warnings.catch_warnings():
        # MLflow hints, once per logged model, that integer columns cannot hold missing values;
        # the demo's data has none, and the same hint three times in `make demo` is noise.
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        signature = infer_signature(X, model.predict(X.head(50)))
    with mlflow.start_run(run_name=name) as run:
        if params:
            mlflow.log_params(params)
        info = mlflow.sklearn.log_model(
            model, name="model", signature=signature, input_example=example,
            registered_model_name=registered_name, skops_trusted_types=_trusted_types(model),
            serialization_format="skops",
        )
        if tags:
            mlflow.set_tags(tags)
    return info, run.info.run_id


def _churn_pipeline(estimator: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in CHURN_FEATURES if c != "region"]
    pre = ColumnTransformer([
        ("num", StandardScaler(), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
    ])
    return Pipeline([("pre", pre), ("clf", estimator)])


def register_demo_models(home: Home, force: bool = False) -> dict[str, list[str]]:
    """Register the demo models unless they exist; returns {model: [versions]}."""
    from mlflow import MlflowClient
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    ensure_experiment(home)
    client = MlflowClient(tracking_uri=home.tracking_uri, registry_uri=home.registry_uri)
    existing = {m.name for m in client.search_registered_models()}

    if force or "churn" not in existing:
        df = churn_frame()
        X, y = df[CHURN_FEATURES], df["churned"]
        v1 = _churn_pipeline(LogisticRegression(max_iter=500)).fit(X, y)
        v2 = _churn_pipeline(GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0)).fit(X, y)
        for model, alias, algo in ((v1, "champion", "logistic-regression"), (v2, "challenger", "gradient-boosting")):
            info, _ = log_sklearn_model(model, f"churn-{algo}", X, registered_name="churn",
                                        params={"algorithm": algo}, tags={"demo": "true"})
            client.set_registered_model_alias("churn", alias, str(info.registered_model_version))
            client.set_model_version_tag("churn", str(info.registered_model_version), "algorithm", algo)
        client.update_registered_model("churn", description="Customer churn classifier (demo).")

    if force or "oj-sales" not in existing:
        df = oj_sales_frame()
        X, y = df[OJ_FEATURES], df["sales"]
        pre = ColumnTransformer([("brand", OneHotEncoder(handle_unknown="ignore"), ["brand"])], remainder="passthrough")
        model = Pipeline([("pre", pre), ("reg", RandomForestRegressor(n_estimators=40, max_depth=10, random_state=0))]).fit(X, y)
        info, _ = log_sklearn_model(model, "oj-sales-forest", X, registered_name="oj-sales",
                                    params={"algorithm": "random-forest"}, tags={"demo": "true"})
        client.set_registered_model_alias("oj-sales", "production", str(info.registered_model_version))
        client.update_registered_model("oj-sales", description="Weekly orange-juice unit sales forecast (demo).")

    return {
        m.name: sorted(str(v.version) for v in client.search_model_versions(f"name='{m.name}'"))
        for m in client.search_registered_models() if m.name in DEMO_MODELS
    }
