"""Running several models under one protocol and tabulating them; cost benchmarks."""

import json
from pathlib import Path


def write_results(out_dir, stem, markdown, data):
    """``<out_dir>/<stem>.md`` (the table a person reads) and ``<stem>.json`` (the figures)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(markdown.rstrip("\n") + "\n")
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1, default=str))
    return out / f"{stem}.md"
