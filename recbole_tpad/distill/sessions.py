"""The sessions the pretrainer learns transitions from: the training split only.

Valid and test targets must never reach pretraining, or the distilled features would carry
the answers into the downstream evaluation. Two layouts, matching how RecBole splits them:

* benchmark files (``<name>.train.inter`` with ``item_id_list``): each training session is its
  longest prefix plus target in the train file; valid/test files are never read;
* one ``<name>.inter`` of user histories under the leave-one-out protocol (``LS:
  valid_and_test``, time order): each user's items in time order minus the last two (the valid
  and the test target).
"""

from collections import defaultdict
from pathlib import Path

from dataset_tools.atomic import read_atomic


class SessionSourceError(ValueError):
    """The dataset has no layout the pretrainer can take training sessions from."""


def _column(fields, *names):
    for name in names:
        for index, (field, _) in enumerate(fields):
            if field == name:
                return index
    return None


def training_sessions(dataset_dir, name, min_length=2, with_keys=False):
    """Item-id lists (time order) the pretrainer may learn from, in a deterministic order
    (with ``with_keys``: ``(session or user id, items)`` pairs)."""
    dataset_dir = Path(dataset_dir)
    train = dataset_dir / f"{name}.train.inter"
    if train.is_file():
        fields, rows = read_atomic(train)
        sid, prefix, target = (_column(fields, "session_id", "user_id"),
                               _column(fields, "item_id_list"), _column(fields, "item_id"))
        if None in (sid, prefix, target):
            raise SessionSourceError(f"{train}: expected session_id (or user_id), item_id_list and "
                                     "item_id columns")
        longest = {}
        for row in rows:
            session = row[prefix].split() + [row[target]]
            if len(session) > len(longest.get(row[sid], [])):
                longest[row[sid]] = session
        sessions = [(k, longest[k]) for k in sorted(longest)]
    else:
        inter = dataset_dir / f"{name}.inter"
        if not inter.is_file():
            raise SessionSourceError(f"{dataset_dir}: neither {name}.train.inter nor {name}.inter exists")
        fields, rows = read_atomic(inter)
        uid, iid, ts = (_column(fields, "user_id", "session_id"), _column(fields, "item_id"),
                        _column(fields, "timestamp"))
        if None in (uid, iid, ts):
            raise SessionSourceError(f"{inter}: expected user_id, item_id and timestamp columns "
                                     "(time order decides which items are held out)")
        history = defaultdict(list)
        for row in rows:
            history[row[uid]].append((float(row[ts]), len(history[row[uid]]), row[iid]))
        sessions = []
        for user in sorted(history):
            items = [item for _, _, item in sorted(history[user])]
            sessions.append((user, items[:-2]))  # the last two are the valid and test targets
    kept = [(key, s) for key, s in sessions if len(s) >= min_length]
    return kept if with_keys else [s for _, s in kept]
