"""Request parsing and response formatting against MLflow's own serving functions, on real models."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from toolkit.demo.data import CHURN_FEATURES, OJ_FEATURES, churn_frame, oj_sales_frame
from toolkit.errors import InvalidInput, UnsupportedMediaType
from toolkit.home import Home
from toolkit.runtime.protocol import (
    TabularSchema,
    parse_request,
    predictions_body,
    split_predictions,
)
from toolkit.runtime.protocol.v2 import parse_v2_request, v2_metadata, v2_response
from toolkit.runtime.scorer import Scorer

JSON = "application/json"


@pytest.fixture(scope="module")
def scorers(demo_registry: Path) -> dict[str, Scorer]:
    """The demo models, each loaded once for the module."""
    from toolkit.registry import Registry

    reg = Registry(Home(demo_registry))
    out = {}
    for key, uri in (("churn1", "models:/churn/1"), ("churn2", "models:/churn/2"), ("oj", "models:/oj-sales/1")):
        out[key] = Scorer.load(reg.resolve(uri).local_path, name=key)
    return out


def _frame(key: str, n: int) -> pd.DataFrame:
    if key.startswith("churn"):
        return churn_frame(n=n, seed=99)[CHURN_FEATURES]
    return oj_sales_frame(weeks=1, stores=max(1, n // 3 + 1), seed=5)[OJ_FEATURES].head(n).reset_index(drop=True)


def _jsonable(df: pd.DataFrame) -> dict[str, Any]:
    return json.loads(df.to_json(orient="split", index=False, double_precision=15))


def _bodies(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    split = _jsonable(df)
    records = [dict(zip(split["columns"], row)) for row in split["data"]]
    columns = {c: [row[i] for row in split["data"]] for i, c in enumerate(split["columns"])}
    return {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs-columns": {"inputs": columns},
        "inputs-records": {"inputs": records},
        "input_data-split": {"input_data": split},
        "input_data-records": {"input_data": records},
        "input_data-rows": {"input_data": split["data"]},
        "input_data-columns": {"input_data": columns},
    }


def _mlflow_frame(body: dict[str, Any], scorer: Scorer) -> pd.DataFrame:
    """What `mlflow models serve` hands to the model: its parse, then pyfunc's enforcement."""
    from mlflow.models.utils import _enforce_schema
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    schema = scorer.signature.inputs
    data = infer_and_parse_data(body, schema)
    return _enforce_schema(data, schema)


@pytest.mark.parametrize("key", ["churn1", "churn2", "oj"])
@pytest.mark.parametrize("n", [1, 7])
def test_every_json_format_predicts_like_pyfunc(scorers: dict[str, Scorer], key: str, n: int) -> None:
    scorer = scorers[key]
    df = _frame(key, n)
    expected = scorer.model.predict(df)
    for name, body in _bodies(df).items():
        inp = scorer.parse(json.dumps(body).encode(), JSON)
        assert inp.enforced and inp.rows == n, name
        got = scorer.predict(inp)
        np.testing.assert_array_equal(got, expected, err_msg=name)
        assert json.loads(scorer.body(got)) == {"predictions": expected.tolist()}, name


@pytest.mark.parametrize("fmt", ["dataframe_split", "dataframe_records", "instances"])
def test_fast_frames_equal_mlflows_parse_and_enforce(scorers: dict[str, Scorer], fmt: str) -> None:
    for key in ("churn1", "oj"):
        scorer = scorers[key]
        body = _bodies(_frame(key, 5))[fmt]
        mine = scorer.parse(json.dumps(body).encode(), JSON).frame
        theirs = _mlflow_frame(body, scorer)
        pd.testing.assert_frame_equal(mine, theirs)


def test_nulls_in_float_and_string_columns_match_mlflow(scorers: dict[str, Scorer]) -> None:
    scorer = scorers["churn1"]
    split = _jsonable(_frame("churn1", 3))
    split["data"][1][4] = None   # monthly_spend: double -> NaN
    split["data"][2][7] = None   # region: string -> missing
    body = {"dataframe_split": split}
    mine = scorer.parse(json.dumps(body).encode(), JSON).frame
    pd.testing.assert_frame_equal(mine, _mlflow_frame(body, scorer))


def test_sklearn_fast_path_equals_pyfunc_on_many_rows(scorers: dict[str, Scorer]) -> None:
    for key in ("churn1", "churn2", "oj"):
        scorer = scorers[key]
        assert scorer._fast_predict is not None
        df = _frame(key, 300)
        inp = scorer.parse(json.dumps(_bodies(df)["dataframe_split"]).encode(), JSON)
        np.testing.assert_array_equal(scorer.predict(inp), scorer.model.predict(df))


def test_csv_and_parquet_predict_like_pyfunc(scorers: dict[str, Scorer]) -> None:
    for key in ("churn1", "oj"):
        scorer = scorers[key]
        df = _frame(key, 6)
        expected = scorer.model.predict(df)
        csv = df.to_csv(index=False).encode()
        np.testing.assert_array_equal(scorer.predict(scorer.parse(csv, "text/csv; charset=utf-8")), expected)
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        for ctype in ("application/vnd.apache.parquet", "application/parquet", "application/octet-stream"):
            np.testing.assert_array_equal(scorer.predict(scorer.parse(buf.getvalue(), ctype)), expected)


