"""RecBole atomic files: names, headers, reading, writing and the dataset fingerprint.

No torch and no RecBole here, so every dataset command runs in seconds.
"""

import hashlib
import os
import tempfile
from pathlib import Path

#: Field types RecBole 1.2.1 accepts in a header ``name:type``.
FIELD_TYPES = ("token", "token_seq", "float", "float_seq")

#: File suffixes that make up a dataset (the benchmark split files included). Anything else in
#: the folder (feature files, caches, READMEs) is not part of the dataset's fingerprint.
ATOMIC_SUFFIXES = (".inter", ".item", ".user", ".train.inter", ".valid.inter", ".test.inter",
                   ".kg", ".link", ".net")
SPLIT_SUFFIXES = (".train.inter", ".valid.inter", ".test.inter")

#: Fields TPAD reads as item text (in this order) and as an image path, when present.
TEXT_FIELDS = ("title", "keywords", "categories", "category", "brand", "description")
IMAGE_FIELD = "image"


def dataset_files(dataset_dir, name):
    """``{suffix: path}`` of the atomic files of dataset ``name`` that exist in ``dataset_dir``."""
    dataset_dir = Path(dataset_dir)
    found = {}
    for suffix in ATOMIC_SUFFIXES:
        path = dataset_dir / f"{name}{suffix}"
        if path.is_file():
            found[suffix] = path
    return found


def dataset_checksum(dataset_dir, name):
    """SHA-256 over the dataset's atomic files (names and bytes, in a fixed order).

    Every artefact derived from a dataset (feature files, caches) records it, so that a
    changed dataset is detected and a stale artefact is never used.
    """
    files = dataset_files(dataset_dir, name)
    if not files:
        raise FileNotFoundError(f"no atomic files named {name}.* in {dataset_dir}")
    digest = hashlib.sha256()
    for suffix in sorted(files):
        digest.update(suffix.encode())
        with open(files[suffix], "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def parse_header(line):
    """``"item_id:token\\ttitle:token_seq"`` -> ``[("item_id", "token"), ("title", "token_seq")]``.

    Raises ``ValueError`` naming the column that is not ``name:type`` with a known type.
    """
    fields = []
    for column, cell in enumerate(line.rstrip("\r\n").split("\t"), start=1):
        name, sep, ftype = cell.rpartition(":")
        if not sep or not name:
            raise ValueError(f"column {column} header {cell!r} is not name:type")
        if ftype not in FIELD_TYPES:
            raise ValueError(f"column {column} header {cell!r} has type {ftype!r}; "
                             f"use one of {', '.join(FIELD_TYPES)}")
        fields.append((name, ftype))
    return fields


def read_atomic(path):
    """``(fields, rows)`` of an atomic file: rows are lists of strings (no type conversion).

    Meant for the small tables (``.item``) and the tools; RecBole reads ``.inter`` itself.
    """
    with open(path, encoding="utf-8", newline="") as handle:
        header = handle.readline()
        if "\t" not in header and ("," in header or " " in header.strip()):
            raise ValueError(f"{path}:1: cells are separated by commas or spaces; RecBole atomic "
                             "files are tab-separated: use tabs")
        try:
            fields = parse_header(header.lstrip("\ufeff"))
        except ValueError as error:
            raise ValueError(f"{path}:1: {error}") from None
        rows = []
        for lineno, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            cells = line.rstrip("\r\n").split("\t")
            if len(cells) != len(fields):
                raise ValueError(f"{path}:{lineno}: {len(cells)} tab-separated cells, the header "
                                 f"has {len(fields)}; run `python -m dataset_tools validate` on the folder")
            rows.append(cells)
    return fields, rows


def read_item_table(dataset_dir, name):
    """``{item_id: {field: value}}`` from ``<name>.item`` in file order (empty if no such file)."""
    path = Path(dataset_dir) / f"{name}.item"
    if not path.is_file():
        return {}
    fields, rows = read_atomic(path)
    names = [f for f, _ in fields]
    return {row[0]: dict(zip(names[1:], row[1:])) for row in rows if row and row[0]}


def read_user_interactions(dataset_dir, name, purpose):
    """``(rows, (user, item, time) column indices)`` of ``NAME.inter``; a missing field is a
    ValueError naming the file and what needed it (``purpose``, e.g. "sessionize")."""
    path = Path(dataset_dir) / f"{name}.inter"
    fields, rows = read_atomic(path)
    names = [n for n, _ in fields]
    for needed in ("user_id", "item_id", "timestamp"):
        if needed not in names:
            raise ValueError(f"{path}: {purpose} needs a {needed} field; the header has {names}")
    return rows, tuple(names.index(n) for n in ("user_id", "item_id", "timestamp"))


def copy_item_table(source_dir, source_name, out_dir, out_name):
    """``source_name.item`` -> ``out_name.item`` (a derived dataset keeps its items), if present."""
    source = Path(source_dir) / f"{source_name}.item"
    if source.is_file():
        fields, rows = read_atomic(source)
        write_atomic(Path(out_dir) / f"{out_name}.item", fields, rows)


def item_text(record, fields=None):
    """One item's text for an encoder: ``"title: ... | keywords: ..."`` from the fields it has."""
    fields = fields or [f for f in TEXT_FIELDS if f in record] or [
        f for f in record if f != IMAGE_FIELD]
    parts = [f"{f}: {record[f].strip()}" for f in fields if record.get(f, "").strip()]
    return " | ".join(parts)


def image_problem(path):
    """Why the image file at ``path`` cannot be used (``None`` when it opens as an image):
    missing, or not an image (a text file saved as ``.png``, a truncated download)."""
    path = Path(path)
    if not path.is_file():
        return "not found"
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return f"not a readable image ({type(error).__name__}: {str(error)[:80]})"
    return None


def publish(tmp, path):
    """Rename a finished temporary file onto ``path`` with ordinary permissions (``mkstemp``
    creates files readable by their owner only)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def write_atomic(path, fields, rows):
    """Write an atomic file atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "\t".join(f"{n}:{t}" for n, t in fields)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(header + "\n")
            for row in rows:
                cells = [str(c).replace("\t", " ").replace("\n", " ") for c in row]
                handle.write("\t".join(cells) + "\n")
        publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
