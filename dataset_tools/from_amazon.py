"""Raw Amazon review data (2014 and 2018 releases) -> RecBole atomic ``.inter`` and ``.item``.

Reviews: one record per line, ``reviewerID``, ``asin``, ``overall``, ``unixReviewTime``
(strict JSON in both releases). Metadata: ``asin``, ``title``, ``brand``, ``description``
(a string in 2014, a list in 2018), ``categories`` (2014: list of lists) or ``category``
(2018: list), images as ``imUrl`` (2014) or ``imageURLHighRes`` / ``image`` lists (2018);
2014 metadata lines are Python literals, not JSON. Plain or ``.gz`` files.

A line that cannot be read is skipped and counted (the first few are named), never a crash
that loses the rest. Images come from a local folder keyed by ASIN, or are downloaded
(:mod:`dataset_tools.download`); an item without an image keeps working with text only.
"""

import ast
import gzip
import html
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dataset_tools.atomic import image_problem, write_atomic

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")
ITEM_FIELDS = [("item_id", "token"), ("title", "token_seq"), ("categories", "token_seq"),
               ("brand", "token_seq"), ("description", "token_seq"), ("image", "token")]
INTER_FIELDS = [("user_id", "token"), ("item_id", "token"), ("rating", "float"),
                ("timestamp", "float")]


@dataclass
class ConversionReport:
    lines: Counter = field(default_factory=Counter)
    broken: Counter = field(default_factory=Counter)
    examples: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    truncated: dict = field(default_factory=dict)  # file -> where it ended

    def skip(self, path, lineno, why):
        self.broken[str(path)] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{path}:{lineno}: {why}; line skipped")

    def summary(self):
        parts = [f"{Path(p).name}: {self.lines[p]} lines, {self.broken[p]} skipped"
                 + (f", {self.truncated[p]}" if p in self.truncated else "") for p in self.lines]
        return "; ".join(parts) + "; " + ", ".join(f"{k} {v}" for k, v in self.counts.items())


def read_records(path, report):
    """Yield ``(line_number, dict)`` from a JSON-lines or Python-literal-lines file.

    A line whose bytes are not UTF-8 is skipped and counted (never read with U+FFFD in its
    ids); a ``.gz`` cut short ends the file there, recorded in ``report.truncated``."""
    opener = gzip.open if str(path).endswith(".gz") else open
    lineno = 0
    with opener(path, "rb") as handle:
        try:
            for lineno, raw in enumerate(handle, start=1):
                report.lines[str(path)] += 1
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError as error:
                    report.skip(path, lineno, f"bytes that are not UTF-8 at byte {error.start} "
                                "(re-encode the file as UTF-8)")
                    continue
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    try:
                        record = ast.literal_eval(line)
                    except (ValueError, SyntaxError, MemoryError, RecursionError):
                        report.skip(path, lineno, "neither JSON nor a Python literal")
                        continue
                if not isinstance(record, dict):
                    report.skip(path, lineno, "not a record")
                    continue
                yield lineno, record
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            report.truncated[str(path)] = f"cut short after line {lineno} ({type(error).__name__})"


def clean_text(value, max_words=None):
    """One line of plain words: lists flattened, HTML tags and entities removed."""
    if isinstance(value, (list, tuple)):
        value = " ".join(clean_text(v) for v in value)
    text = html.unescape(re.sub(r"<[^>]+>", " ", str(value or "")))
    words = text.split()
    return " ".join(words[:max_words] if max_words else words)


def _categories(record):
    cats = record.get("categories") or record.get("category") or []
    flat = []
    for entry in cats:
        for c in (entry if isinstance(entry, (list, tuple)) else [entry]):
            c = clean_text(c)
            if c and c not in flat:
                flat.append(c)
    return " ".join(flat)


def image_url(record):
    for key in ("imageURLHighRes", "image", "imUrl"):
        value = record.get(key)
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, str) and v.strip()), None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def kcore(interactions, k):
    """Keep interactions whose user and item both have at least ``k`` (repeated until stable)."""
    while k > 1:
        users = Counter(u for u, *_ in interactions)
        items = Counter(i for _, i, *_ in interactions)
        kept = [r for r in interactions if users[r[0]] >= k and items[r[1]] >= k]
        if len(kept) == len(interactions):
            break
        interactions = kept
    return interactions


