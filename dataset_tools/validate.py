"""Checks a RecBole atomic dataset before a long run, naming file, line and field of every problem.

Errors (the run would fail or silently learn from broken data): a header that is not
``name:type`` with a RecBole type, commas or spaces instead of tabs, a UTF-8 byte-order mark, a
row with the wrong number of tab-separated cells, bytes that are not UTF-8, a missing
user/session or item field, an empty id, a ``token`` with a space in it, a value that is not a
finite number in a ``float`` field (NaN, inf), an ``.inter`` with no rows, an item listed twice in ``.item``, split files without the
prefix field. Warnings (the run works, but you should know): duplicate interactions, items of
the interactions without an ``.item`` row (TPAD uses its fallback feature for them), an
``.item`` without any text field TPAD reads, image files that do not exist or do not open as
images.
"""

from dataclasses import dataclass, field
from pathlib import Path

from dataset_tools.atomic import (FIELD_TYPES, IMAGE_FIELD, SPLIT_SUFFIXES, TEXT_FIELDS,
                                  dataset_files, image_problem, parse_header)

USER_FIELDS = ("user_id", "session_id")
ITEM_FIELD = "item_id"
LIST_FIELD = "item_id_list"
#: At most this many messages of one kind per file; the rest are counted.
MAX_PER_KIND = 10


@dataclass
class Report:
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    _counts: dict = field(default_factory=dict)

    @property
    def ok(self):
        return not self.errors

    def add(self, level, path, line, fieldname, problem, fix):
        key = (level, str(path), problem)
        self._counts[key] = self._counts.get(key, 0) + 1
        if self._counts[key] > MAX_PER_KIND:
            return
        where = f"{path}:{line}" if line else str(path)
        column = f" field '{fieldname}':" if fieldname else ""
        (self.errors if level == "error" else self.warnings).append(
            f"{where}:{column} {problem}; {fix}")

    def finish(self):
        for (level, path, problem), count in self._counts.items():
            if count > MAX_PER_KIND:
                (self.errors if level == "error" else self.warnings).append(
                    f"{path}: ... and {count - MAX_PER_KIND} more like '{problem}'")
        return self


def _check_file(path, report, row_checker=None):
    """Header, encoding, cell count, empty ids and numeric fields of one atomic file.

    Returns the ``[(name, type)]`` header (``None`` if unreadable). ``row_checker(names)``
    returns a function ``f(lineno, cells)`` that sees every well-formed row.
    """
    with open(path, "rb") as handle:
        raw_header = handle.readline()
        if raw_header.startswith(b"\xef\xbb\xbf"):
            report.add("error", path, 1, None, "the file starts with a UTF-8 byte-order mark (BOM)",
                       "save it as UTF-8 without BOM (the mark hides the first field's name)")
            return None
        if b"\t" not in raw_header and (b"," in raw_header or b" " in raw_header.strip()):
            report.add("error", path, 1, None, "cells are separated by commas or spaces, not tabs",
                       "RecBole atomic files are tab-separated: use tabs")
            return None
        try:
            fields = parse_header(raw_header.decode("utf-8"))
        except UnicodeDecodeError:
            report.add("error", path, 1, None, "header is not UTF-8", "save the file as UTF-8")
            return None
        except ValueError as error:
            report.add("error", path, 1, None, str(error),
                       f"write every header cell as name:type, type one of {', '.join(FIELD_TYPES)}, "
                       "separated by tabs")
            return None
        names = [n for n, _ in fields]
        if len(set(names)) != len(names):
            report.add("error", path, 1, None, f"duplicate field names in header {names}",
                       "give every column its own name")
        floats = [k for k, (_, t) in enumerate(fields) if t == "float"]
        tokens = [k for k, (_, t) in enumerate(fields) if t == "token"]
        rows = 0
        float_seqs = [k for k, (_, t) in enumerate(fields) if t == "float_seq"]
        ids = [k for k, n in enumerate(names) if n in USER_FIELDS or n == ITEM_FIELD]
        on_row = row_checker(names) if row_checker else None
        for lineno, raw in enumerate(handle, start=2):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                report.add("error", path, lineno, None, f"bytes that are not UTF-8 ({error.reason})",
                           "re-encode the file as UTF-8")
                continue
            if not line.strip():
                continue
            cells = line.split("\t")
            if len(cells) != len(fields):
                report.add("error", path, lineno, None,
                           f"{len(cells)} tab-separated cells, the header has {len(fields)}",
                           "separate cells with exactly one tab and remove tabs inside values")
                continue
            rows += 1
            for k in ids:
                if not cells[k].strip():
                    report.add("error", path, lineno, names[k], "empty id", "drop the row or fill the id")
            for k in tokens:
                if " " in cells[k].strip():
                    report.add("error", path, lineno, names[k], f"token {cells[k]!r} contains a space",
                               "a token is one word (RecBole splits token_seq fields at spaces): "
                               "replace the spaces, e.g. with '_'")
            for k in floats:
                try:
                    value = float(cells[k])
                except ValueError:
                    report.add("error", path, lineno, names[k], f"{cells[k]!r} is not a number",
                               "write a number (e.g. a unix time in seconds)")
                    continue
                if value != value or value in (float("inf"), float("-inf")):
                    report.add("error", path, lineno, names[k], f"{cells[k]!r} is not a finite number",
                               "write a finite number (RecBole would fill NaN with the column mean "
                               "and sort inf last, silently changing the order)")
            for k in float_seqs:
                try:
                    [float(x) for x in cells[k].split()]
                except ValueError:
                    report.add("error", path, lineno, names[k], "not space-separated numbers",
                               "write float_seq values as numbers separated by spaces")
            if on_row:
                on_row(lineno, cells)
        if rows == 0 and path.suffix == ".inter":
            report.add("error", path, None, None, "no rows under the header",
                       "add the interactions (RecBole stops with 'Some feat is empty' otherwise)")
    return fields


