"""From what the user typed (folder, file, glob, fsspec URL) to an ordered list of mini-batches.

Files are ordered by path, and that order is the output order.  A mini-batch is a list of
slices (a file, or a row range of one); ``mini_batch_size`` counts files as in Azure, and
``mini_batch_rows`` splits large files so that no single huge file is scored (and held in
memory) in one piece.  Parquet files are split on row-group boundaries where the groups are no
larger than the requested rows (reading a range then reads only its groups); CSV files by line.
"""

from __future__ import annotations

import glob as globlib
import os
import posixpath
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import InvalidInput

__all__ = [
    "Slice", "MiniBatch", "expand_inputs", "display_names", "plan_minibatches", "file_layout",
    "is_url", "open_file", "require_readable", "CSV_SUFFIXES", "PARQUET_SUFFIXES",
]

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_GLOB_CHARS = set("*?[")


@dataclass
class Slice:
    """Rows ``[start, stop)`` of ``file`` (``stop`` None: to the end); ``name`` is what the output shows."""

    file: str
    name: str
    start: int = 0
    stop: int | None = None
    # Parquet row groups covering the range (None: read by rows / whole file).
    row_groups: list[int] | None = None

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.stop is None


@dataclass
class MiniBatch:
    idx: int
    slices: list[Slice] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.slices:
            seen.setdefault(s.file, None)
        return list(seen)

    @property
    def expected_rows(self) -> int | None:
        if any(s.stop is None for s in self.slices):
            return None
        return sum(int(s.stop) - s.start for s in self.slices)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"idx": self.idx, "slices": [asdict(s) for s in self.slices]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MiniBatch":
        return cls(d["idx"], [Slice(**s) for s in d["slices"]])


def is_url(value: str) -> bool:
    return "://" in value and not value.startswith("file://")


def open_file(path: str, mode: str = "rb") -> Any:
    """Open a local path or an fsspec URL (the worker side of ``expand_inputs``)."""
    if is_url(path):
        import fsspec

        return fsspec.open(path, mode).open()
    return open(path.removeprefix("file://"), mode)


def _visible(rel: str) -> bool:
    # Dotfiles and Spark/Hadoop markers (_SUCCESS, _committed_...) are not data.
    return not any(part.startswith((".", "_")) for part in rel.replace("\\", "/").split("/") if part)


def expand_inputs(inputs: str) -> list[str]:
    """Every input file, sorted by path; :class:`InvalidInput` naming the path if there is none."""
    if not isinstance(inputs, str) or not inputs.strip():
        raise InvalidInput("input: give a folder, a file, a glob or an fsspec URL")
    if is_url(inputs):
        return _expand_url(inputs)
    raw = inputs.removeprefix("file://")
    try:
        path = Path(raw).expanduser()
    except RuntimeError:  # "~someone/..." naming a user this machine does not have
        raise InvalidInput(f"input {inputs!r} does not exist (cannot expand '~')") from None
    if _GLOB_CHARS & set(raw):
        found = [p for p in globlib.glob(str(path), recursive=True) if os.path.isfile(p)]
        files = sorted(str(Path(p).resolve()) for p in found)
        if not files:
            raise InvalidInput(f"input {inputs!r} matches no files")
        return files
    if path.is_dir():
        files = sorted(
            str(p.resolve()) for p in path.rglob("*")
            if p.is_file() and _visible(str(p.relative_to(path)))
        )
        if not files:
            raise InvalidInput(f"input folder {inputs!r} holds no files")
        return files
    if path.is_file():
        return [str(path.resolve())]
    raise InvalidInput(f"input {inputs!r} does not exist")


def _expand_url(url: str) -> list[str]:
    import fsspec.core

    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as err:
        raise InvalidInput(f"input {url!r}: {err}") from None
    try:
        if _GLOB_CHARS & set(root):
            paths = [p for p in fs.glob(root) if fs.isfile(p)]
        elif fs.isdir(root):
            base = root.rstrip("/")
            paths = [p for p in fs.find(root) if _visible(posixpath.relpath(p, base))]
        elif fs.isfile(root):
            paths = [root]
        else:
            raise InvalidInput(f"input {url!r} does not exist")
    except InvalidInput:
        raise
    except Exception as err:  # the filesystem's own error (permissions, network) named
        raise InvalidInput(f"input {url!r} cannot be listed: {err}") from None
    if not paths:
        raise InvalidInput(f"input {url!r} matches no files")
    return sorted(fs.unstrip_protocol(p) for p in paths)