def test_params_without_a_params_schema_are_ignored_as_mlflow_does(scorers: dict[str, Scorer]) -> None:
    scorer = scorers["churn1"]
    body = {**_bodies(_frame("churn1", 2))["dataframe_split"], "params": {"threshold": 0.3}}
    inp = scorer.parse(json.dumps(body).encode(), JSON)
    assert inp.params is None
    np.testing.assert_array_equal(scorer.predict(inp), scorer.model.predict(_frame("churn1", 2)))
    # Scripts get them as sent; different params never share a batch.
    raw = parse_request(json.dumps(body).encode(), JSON, TabularSchema(None), allow_raw=True)
    assert raw.params == {"threshold": 0.3}
    fast = scorer.schema
    a = parse_request(json.dumps(body).encode(), JSON, fast, allow_raw=True)
    b = parse_request(json.dumps({**body, "params": {"threshold": 0.5}}).encode(), JSON, fast, allow_raw=True)
    assert a.batch_key != b.batch_key


# --- errors ------------------------------------------------------------------------------------


def _split_with(row_edit: dict[int, Any], drop: str | None = None) -> bytes:
    df = _frame("churn1", 2)
    if drop:
        df = df.drop(columns=[drop])
    split = _jsonable(df)
    for i, v in row_edit.items():
        split["data"][0][i] = v
    return json.dumps({"dataframe_split": split}).encode()


@pytest.mark.parametrize(
    "body, column, phrase",
    [
        (_split_with({}, drop="tenure_months"), "tenure_months", "missing required column"),
        (_split_with({0: "abc"}), "age", 'string "abc"'),
        (_split_with({4: "lots"}), "monthly_spend", 'string "lots"'),
        (_split_with({0: None}), "age", "cannot hold missing values"),
        (_split_with({0: 30.5}), "age", "not a whole number"),
        (_split_with({0: True}), "age", "boolean true"),
        (_split_with({7: 3}), "region", "number 3"),
        (json.dumps({"dataframe_records": [{"age": 1, "region": "x"}]}).encode(), "tenure_months", "missing required column"),
        (json.dumps({"inputs": {**{c: [1] for c in CHURN_FEATURES}, "region": ["north"], "age": ["x"]}}).encode(), "age", 'string "x"'),
    ],
)
def test_schema_errors_name_the_column(scorers: dict[str, Scorer], body: bytes, column: str, phrase: str) -> None:
    with pytest.raises(InvalidInput) as info:
        scorers["churn1"].parse(body, JSON)
    assert column in info.value.message and phrase in info.value.message
    assert info.value.details.get("column") == column
    assert info.value.status_code == 400


def test_csv_errors_name_the_column(scorers: dict[str, Scorer]) -> None:
    df = _frame("churn1", 2).astype({"age": object})
    df.loc[0, "age"] = "abc"
    with pytest.raises(InvalidInput, match="age"):
        scorers["churn1"].parse(df.to_csv(index=False).encode(), "text/csv")
    with pytest.raises(InvalidInput, match="region"):
        scorers["churn1"].parse(_frame("churn1", 2).drop(columns=["region"]).to_csv(index=False).encode(), "text/csv")


def test_integral_floats_are_accepted_in_integer_columns(scorers: dict[str, Scorer]) -> None:
    inp = scorers["churn1"].parse(_split_with({0: 30.0}), JSON)
    assert inp.frame["age"].dtype == np.int64 and inp.frame["age"].iloc[0] == 30


