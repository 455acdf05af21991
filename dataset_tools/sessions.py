"""User histories -> anonymous sessions, split by session into RecBole benchmark files.

``sessionize`` cuts each user's time-ordered interactions into sessions (a new session on a new
calendar day, or after a gap of ``gap`` seconds), drops sessions shorter than ``min_length``
(and optionally items seen fewer than ``min_item_count`` times), and :func:`write_session_splits`
assigns whole sessions to train/valid/test with a seeded shuffle, so no session crosses splits
and every model sees identical splits. Files written (RecBole's session benchmark format):

* ``NAME.train.inter``: every prefix of every training session with its next item;
* ``NAME.valid.inter`` / ``NAME.test.inter``: the last item of each session given its prefix;
* ``NAME.sessions.json``: how the splits were made (source checksum, options, counts).
"""

import json
import random
from collections import Counter
from pathlib import Path

from dataset_tools.atomic import (copy_item_table, dataset_checksum,
                                   read_user_interactions, write_atomic)

SPLIT_HEADER = [("session_id", "token"), ("item_id_list", "token_seq"), ("item_id", "token")]


def sessions_from_rows(rows, user_col, item_col, time_col, gap=None):
    """``[[item, ...], ...]`` in (user, time) order. ``gap=None``: one session per user and
    calendar day (``floor(time / 86400)``); else a new session after ``gap`` seconds."""
    ordered = sorted(
        ((r[user_col], float(r[time_col]), k, r[item_col]) for k, r in enumerate(rows)),
        key=lambda x: (x[0], x[1], x[2]))
    sessions, current, last_key = [], [], None
    for user, t, _, item in ordered:
        if gap is None:
            key = (user, int(t // 86400))
            new = key != last_key
        else:
            key = (user, t)
            new = last_key is None or user != last_key[0] or t - last_key[1] > gap
        if new and current:
            sessions.append(current)
            current = []
        current.append(item)
        last_key = key
    if current:
        sessions.append(current)
    return sessions


def filter_sessions(sessions, min_length=2, max_length=None, min_item_count=1):
    """Drop items seen fewer than ``min_item_count`` times, then sessions shorter than
    ``min_length``; keep the last ``max_length`` items of longer ones. Repeats until stable,
    since dropping sessions changes item counts."""
    while True:
        counts = Counter(i for s in sessions for i in s)
        kept = [[i for i in s if counts[i] >= min_item_count] for s in sessions]
        kept = [s[-max_length:] if max_length else s for s in kept if len(s) >= min_length]
        if kept == sessions:
            return kept
        sessions = kept


def split_sessions(n, ratios=(0.8, 0.1, 0.1), seed=2020):
    """Indices of sessions in train, valid and test: a seeded shuffle cut by ``ratios``."""
    if len(ratios) != 3 or abs(sum(ratios) - 1) > 1e-6 or min(ratios) < 0:
        raise ValueError(f"ratios {ratios}: give three non-negative shares that sum to 1")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_train, n_valid = int(round(ratios[0] * n)), int(round(ratios[1] * n))
    return order[:n_train], order[n_train:n_train + n_valid], order[n_train + n_valid:]


def _rows(sessions, ids, max_prefix, every_prefix):
    for sid in ids:
        items = sessions[sid]
        targets = range(1, len(items)) if every_prefix else [len(items) - 1]
        for t in targets:
            yield [str(sid), " ".join(items[max(0, t - max_prefix):t]), items[t]]


def write_session_splits(sessions, out_dir, name, ratios=(0.8, 0.1, 0.1), seed=2020,
                         max_prefix=50, info=None):
    """Write the three benchmark files and ``NAME.sessions.json``; returns the counts."""
    out_dir = Path(out_dir)
    parts = split_sessions(len(sessions), ratios, seed)
    counts = {"sessions": len(sessions), "interactions": sum(len(s) for s in sessions),
              "items": len({i for s in sessions for i in s})}
    for split, ids in zip(("train", "valid", "test"), parts):
        rows = list(_rows(sessions, ids, max_prefix, every_prefix=(split == "train")))
        write_atomic(out_dir / f"{name}.{split}.inter", SPLIT_HEADER, rows)
        counts[f"{split}_sessions"], counts[f"{split}_cases"] = len(ids), len(rows)
    meta = dict(info or {}, ratios=list(ratios), seed=seed, max_prefix=max_prefix, counts=counts)
    (out_dir / f"{name}.sessions.json").write_text(json.dumps(meta, indent=1))
    return counts


def check_session_rows(rows, columns, path):
    """Refuse what would silently corrupt sessions: an item id with a space (it would become
    several items in the ``item_id_list`` field) and a time that is not a finite number."""
    _, item_col, time_col = columns
    for k, row in enumerate(rows, start=1):
        if " " in row[item_col].strip():
            raise ValueError(f"{path}: data row {k}: item_id {row[item_col]!r} contains a space; "
                             "a token is one word: replace the spaces (e.g. with '_')")
        try:
            time = float(row[time_col])
        except ValueError:
            raise ValueError(f"{path}: data row {k}: timestamp {row[time_col]!r} is not a number") from None
        if time != time or time in (float("inf"), float("-inf")):
            raise ValueError(f"{path}: data row {k}: timestamp {row[time_col]!r} is not a finite number; "
                             "fix or drop the row")


def sessionize(source_dir, source_name, out_dir, out_name, gap=None, min_length=2,
               max_length=None, min_item_count=1, ratios=(0.8, 0.1, 0.1), seed=2020,
               max_prefix=50, copy_items=True):
    """Build the session dataset ``out_name`` from the user-based dataset ``source_name``."""
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    if out_dir.resolve() == source_dir.resolve():
        raise ValueError(f"--out {out_dir} is the source folder: the session files would sit beside "
                         "(and be read as) the source dataset; give another folder")
    rows, columns = read_user_interactions(source_dir, source_name, "sessionize")
    check_session_rows(rows, columns, source_dir / f"{source_name}.inter")
    sessions = sessions_from_rows(rows, *columns, gap)
    raw = {"sessions_total": len(sessions),
           "sessions_min_length": sum(len(s) >= min_length for s in sessions),
           "interactions_min_length": sum(len(s) for s in sessions if len(s) >= min_length)}
    sessions = filter_sessions(sessions, min_length, max_length, min_item_count)
    out_dir.mkdir(parents=True, exist_ok=True)
    if copy_items:
        copy_item_table(source_dir, source_name, out_dir, out_name)
    info = {"source": source_name, "source_checksum": dataset_checksum(source_dir, source_name),
            "gap": gap or "calendar day", "min_length": min_length, "max_length": max_length,
            "min_item_count": min_item_count, "before_item_filtering": raw}
    counts = write_session_splits(sessions, out_dir, out_name, ratios, seed, max_prefix, info)
    counts["before_item_filtering"] = raw
    return counts
