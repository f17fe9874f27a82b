"""What a job leaves on disk: the predictions file, the summary, the overview and error logs.

Finalizing streams the part files in mini-batch order into one ``predictions.csv|.parquet``
(constant memory, whatever the input size) under a temporary name and renames it, so a host that
dies while finalizing simply finalizes again.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

__all__ = ["write_json", "write_error_log", "merge_parts", "write_part_bytes", "read_outputs"]


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def write_error_log(folder: Path, name: str, error: str, idx: int, attempts: int) -> Path:
    """One log per failed file, named after it (path separators made safe)."""
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "file"
    path = folder / f"{safe}.log"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with path.open("a") as fh:
        fh.write(f"{stamp} file={name} minibatch={idx} attempts={attempts}\n{error}\n")
    return path


def write_part_bytes(path: Path, data: bytes) -> None:
    """A part returned by a remote worker, written with the same atomic rename a worker uses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.host.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def merge_parts(parts: list[Path], target: Path) -> int:
    """Concatenate ``parts`` (in order) into ``target`` (.csv or .parquet); returns the rows."""
    if target.suffix != ".parquet" and all(p.suffix == ".csv" for p in parts):
        return _concat_csv(parts, target)
    return _merge_tables(parts, target)


def _concat_csv(parts: list[Path], target: Path) -> int:
    """CSV parts (each with the header line) to one CSV: a byte copy, the header kept once.

    Parts are written by pyarrow, which quotes strings, so a record never spans lines and the
    row count is the line count.  The bytes move inside the kernel (``copy_file_range``), and
    the lines are counted on a read-only map of each part: measured on the benchmark's 5M rows
    (220 MB), 0.23-0.32 s instead of 0.50-0.77 s for reading and writing through Python.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    rows = 0
    try:
        with open(tmp, "wb") as out:
            for i, part in enumerate(parts):
                with open(part, "rb") as fh:
                    header = fh.readline()
                    if i == 0:
                        out.write(header)
                        out.flush()  # the kernel copy below writes at the file's offset
                    size = os.fstat(fh.fileno()).st_size
                    rows += _count_lines(fh, len(header), size)
                    _copy_range(fh, out, len(header), size - len(header))
            if not parts:
                out.write(b'"file_name","row"\n')
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return rows


def _count_lines(fh: Any, start: int, size: int) -> int:
    if size <= start:
        return 0
    import mmap

    import numpy as np

    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        view = np.frombuffer(m, dtype=np.uint8)
        n = int(np.count_nonzero(view[start:] == 10))
        del view  # the map cannot close while an array still points into it
    return n


def _copy_range(src: Any, dst: Any, offset: int, length: int) -> None:
    """Append ``length`` bytes of ``src`` from ``offset`` to ``dst``, in the kernel when it can."""
    copy = getattr(os, "copy_file_range", None)
    while length > 0 and copy is not None:
        try:
            n = copy(src.fileno(), dst.fileno(), length, offset)
        except OSError:  # another filesystem on an old kernel, or no support: copy in Python
            break
        if n == 0:
            break
        offset += n
        length -= n
    if length > 0:
        src.seek(offset)
        while length > 0 and (block := src.read(min(length, 1 << 22))):
            dst.write(block)
            length -= len(block)
        dst.flush()


def _merge_tables(parts: list[Path], target: Path) -> int:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    rows = 0
    parquet = target.suffix == ".parquet"
    writer: Any = None
    schema: Any = None
    try:
        with open(tmp, "wb") as fh:
            for part in parts:
                for table in _tables(part):
                    # file_name is dictionary-encoded in parts; plain strings in the output.
                    table = table.cast(pa.schema([
                        pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                        for f in table.schema
                    ]))
                    rows += table.num_rows
                    if parquet:
                        if writer is None:
                            schema = table.schema.remove_metadata()
                            writer = pq.ParquetWriter(fh, schema)
                        writer.write_table(table.cast(schema) if table.schema != schema else table)
                    else:
                        pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=writer is None))
                        writer = writer or True
            if parquet:
                if writer is None:
                    pq.write_table(pa.table({"file_name": pa.array([], pa.string()), "row": pa.array([], pa.int64())}), fh)
                else:
                    writer.close()
            elif writer is None:
                fh.write(b'"file_name","row"\n')
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return rows


def _tables(part: Path) -> Any:
    if part.suffix == ".csv":
        import pyarrow.csv as pacsv

        yield pacsv.read_csv(part)
        return
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(part)
    for i in range(pf.metadata.num_row_groups):
        yield pf.read_row_group(i)


def read_outputs(path: Path) -> Any:
    """The predictions file as a DataFrame (what ``job.outputs()`` returns)."""
    import pandas as pd

    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)