def _local_image(images_dir, asin):
    for suffix in IMAGE_SUFFIXES:
        path = Path(images_dir) / f"{asin}{suffix}"
        if path.is_file():
            return path
    return None


def convert(reviews, meta, out_dir, name, images_dir=None, download_images=False, k=0,
            max_description_words=64, workers=8, timeout=10.0, retries=3, progress=True):
    """Write ``<out_dir>/<name>.inter`` and ``.item``; returns a :class:`ConversionReport`."""
    out_dir = Path(out_dir)
    if images_dir and not Path(images_dir).is_dir():
        raise ValueError(f"--images {images_dir}: no such folder (give the folder of <asin>.jpg "
                         "files, or leave it out)")
    report = ConversionReport()
    interactions = []
    for lineno, r in read_records(reviews, report):
        try:
            interactions.append((str(r["reviewerID"]), str(r["asin"]), float(r.get("overall", 0) or 0),
                                 int(r["unixReviewTime"])))
        except (KeyError, TypeError, ValueError) as error:
            report.skip(reviews, lineno, f"review without a usable {error}")
    interactions = kcore(interactions, k)
    items_used = {i for _, i, *_ in interactions}

    records = {}
    for lineno, r in read_records(meta, report):
        asin = r.get("asin")
        if not asin:
            report.skip(meta, lineno, "metadata without an asin")
        elif str(asin) in items_used and str(asin) not in records:
            records[str(asin)] = r

    jobs, images = [], {}
    for asin, r in records.items():
        local = _local_image(images_dir, asin) if images_dir else None
        if local is None and download_images and image_url(r):
            url = image_url(r)
            suffix = Path(url.split("?")[0]).suffix.lower()
            local = out_dir / "images" / f"{asin}{suffix if suffix in IMAGE_SUFFIXES else '.jpg'}"
            jobs.append((url, local))
        if local is not None:
            images[asin] = local
    if jobs:
        from dataset_tools.download import download_all

        downloaded = download_all(jobs, workers, timeout, retries, progress=progress)
        report.counts["images_failed"] = len(downloaded.failed)
        for url, dest, reason in downloaded.failed:
            images.pop(Path(dest).stem, None)
        if downloaded.failed:
            (out_dir / "images").mkdir(parents=True, exist_ok=True)
            (out_dir / "images" / "failed.tsv").write_text(
                "".join(f"{u}\t{d}\t{why}\n" for u, d, why in downloaded.failed))

    unreadable = []

    def image_cell(asin):
        path = images.get(asin)
        if path is None or not Path(path).is_file():
            return ""
        problem = image_problem(path)
        if problem:  # e.g. a text file saved as .jpg: not counted as an image
            unreadable.append(f"{path}: {problem}")
            return ""
        path = Path(path).resolve()
        try:
            return str(path.relative_to(out_dir.resolve()))
        except ValueError:
            return str(path)

    item_rows = [[asin, clean_text(r.get("title")), _categories(r), clean_text(r.get("brand")),
                  clean_text(r.get("description"), max_description_words), image_cell(asin)]
                 for asin, r in sorted(records.items())]
    interactions.sort(key=lambda r: (r[0], r[3], r[1]))
    write_atomic(out_dir / f"{name}.inter", INTER_FIELDS,
                 [[u, i, f"{rating:g}", str(t)] for u, i, rating, t in interactions])
    write_atomic(out_dir / f"{name}.item", ITEM_FIELDS, item_rows)
    report.counts.update({
        "users": len({u for u, *_ in interactions}), "items": len(items_used),
        "interactions": len(interactions), "items_with_metadata": len(records),
        "items_with_image": sum(bool(row[-1]) for row in item_rows),
        "images_unreadable": len(unreadable)})
    report.examples += [f"{line}; the item keeps its text only" for line in unreadable[:5]]
    return report
