"""Read one slice (a file or a row range of it) as the model expects it.

Columns and dtypes come from the model's input signature: only the signature's columns are read
(extra columns cost nothing), a missing column or a value of the wrong type is an error naming
the file and the column, and a file that is neither CSV nor Parquet is an error of that file
alone, never of the job.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import InvalidInput
from .inputs import CSV_SUFFIXES, PARQUET_SUFFIXES, Slice, open_file

__all__ = ["read_slice", "schema_columns", "PANDAS_DTYPES"]

# MLflow DataType name -> pandas dtype used to read and check a column.
PANDAS_DTYPES: dict[str, str] = {
    "boolean": "bool", "integer": "int32", "long": "int64", "float": "float32",
    "double": "float64", "string": "object", "binary": "object", "datetime": "datetime64[ns]",
}


def schema_columns(schema: Any) -> list[tuple[str, str | None]] | None:
    """[(column, mlflow type)] of a column-based input schema (a Schema or its ``to_dict()``)."""
    if schema is None:
        return None
    items = schema.to_dict() if hasattr(schema, "to_dict") else schema
    cols = []
    for item in items:
        name = item.get("name")
        if name is None or item.get("type") == "tensor":
            return None  # tensor or unnamed inputs: read the file as it is
        cols.append((str(name), item.get("type")))
    return cols or None


def read_slice(s: Slice, columns: list[tuple[str, str | None]] | None) -> pd.DataFrame:
    """The rows of ``s`` with exactly the signature's columns; :class:`InvalidInput` otherwise."""
    low = s.file.lower()
    try:
        if low.endswith(PARQUET_SUFFIXES):
            df = _read_parquet(s, columns)
        elif low.endswith(CSV_SUFFIXES):
            df = _read_csv(s, columns)
        else:
            suffix = "." + low.rsplit(".", 1)[-1] if "." in low.rsplit("/", 1)[-1] else "(none)"
            raise InvalidInput(
                f"{s.name}: unsupported file type {suffix}; batch jobs read CSV (.csv) and Parquet (.parquet) files"
            )
    except InvalidInput:
        raise
    except FileNotFoundError:
        raise InvalidInput(f"{s.name}: file not found ({s.file})") from None
    except Exception as err:  # the parser's own words, with the file named
        raise InvalidInput(f"{s.name}: cannot read: {type(err).__name__}: {err}") from None
    return _conform(df, columns, s.name)


def _read_csv(s: Slice, columns: list[tuple[str, str | None]] | None) -> pd.DataFrame:
    kw: dict[str, Any] = {}
    if columns:
        kw["usecols"] = [c for c, _ in columns]
        # Strings stay strings ("007" is not 7); numbers are checked by _conform.
        kw["dtype"] = {c: str for c, t in columns if t in ("string", "binary")}
    if s.start:
        kw["skiprows"] = range(1, s.start + 1)
    if s.stop is not None:
        kw["nrows"] = s.stop - s.start
    with open_file(s.file) as fh:
        try:
            return pd.read_csv(fh, compression=_compression(s.file), **kw)
        except ValueError as err:
            if "Usecols do not match" in str(err) and columns:
                with open_file(s.file) as again:
                    header = pd.read_csv(again, nrows=0, compression=_compression(s.file)).columns
                missing = [c for c, _ in columns if c not in header]
                raise InvalidInput(f"{s.name}: missing column(s) {', '.join(missing)} required by the model signature") from None
            raise


def _compression(path: str) -> str | None:
    low = path.lower()
    for ext, comp in ((".gz", "gzip"), (".bz2", "bz2"), (".zip", "zip"), (".xz", "xz")):
        if low.endswith(ext):
            return comp
    return None


def _read_parquet(s: Slice, columns: list[tuple[str, str | None]] | None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    with open_file(s.file) as fh:
        pf = pq.ParquetFile(fh)
        names = [c for c, _ in columns] if columns else None
        if names:
            have = set(pf.schema_arrow.names)
            missing = [c for c in names if c not in have]
            if missing:
                raise InvalidInput(f"{s.name}: missing column(s) {', '.join(missing)} required by the model signature")
        if s.whole:
            table = pf.read(columns=names)
        else:
            groups = s.row_groups if s.row_groups is not None else list(range(pf.metadata.num_row_groups))
            first = sum(pf.metadata.row_group(i).num_rows for i in range(groups[0])) if groups else 0
            table = pf.read_row_groups(groups, columns=names) if groups else pf.schema_arrow.empty_table()
            stop = s.stop if s.stop is not None else first + table.num_rows
            table = table.slice(s.start - first, stop - s.start)
        return table.to_pandas()


def _conform(df: pd.DataFrame, columns: list[tuple[str, str | None]] | None, name: str) -> pd.DataFrame:
    if not columns:
        return df.reset_index(drop=True)
    df = df[[c for c, _ in columns]]
    out = {}
    for col, typ in columns:
        series = df[col]
        want = PANDAS_DTYPES.get(typ or "")
        if want is None or want == "object" or str(series.dtype) == want:
            out[col] = series
            continue
        if want.startswith("int") and series.isna().any():
            first = int(series.isna().to_numpy().argmax())
            raise InvalidInput(f"{name}: column {col!r} ({typ}) has an empty value at row {first}")
        try:
            out[col] = pd.to_datetime(series) if want.startswith("datetime") else series.astype(want)
        except (ValueError, TypeError) as err:
            raise InvalidInput(f"{name}: column {col!r} cannot be read as {typ}: {err}") from None
    return pd.DataFrame(out).reset_index(drop=True)
