"""The sessions the pretrainer learns transitions from: the training split only.

Valid and test targets must never reach pretraining, or the distilled features would carry
the answers into the downstream evaluation. Two layouts, matching how RecBole splits them:

* benchmark files (``<name>.train.inter`` with ``item_id_list``): each training session is its
  longest prefix plus target in the train file; valid/test files are never read;
* one ``<name>.inter`` of user histories under the leave-one-out protocol (``LS:
  valid_and_test``, time order): each user's items in time order minus the last two (the valid
  and the test target).

:func:`validation_cases` gives the held-out cases the pretrainer reports on (the valid split:
``<name>.valid.inter``, or each user's second-last item given the items before it). The test
split is never read.
"""

from collections import defaultdict
from pathlib import Path

import numpy as np

from dataset_tools.atomic import read_atomic


class SessionSourceError(ValueError):
    """The dataset has no layout the pretrainer can take training sessions from."""


def _column(fields, *names):
    for name in names:
        for index, (field, _) in enumerate(fields):
            if field == name:
                return index
    return None


def user_histories(dataset_dir, name):
    """``[(user, items in time order)]`` of ``<name>.inter``, users sorted."""
    inter = Path(dataset_dir) / f"{name}.inter"
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
    return [(user, [item for _, _, item in sorted(history[user])]) for user in sorted(history)]


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
    else:  # the last two items of each history are the valid and test targets
        sessions = [(user, items[:-2]) for user, items in user_histories(dataset_dir, name)]
    kept = [(key, s) for key, s in sessions if len(s) >= min_length]
    return kept if with_keys else [s for _, s in kept]


def target_distribution(sessions, n_items, window=1):
    """``[n_items]`` probability that stage 2 draws item ``j`` as a next-item target (the
    pretrainer's ``sample_sessions``): a session drawn uniformly, a cut drawn uniformly among
    positions 1..len-1, and the targets the ``window`` positions up to the cut (1: the cut's
    item alone). Position p is then a target for min(window, len - p) of the len - 1 cuts.
    Sessions are lists of item rows, each of 2+ items."""
    q = np.zeros(n_items)
    for session in sessions:
        length = len(session)
        shares = np.minimum(window, length - np.arange(1, length)) / (length - 1)
        np.add.at(q, session[1:], shares)
    return q / q.sum() if q.sum() else q


def transition_counts(sessions, n_items):
    """``[n_items, n_items]`` sparse counts of item ``b`` directly following item ``a`` in the
    sessions (lists of item rows): the first-order Markov chain the held-out report sets beside
    the Transfer-MLLM, i.e. what memorising the training transitions by item ID ranks."""
    from scipy import sparse

    pairs = np.array([(a, b) for session in sessions for a, b in zip(session, session[1:])],
                     dtype=np.int64).reshape(-1, 2)
    return sparse.csr_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_items, n_items))


def validation_cases(dataset_dir, name, max_prefix=None):
    """``[(prefix items, target)]`` of the validation split, in a deterministic order: what the
    pretrainer's held-out report scores (never the test split)."""
    dataset_dir = Path(dataset_dir)
    valid = dataset_dir / f"{name}.valid.inter"
    cases = []
    if valid.is_file():
        fields, rows = read_atomic(valid)
        prefix, target = _column(fields, "item_id_list"), _column(fields, "item_id")
        if None in (prefix, target):
            raise SessionSourceError(f"{valid}: expected item_id_list and item_id columns")
        cases = [(row[prefix].split(), row[target]) for row in rows]
    else:
        for _, items in user_histories(dataset_dir, name):
            if len(items) >= 3:
                cases.append((items[:-2], items[-2]))
    cases = [(p, t) for p, t in cases if p]
    if max_prefix:
        cases = [(p[-max_prefix:], t) for p, t in cases]
    return cases
