"""Input expansion, mini-batch planning and signature-aware reading (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from toolkit.batch.inputs import MiniBatch, Slice, display_names, expand_inputs, file_layout, plan_minibatches
from toolkit.batch.job import effective_deployment, new_job_id
from toolkit.batch.reader import read_slice, schema_columns
from toolkit.errors import InvalidInput, InvalidSpec
from toolkit.specs import BatchDeployment

OJ_SCHEMA = [
    {"type": "long", "name": "store"}, {"type": "string", "name": "brand"}, {"type": "long", "name": "week"},
    {"type": "double", "name": "price"}, {"type": "long", "name": "promotion"}, {"type": "double", "name": "temperature"},
]


def _frame(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({
        "store": range(start, start + n), "brand": ["007"] * n, "week": [1] * n,
        "price": [2.5] * n, "promotion": [0] * n, "temperature": [20.0] * n, "extra": ["x"] * n,
    })


def test_expand_folder_file_glob_and_url(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("b.csv", "a.csv", "sub/c.parquet", ".hidden.csv", "_SUCCESS"):
        (tmp_path / "d" / name).write_text("x\n1\n")
    files = expand_inputs(str(tmp_path / "d"))
    assert [Path(f).relative_to(tmp_path / "d").as_posix() for f in files] == ["a.csv", "b.csv", "sub/c.parquet"]
    assert expand_inputs(str(tmp_path / "d" / "b.csv")) == [str(tmp_path / "d" / "b.csv")]
    assert [Path(f).name for f in expand_inputs(str(tmp_path / "d" / "*.csv"))] == ["a.csv", "b.csv"]
    assert display_names(files) == ["a.csv", "b.csv", "sub/c.parquet"]

    fs = fsspec.filesystem("memory")
    fs.pipe("/jobin/x/2.csv", b"a\n1\n")
    fs.pipe("/jobin/x/1.csv", b"a\n1\n")
    assert expand_inputs("memory://jobin/x") == ["memory:///jobin/x/1.csv", "memory:///jobin/x/2.csv"]


@pytest.mark.parametrize("bad", ["does/not/exist", "nothing-*.csv", "memory://no/such/place"])
def test_missing_input_names_the_path(tmp_path: Path, bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput) as err:
        expand_inputs(bad)
    assert bad in err.value.message


def test_plan_by_files_and_by_rows(tmp_path: Path) -> None:
    files = []
    for i, n in enumerate((5, 12, 3)):
        p = tmp_path / f"f{i}.csv"
        _frame(n).to_csv(p, index=False)
        files.append(str(p))
    by_files = plan_minibatches(files, mini_batch_size=2)
    assert [len(mb.slices) for mb in by_files] == [2, 1]

    by_rows = plan_minibatches(files, mini_batch_size=10, mini_batch_rows=5)
    covered = [(Path(s.file).name, s.start, s.stop) for mb in by_rows for s in mb.slices]
    assert covered == [("f0.csv", 0, 5), ("f1.csv", 0, 5), ("f1.csv", 5, 10), ("f1.csv", 10, 12), ("f2.csv", 0, 3)]
    assert [mb.expected_rows for mb in by_rows] == [5, 5, 5, 5]
    assert MiniBatch.from_dict(by_rows[1].to_dict()) == by_rows[1]


def test_parquet_row_groups_and_row_ranges(tmp_path: Path) -> None:
    p = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pandas(_frame(100), preserve_index=False), p, row_group_size=10)
    assert file_layout(str(p)) == (100, [10] * 10)
    plan = plan_minibatches([str(p)], mini_batch_size=10, mini_batch_rows=25)
    # Whole row groups are packed: 20 rows (2 groups) per slice, never a group split in two.
    assert [(s.start, s.stop, s.row_groups) for mb in plan for s in mb.slices][:2] == [(0, 20, [0, 1]), (20, 40, [2, 3])]
    cols = schema_columns(OJ_SCHEMA)
    parts = [read_slice(s, cols) for mb in plan for s in mb.slices]
    assert pd.concat(parts).store.tolist() == list(range(100))

    # Groups larger than the requested rows: ranges inside groups.
    plan = plan_minibatches([str(p)], mini_batch_size=10, mini_batch_rows=7)
    parts = [read_slice(s, cols) for mb in plan for s in mb.slices]
    assert pd.concat(parts).store.tolist() == list(range(100))


def test_reader_uses_signature_and_names_bad_files(tmp_path: Path) -> None:
    p = tmp_path / "w.csv"
    _frame(30).to_csv(p, index=False)
    cols = schema_columns(OJ_SCHEMA)
    df = read_slice(Slice(str(p), "w.csv", 10, 20), cols)
    assert list(df.columns) == [c for c, _ in cols]           # extra column dropped
    assert df.store.tolist() == list(range(10, 20))            # the right rows
    assert df.brand.iloc[0] == "007" and str(df.store.dtype) == "int64"

    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInput, match=r"notes.txt: unsupported file type .txt"):
        read_slice(Slice(str(tmp_path / "notes.txt"), "notes.txt"), cols)
    _frame(3).drop(columns=["price"]).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(InvalidInput, match=r"m.csv: missing column\(s\) price"):
        read_slice(Slice(str(tmp_path / "m.csv"), "m.csv"), cols)
    bad = _frame(3)
    bad["price"] = ["1.0", "abc", "2"]
    bad.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InvalidInput, match=r"t.csv: column 'price' cannot be read as double"):
        read_slice(Slice(str(tmp_path / "t.csv"), "t.csv"), cols)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InvalidInput, match=r"broken.parquet: cannot read"):
        read_slice(Slice(str(tmp_path / "broken.parquet"), "broken.parquet"), cols)


def test_overrides_are_validated_like_the_spec() -> None:
    spec = BatchDeployment(name="blue", endpoint_name="oj-batch", model="models:/oj-sales/1").to_dict()
    dep = effective_deployment(spec, {"mini_batch_size": 3, "instance_count": 2, "timeout": 5, "output": "/x"})
    assert (dep.mini_batch_size, dep.resources.instance_count, dep.retry_settings.timeout) == (3, 2, 5)
    with pytest.raises(InvalidSpec, match="overrides.bogus"):
        effective_deployment(spec, {"bogus": 1})
    with pytest.raises(InvalidSpec, match="mini_batch_size"):
        effective_deployment(spec, {"mini_batch_size": 0})
    with pytest.raises(InvalidSpec, match="output_file_name"):
        effective_deployment(spec, {"output_file_name": "out.json"})
    assert new_job_id("oj-batch").startswith("oj-batch-")