def display_names(files: list[str]) -> list[str]:
    """The ``file_name`` column: paths relative to the inputs' common folder (unique, short)."""
    if len(files) == 1:
        return [posixpath.basename(files[0].rstrip("/"))]
    bare = [f.split("://", 1)[-1] for f in files]
    try:
        base = posixpath.commonpath(bare)
    except ValueError:  # absolute and relative paths mixed: keep them whole
        base = ""
    if base in bare:  # commonpath of a single-file prefix; never the file itself
        base = posixpath.dirname(base)
    return [posixpath.relpath(b, base) if base else b for b in bare]


def _kind(path: str) -> str:
    low = path.lower()
    if low.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if low.endswith(CSV_SUFFIXES):
        return "csv"
    return "other"


def require_readable(files: list[str], inputs: str) -> None:
    """Refuse at submit a job none of whose files the built-in reader can read.

    Without a scoring script only CSV and Parquet files are scored; a job over, say, only
    ``.json`` files would fail every file after queuing and starting workers.  A mix is allowed:
    the others get a per-file error, as documented.
    """
    if any(_kind(f) != "other" for f in files):
        return
    suffixes = sorted({(posixpath.splitext(f)[1] or "(no extension)").lower() for f in files})
    raise InvalidInput(
        f"input {inputs!r}: none of its {len(files)} file(s) is CSV or Parquet (found {', '.join(suffixes)}); "
        f"give .csv or .parquet files, or use a deployment with a scoring script "
        f"(code_configuration) that reads this type")


def file_layout(path: str) -> tuple[int, list[int]] | None:
    """(rows, rows per Parquet row group) or (rows, []) for CSV; None when it cannot be told.

    An unreadable file gets no layout and is then planned whole, so its error is reported once
    per file by the worker that reads it (not as a planning failure of the whole job).
    """
    try:
        kind = _kind(path)
        if kind == "parquet":
            import pyarrow.parquet as pq

            with open_file(path) as fh:
                meta = pq.ParquetFile(fh).metadata
                return meta.num_rows, [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        if kind == "csv" and path.lower().endswith(".csv"):
            return _csv_rows(path), []
    except Exception:
        return None
    return None


def _csv_rows(path: str) -> int:
    # Count line ends in binary blocks: cheap and constant memory.  A CSV with quoted newlines
    # inside values would be split mid-record; such files should not use mini_batch_rows.
    lines, last = 0, b"\n"
    with open_file(path) as fh:
        while block := fh.read(1 << 22):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(0, lines - 1)  # the header


def plan_minibatches(
    files: list[str], mini_batch_size: int, mini_batch_rows: int | None = None,
    layout: Callable[[str], tuple[int, list[int]] | None] = file_layout,
) -> list[MiniBatch]:
    """Split ``files`` (in order) into mini-batches of at most ``mini_batch_size`` files, and,
    with ``mini_batch_rows``, of about that many rows (large files become several slices)."""
    names = display_names(files)
    batches: list[MiniBatch] = []
    if not mini_batch_rows:
        for i in range(0, len(files), mini_batch_size):
            chunk = list(zip(files[i:i + mini_batch_size], names[i:i + mini_batch_size]))
            batches.append(MiniBatch(len(batches), [Slice(f, n) for f, n in chunk]))
        return batches

    current: list[Slice] = []
    rows_in, files_in = 0, 0

    def close() -> None:
        nonlocal current, rows_in, files_in
        if current:
            batches.append(MiniBatch(len(batches), current))
        current, rows_in, files_in = [], 0, 0

    for f, name in zip(files, names):
        info = layout(f)
        if info is None:  # unknown size: a mini-batch of its own
            close()
            current.append(Slice(f, name))
            close()
            continue
        total, groups = info
        for s in _slices(f, name, total, groups, mini_batch_rows):
            n = int(s.stop or 0) - s.start
            if current and (rows_in + n > mini_batch_rows or files_in >= mini_batch_size):
                close()
            current.append(s)
            rows_in += n
            files_in += 1
    close()
    return batches


def _slices(f: str, name: str, total: int, groups: list[int], rows: int) -> Iterable[Slice]:
    if total == 0:
        yield Slice(f, name, 0, 0)
        return
    if groups and max(groups) <= rows:
        # Pack whole row groups: each slice reads exactly the groups it needs.
        start, acc, idxs = 0, 0, []
        for gi, g in enumerate(groups):
            if idxs and acc + g > rows:
                yield Slice(f, name, start, start + acc, idxs)
                start, acc, idxs = start + acc, 0, []
            idxs.append(gi)
            acc += g
        if idxs:
            yield Slice(f, name, start, start + acc, idxs)
        return
    offsets = [0]
    for g in groups:
        offsets.append(offsets[-1] + g)
    for start in range(0, total, rows):
        stop = min(total, start + rows)
        covering = [gi for gi in range(len(groups)) if offsets[gi] < stop and offsets[gi + 1] > start] if groups else None
        yield Slice(f, name, start, stop, covering)
