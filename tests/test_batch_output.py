"""Finalizing: parts merged in order into one file, by kernel copy or by the Python fallback."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from toolkit.batch.output import merge_parts


def write_parts(folder: Path, sizes: list[int]) -> tuple[list[Path], pd.DataFrame]:
    folder.mkdir()
    parts, frames = [], []
    for i, n in enumerate(sizes):
        df = pd.DataFrame({"file_name": [f"f{i}.csv"] * n, "row": np.arange(n), "prediction": np.linspace(0, 1, n)})
        path = folder / f"part-{i:06d}.csv"
        pacsv.write_csv(pa.Table.from_pandas(df, preserve_index=False), path)
        parts.append(path)
        frames.append(df)
    return parts, pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("kernel_copy", [True, False], ids=["copy_file_range", "python-copy"])
def test_csv_parts_merge_in_order_with_one_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_copy: bool) -> None:
    if not kernel_copy:
        def refuse(*args: object) -> int:
            raise OSError(18, "Invalid cross-device link")
        monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    # A part far larger than one copy call, an empty part (header only) and a one-row part.
    parts, want = write_parts(tmp_path / "parts", [70_000, 0, 1, 1234])
    target = tmp_path / "out" / "predictions.csv"
    assert merge_parts(parts, target) == len(want)
    got = pd.read_csv(target)
    assert list(got.columns) == ["file_name", "row", "prediction"]
    assert got.file_name.tolist() == want.file_name.tolist() and got.row.tolist() == want.row.tolist()
    assert np.allclose(got.prediction, want.prediction)
    assert target.read_bytes().count(b'"file_name"') == 1
    assert not list(target.parent.glob(".*.tmp"))


def test_no_parts_gives_a_header_only_file(tmp_path: Path) -> None:
    target = tmp_path / "predictions.csv"
    assert merge_parts([], target) == 0
    assert target.read_text().startswith('"file_name","row"')
