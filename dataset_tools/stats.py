"""A dataset at a glance: sequences, items, interactions, lengths, text and image coverage."""

import statistics
from collections import Counter
from pathlib import Path

from dataset_tools.atomic import IMAGE_FIELD, SPLIT_SUFFIXES, TEXT_FIELDS, dataset_files, read_atomic


def _sequences(files):
    """``{sequence_id: [items]}`` from ``.inter`` (user/session histories) or, failing that,
    from the split files (each session's longest prefix + target)."""
    if ".inter" in files:
        fields, rows = read_atomic(files[".inter"])
        names = [n for n, _ in fields]
        key = names.index("session_id") if "session_id" in names else names.index("user_id")
        item = names.index("item_id")
        sequences = {}
        for row in rows:
            sequences.setdefault(row[key], []).append(row[item])
        return sequences, names[key]
    sequences = {}
    for suffix in SPLIT_SUFFIXES:
        fields, rows = read_atomic(files[suffix])
        names = [n for n, _ in fields]
        for row in rows:
            full = row[names.index("item_id_list")].split() + [row[names.index("item_id")]]
            sid = f"{suffix}:{row[0]}"
            if len(full) > len(sequences.get(sid, [])):
                sequences[sid] = full
    return sequences, "session_id"


def dataset_stats(dataset_dir, name):
    """``[(statistic, value)]`` rows for dataset ``name`` in ``dataset_dir``."""
    files = dataset_files(dataset_dir, name)
    if not files:
        raise FileNotFoundError(f"no atomic files named {name}.* in {dataset_dir}")
    sequences, key = _sequences(files)
    lengths = sorted(len(s) for s in sequences.values())
    counts = Counter(i for s in sequences.values() for i in s)
    rows = [(f"{key.replace('_id', '')}s", len(sequences)), ("items (in interactions)", len(counts)),
            ("interactions", sum(lengths))]
    if lengths:
        q = statistics.quantiles(lengths, n=10) if len(lengths) > 1 else [lengths[0]] * 9
        rows += [("length min / median / mean / max",
                  f"{lengths[0]} / {statistics.median(lengths):g} / {statistics.fmean(lengths):.2f} / {lengths[-1]}"),
                 ("length p10 / p90", f"{q[0]:g} / {q[-1]:g}"),
                 ("item frequency median / max", f"{statistics.median(counts.values()):g} / {max(counts.values())}")]
    if ".item" in files:
        fields, items = read_atomic(files[".item"])
        names = [n for n, _ in fields]
        text_cols = [names.index(f) for f in TEXT_FIELDS if f in names]
        image_col = names.index(IMAGE_FIELD) if IMAGE_FIELD in names else None
        with_text = sum(any(r[c].strip() for c in text_cols) for r in items)
        with_image = 0
        if image_col is not None:
            for r in items:
                path = Path(r[image_col]) if r[image_col].strip() else None
                if path and (path if path.is_absolute() else Path(dataset_dir) / path).is_file():
                    with_image += 1
        n = max(len(items), 1)
        rows += [("items in .item", len(items)),
                 ("items with text", f"{with_text} ({with_text / n:.1%})"),
                 ("items with an image file", f"{with_image} ({with_image / n:.1%})")]
    else:
        rows.append(("items in .item", "no .item file"))
    return rows


def format_table(rows):
    width = max(len(str(k)) for k, _ in rows)
    lines = [f"| {'statistic'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {str(k).ljust(width)} | {v} |" for k, v in rows]
    return "\n".join(lines)