def validate_dataset(dataset_dir, name):
    """Validate dataset ``name`` in ``dataset_dir``; returns a :class:`Report`."""
    dataset_dir = Path(dataset_dir)
    report = Report()
    files = dataset_files(dataset_dir, name)
    splits = [s for s in SPLIT_SUFFIXES if s in files]
    if ".inter" not in files and not splits:
        report.add("error", dataset_dir / f"{name}.inter", None, None, "file not found",
                   f"put the interactions in {name}.inter (or {name}.train/.valid/.test.inter)")
        return report.finish()
    if splits and len(splits) != len(SPLIT_SUFFIXES):
        report.add("error", dataset_dir, None, None,
                   f"only {', '.join(name + s for s in splits)} of the three split files exist",
                   "provide .train.inter, .valid.inter and .test.inter together")

    inter_items = set()
    for suffix in [".inter"] + splits:
        if suffix not in files:
            continue
        path = files[suffix]

        def inter_rows(names, path=path):
            item = names.index(ITEM_FIELD) if ITEM_FIELD in names else None
            prefix = names.index(LIST_FIELD) if LIST_FIELD in names else None
            seen = set()

            def on_row(lineno, cells):
                if item is not None:
                    inter_items.add(cells[item])
                if prefix is not None:
                    inter_items.update(cells[prefix].split())
                key = "\t".join(cells)
                if key in seen:
                    report.add("warning", path, lineno, None, "duplicate of an earlier row",
                               "remove repeated interactions unless they are real repeats")
                seen.add(key)

            return on_row

        fields = _check_file(path, report, inter_rows)
        if fields is None:
            continue
        header = dict(fields)
        if not any(n in header for n in USER_FIELDS):
            report.add("error", path, 1, None, f"no user or session field (one of {USER_FIELDS})",
                       "add a user_id:token or session_id:token column")
        if ITEM_FIELD not in header:
            report.add("error", path, 1, None, f"no {ITEM_FIELD} field", f"add an {ITEM_FIELD}:token column")
        if suffix in SPLIT_SUFFIXES and header.get(LIST_FIELD) != "token_seq":
            report.add("error", path, 1, LIST_FIELD, "split files need the prefix field "
                       f"{LIST_FIELD}:token_seq", "write splits with `python -m dataset_tools sessionize`")

    if ".item" in files:
        path = files[".item"]
        item_ids = {}

        def item_rows(names):
            image_col = names.index(IMAGE_FIELD) if IMAGE_FIELD in names else None

            def on_row(lineno, cells):
                item = cells[0]
                if item in item_ids:
                    report.add("error", path, lineno, ITEM_FIELD,
                               f"item {item!r} already listed on line {item_ids[item]}",
                               "keep one row per item")
                else:
                    item_ids[item] = lineno
                if image_col is not None and cells[image_col].strip():
                    image = Path(cells[image_col])
                    problem = image_problem(image if image.is_absolute() else dataset_dir / image)
                    if problem:
                        report.add("warning", path, lineno, IMAGE_FIELD,
                                   f"image {cells[image_col]} {problem}",
                                   "fix the path (relative to the dataset folder) or the file, or "
                                   "leave the cell empty; the item is used with text only")

            return on_row

        fields = _check_file(path, report, item_rows)
        if fields is not None:
            if fields[0][0] != ITEM_FIELD:
                report.add("error", path, 1, fields[0][0], f"the first column must be {ITEM_FIELD}",
                           f"move {ITEM_FIELD}:token to the first column")
            if not any(name in TEXT_FIELDS for name, _ in fields):
                report.add("warning", path, 1, None,
                           f"no text field TPAD reads ({', '.join(TEXT_FIELDS)})",
                           "add title/keywords/description columns to get text features")
            lacking = inter_items - set(item_ids)
            if lacking:
                report.add("warning", path, None, None,
                           f"{len(lacking)} items of the interactions have no row (e.g. {sorted(lacking)[:3]})",
                           "add their rows; until then TPAD gives them the fallback feature")
    else:
        report.add("warning", dataset_dir / f"{name}.item", None, None, "no .item file",
                   "TPAD needs item text (or images) for its features; ID-only models are unaffected")
    return report.finish()
