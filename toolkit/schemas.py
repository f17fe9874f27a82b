"""Export the JSON Schemas of the specs: ``python -m toolkit.schemas docs/schemas``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .specs import KINDS

__all__ = ["write_schemas"]


def write_schemas(folder: str | Path) -> list[Path]:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, cls in KINDS.items():
        schema = cls.model_json_schema()
        schema["$id"] = f"{kind}.schema.json"
        path = out / f"{kind}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_schemas(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas"):
        print(p)
