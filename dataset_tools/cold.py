"""Cold-start split: leave-one-out, with a share of items never seen in training.

``cold_split`` takes a user-based dataset (``user_id``, ``item_id``, ``timestamp``) and writes
RecBole benchmark files in which a seeded random share of the items (default 10%) are *cold*:

* ``NAME.train.inter``: every prefix of each user's history up to the second-last item (the
  P5 / S3-Rec leave-one-out training part) with its next item, after removing every
  interaction with a cold item: no model sees a cold item in training, as target or history;
* ``NAME.valid.inter`` / ``NAME.test.inter``: the second-last / last item given the user's
  whole history before it (cold items included, as a new item would be);
* ``NAME.cold.json``: the cold items and how the split was made (source checksum, share, seed).

A test case is *cold* when its target never occurs in the training file; ``recbole_tpad``'s
runs report metrics of warm and cold test cases separately. ID-only models have no trained
vector for a cold item, so they cannot rank it; TPAD ranks it from its content features.
"""

import json
import random
from collections import defaultdict
from pathlib import Path

from dataset_tools.atomic import (copy_item_table, dataset_checksum,
                                   read_user_interactions, write_atomic)
from dataset_tools.sessions import SPLIT_HEADER


def user_histories(rows, user_col, item_col, time_col):
    """``{user: [item, ...]}`` in time order (ties keep file order)."""
    ordered = sorted(((r[user_col], float(r[time_col]), k, r[item_col]) for k, r in enumerate(rows)),
                     key=lambda x: (x[0], x[1], x[2]))
    histories = defaultdict(list)
    for user, _, _, item in ordered:
        histories[user].append(item)
    return histories


def choose_cold_items(items, share, seed):
    """A seeded sample of ``round(share * len(items))`` items, from the sorted item list."""
    if not 0 < share < 1:
        raise ValueError(f"cold share {share}: give a share of items between 0 and 1, e.g. 0.1")
    pool = sorted(items)
    return set(random.Random(seed).sample(pool, max(1, round(share * len(pool)))))


def cold_split(source_dir, source_name, out_dir, out_name, share=0.1, seed=2020, max_prefix=50,
               copy_items=True):
    """Build the cold-start dataset ``out_name`` from ``source_name``; returns the counts."""
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    rows, columns = read_user_interactions(source_dir, source_name, "the cold-start split")
    histories = user_histories(rows, *columns)
    cold = choose_cold_items({r[columns[1]] for r in rows}, share, seed)
    splits = {"train": [], "valid": [], "test": []}
    for user in sorted(histories):
        items = histories[user]
        if len(items) < 3:
            continue  # leave-one-out needs a training item, a valid item and a test item
        warm = [i for i in items[:-2] if i not in cold]
        for t in range(1, len(warm)):
            splits["train"].append([user, " ".join(warm[max(0, t - max_prefix):t]), warm[t]])
        for split, t in (("valid", len(items) - 2), ("test", len(items) - 1)):
            splits[split].append([user, " ".join(items[max(0, t - max_prefix):t]), items[t]])
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, split_rows in splits.items():
        write_atomic(out_dir / f"{out_name}.{split}.inter", SPLIT_HEADER, split_rows)
    if copy_items:
        copy_item_table(source_dir, source_name, out_dir, out_name)
    trained = {i for row in splits["train"] for i in row[1].split() + [row[2]]}
    counts = {"users": len(histories), "items": len({i for h in histories.values() for i in h}),
              "cold_items": len(cold), "train_cases": len(splits["train"])}
    for split in ("valid", "test"):
        counts[f"{split}_cases"] = len(splits[split])
        counts[f"{split}_cold_cases"] = sum(row[2] not in trained for row in splits[split])
    meta = {"source": source_name, "source_checksum": dataset_checksum(source_dir, source_name),
            "share": share, "seed": seed, "max_prefix": max_prefix, "counts": counts,
            "cold_items": sorted(cold)}
    (out_dir / f"{out_name}.cold.json").write_text(json.dumps(meta, indent=1))
    return counts