@pytest.mark.parametrize(
    "body, phrase",
    [
        (b'{"dataframe_split": {"columns": ["a"], "data": [[1]]', "line 1, column"),
        (b"", "empty"),
        (b'[1, 2]', "exactly one of"),
        (b'{"dataframe_splt": {}}', "exactly one of"),
        (b'{"dataframe_split": {"data": []}, "instances": []}', "got both"),
        (json.dumps({"dataframe_split": {"columns": CHURN_FEATURES, "data": []}}).encode(), "no rows"),
        (b'{"dataframe_split": {"columns": [], "data": []}}', "missing required column 'age'"),
        (b'{"dataframe_records": {"age": 1}}', "list of records"),
        (b'{"dataframe_split": {"data": [[1]], "params": 1}}', "may only hold"),
        (b'{"instances": [[1, 2]]}', "signature's column order"),
        (b'{"inputs": [{"age": 1}], "params": [1]}', "'params' must be an object"),
        (b'{"inputs": "\xff"}', "UTF-8"),
    ],
)
def test_malformed_bodies_are_invalid_input(scorers: dict[str, Scorer], body: bytes, phrase: str) -> None:
    with pytest.raises(InvalidInput) as info:
        scorers["churn1"].parse(body, JSON)
    assert phrase in info.value.message


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "application/json; charset=latin-1", "application/json; format=pandas-split"])
def test_unsupported_content_types(scorers: dict[str, Scorer], ctype: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        scorers["churn1"].parse(b"{}", ctype)
    assert info.value.status_code == 415


def test_missing_content_type_is_read_as_json(scorers: dict[str, Scorer]) -> None:
    assert scorers["churn1"].parse(_split_with({}), None).rows == 2


def test_scripts_get_raw_json_when_not_an_mlflow_format() -> None:
    schema = TabularSchema(None)
    assert parse_request(b'{"text": "hi"}', JSON, schema, allow_raw=True).data == {"text": "hi"}
    assert parse_request(b"[1, 2]", JSON, schema, allow_raw=True).raw
    df = parse_request(b'{"dataframe_records": [{"a": 1}]}', JSON, schema, allow_raw=True).frame
    assert isinstance(df, pd.DataFrame) and df["a"].tolist() == [1]


# --- output ------------------------------------------------------------------------------------


def test_predictions_serialize_numpy_and_pandas_like_mlflow() -> None:
    from mlflow.pyfunc.scoring_server import predictions_to_json

    values = [
        np.array([1, 2], dtype=np.int64),
        np.array([[0.1, 0.9]], dtype=np.float32),
        pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
        pd.Series([1.5, 2.5], name="p"),
        [np.int64(3), np.float32(0.5), np.bool_(True)],
        {"k": np.arange(2)},
        np.array(["a", None], dtype=object),
    ]
    for v in values:
        out = io.StringIO()
        predictions_to_json(v, out)
        assert json.loads(predictions_body(v)) == json.loads(out.getvalue()), v


def test_split_predictions() -> None:
    arr = np.arange(6)
    assert [p.tolist() for p in split_predictions(arr, [1, 3, 2])] == [[0], [1, 2, 3], [4, 5]]
    df = pd.DataFrame({"a": range(3)})
    assert [len(p) for p in split_predictions(df, [2, 1])] == [2, 1]
    assert split_predictions([1, 2, 3], [1, 2]) == [[1], [2, 3]]
    with pytest.raises(ValueError):
        split_predictions(arr, [2, 2])
    with pytest.raises(ValueError):
        split_predictions({"a": 1}, [1])


# --- V2 ----------------------------------------------------------------------------------------


def test_v2_columns_and_rows_predict_like_pyfunc(scorers: dict[str, Scorer]) -> None:
    scorer = scorers["churn1"]
    df = _frame("churn1", 4)
    expected = scorer.model.predict(df)
    split = _jsonable(df)
    by_column = {"id": "r1", "inputs": [
        {"name": c, "shape": [4], "datatype": "BYTES" if c == "region" else ("FP64" if c == "monthly_spend" else "INT64"),
         "data": [row[i] for row in split["data"]]} for i, c in enumerate(split["columns"])]}
    inp = parse_v2_request(json.dumps(by_column).encode(), scorer.schema)
    got = scorer.predict(inp)
    np.testing.assert_array_equal(got, expected)
    # Whole rows in one tensor need one datatype that fits every column: churn mixes integers,
    # a double and a string, so no V2 datatype can declare its rows.
    by_rows = {"inputs": [{"name": "input-0", "shape": [4, 8], "datatype": "BYTES", "data": split["data"]}]}
    with pytest.raises(InvalidInput, match="declared BYTES"):
        parse_v2_request(json.dumps(by_rows).encode(), scorer.schema)
    body, json_len = scorer.v2_body(got, "r1")
    assert json_len is None
    resp = json.loads(body)
    assert resp["id"] == "r1" and resp["model_name"] == "churn1"
    assert resp["outputs"] == [{"name": "predict", "shape": [4], "datatype": "INT64", "data": expected.tolist()}]


def test_v2_errors(scorers: dict[str, Scorer]) -> None:
    schema = scorers["churn1"].schema
    with pytest.raises(InvalidInput, match="inputs"):
        parse_v2_request(b'{"inputs": []}', schema)
    with pytest.raises(InvalidInput, match="shape"):
        parse_v2_request(b'{"inputs": [{"name": "age", "shape": [3], "datatype": "INT64", "data": [1]}]}', schema)
    with pytest.raises(InvalidInput, match="missing required column"):
        parse_v2_request(b'{"inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": [1]}]}', schema)


def test_v2_response_and_metadata_shapes(scorers: dict[str, Scorer]) -> None:
    out = v2_response(pd.DataFrame({"p0": [0.1, 0.2], "label": ["a", "b"]}), "m", "3")
    assert out["outputs"][0] == {"name": "p0", "shape": [2], "datatype": "FP64", "data": [0.1, 0.2]}
    assert out["outputs"][1]["datatype"] == "BYTES"
    assert v2_response(np.zeros((2, 3), dtype=np.float32), "m")["outputs"][0]["shape"] == [2, 3]
    meta = v2_metadata("churn", "1", scorers["churn1"].signature, "sklearn")
    assert meta["platform"] == "mlflow_sklearn"
    assert {"name": "region", "datatype": "BYTES", "shape": [-1]} in meta["inputs"]
    assert meta["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]}]
