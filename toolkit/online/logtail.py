"""Reading instance logs: the last lines (``get-logs``) and byte-offset chunks a UI can follow.

Instance logs are opened in append mode, so a byte offset stays valid for as long as the file
lives; a file shorter than the offset was replaced, and reading starts again from its beginning.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["tail_lines", "read_chunk", "text_since", "MAX_CHUNK_BYTES"]

MAX_CHUNK_BYTES = 1 << 20


def tail_lines(path: Path, lines: int) -> str:
    """The last ``lines`` lines, reading from the end (instance logs can grow large)."""
    if lines <= 0:
        return ""
    block, data = 8192, b""
    try:
        with open(path, "rb") as fh:
            pos = fh.seek(0, 2)
            while pos > 0 and data.count(b"\n") <= lines:
                step = min(block, pos)
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
    except OSError as err:
        return f"(cannot read {path.name}: {err.strerror})"
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _cut_char(data: bytes) -> int:
    """How many bytes at the end of ``data`` are an incomplete multi-byte character (0 if none)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:            # ASCII: nothing is cut
            return 0
        if byte >= 0xC0:           # a lead byte: complete if its sequence fits in what follows it
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return 0 if back >= need else back
    return 0


def read_chunk(path: Path, offset: int | None, max_bytes: int) -> tuple[str, int]:
    """(text, next offset) of ``path``: from ``offset`` up to ``max_bytes`` further, or, with
    ``offset=None``, the last ``max_bytes`` starting at a line boundary.  A chunk never ends inside
    a multi-byte character.  A missing file reads as empty at offset 0."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            if offset is None:
                start = max(0, size - max_bytes)
            else:
                start = offset if offset <= size else 0
            fh.seek(start)
            data = fh.read(min(max_bytes, size - start))
            cut = _cut_char(data)
            if cut and cut == len(data):
                data += fh.read(4 - cut)   # a chunk smaller than one character: finish the character
                cut = _cut_char(data)
            if cut:
                data = data[:-cut]         # the rest of the character comes with the next read
    except FileNotFoundError:
        return "", 0
    except OSError as err:
        return f"(cannot read {path.name}: {err.strerror})\n", offset or 0
    if offset is None and start > 0:
        # a tail opens at the start of a line, not halfway through one
        nl = data.find(b"\n")
        if 0 <= nl < len(data) - 1:
            data, start = data[nl + 1:], start + nl + 1
    return data.decode("utf-8", "replace"), start + len(data)


def text_since(path: Path, offset: int, limit: int = 65536) -> str:
    """What was written to ``path`` after byte ``offset``, at most its last ``limit`` bytes ("" when unreadable)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(offset, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
