"""A collaborative teacher for stage 2: item vectors that rank next items by ID.

On amazon-sports the Transfer-MLLM learns the items' content similarity in stage 2, not their
transitions (its held-out next-item Recall@20 equals the last item's content alone), while the
item vectors of a trained SASRec rank next items from the last item's vector alone at 2.8x
popularity, and a map from the frozen content states to those vectors keeps most of that
(2.3x; results/README.md, "A collaborative teacher"). So ``transition_teacher: teacher-<model>`` gives stage 2 those vectors as a second
transition signal: z_T is aligned with them by InfoNCE
(:meth:`~recbole_tpad.distill.objectives.TransitionDistillation.teacher_loss`) and AMIE
carries what z_T learns into z_U, as it carries the session transitions.

:func:`export_teacher` writes the vectors as a feature file (``<dataset>.teacher-<model>.npy``,
the same contract as every feature file: item ids, dataset checksum, array checksum), with the
checkpoint's checksum in its producer, so a pretraining run on a teacher is keyed by the
teacher's contents and a re-trained teacher makes its features stale.

    python -m recbole_tpad.distill.teacher --checkpoint=saved/SASRecPub-X.pth

``teacher-transitions`` needs no trained model: :func:`transition_vectors` factorises the
training sessions' item co-occurrences (positive PMI within a window, truncated SVD, the
item2vec family; Levy & Goldberg, NIPS 2014). It takes seconds, ranks held-out next items on
amazon-sports better than the trained SASRec's vectors (results/README.md, "A collaborative teacher"), and
the pretrainer writes it itself when it is missing or its dataset changed.

    python -m recbole_tpad.distill.teacher --transitions --dataset=amazon-sports
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from recbole_tpad.distill.settings import PretrainConfigError

#: Feature sources whose name starts so are teachers (``teacher-sasrecpub``).
TEACHER_PREFIX = "teacher"
#: The teacher made from the training sessions alone (:func:`export_transition_teacher`).
TRANSITION_TEACHER = f"{TEACHER_PREFIX}-transitions"
#: Its settings: co-occurrence window (items after an item), weight decay per step of distance,
#: vector size. Chosen on held-out last items of the training sessions, not on the valid split
#: (the smallest size within noise of the best; results/README.md, "The transition teacher").
TRANSITION_SETTINGS = {"window": 5, "decay": 0.7, "dim": 64}


class TeacherError(PretrainConfigError):
    """A checkpoint that cannot serve as a teacher, or a teacher file that is missing or unusable."""


def item_vectors(model, name):
    """``[n_items + 1, d]`` the ID vectors a model scores items with (row 0: padding)."""
    embedding = getattr(model, "item_embedding", None)
    weight = getattr(embedding, "weight", None)
    if weight is None or weight.dim() != 2:
        raise TeacherError(f"{name} has no item_embedding table, so it has no item vectors to teach "
                           "with: use an ID model's checkpoint (SASRec, SASRecPub, GRU4Rec, ...)")
    return weight.detach().float().cpu().numpy()


def export_teacher(checkpoint, name=None):
    """Write the item vectors of the model in ``checkpoint`` as the feature file
    ``<dataset>.<name>.npy`` (``name``: ``teacher-<model>``). Only items with training
    interactions are written: the others' vectors were never trained. Returns the path."""
    from recbole_tpad.data.features import write_feature_file
    from recbole_tpad.data.sources import FeatureSource, dataset_folder
    from recbole_tpad.evaluation import training_item_counts, training_prefixes
    from recbole_tpad.mllm.offline import file_sha256
    from recbole_tpad.quick_start import load_data_and_model

    checkpoint = Path(checkpoint)
    config, model, dataset, train_data, _, _ = load_data_and_model(checkpoint)
    name = name or f"{TEACHER_PREFIX}-{config['model'].lower()}"
    if not name.startswith(TEACHER_PREFIX + "-"):
        raise TeacherError(f"teacher name {name!r}: start it with '{TEACHER_PREFIX}-' (e.g. "
                           f"{TEACHER_PREFIX}-{config['model'].lower()})")
    vectors = item_vectors(model, config["model"])
    tokens = list(dataset.field2id_token[config["ITEM_ID_FIELD"]])
    counts = training_item_counts(training_prefixes(train_data), config).cpu().numpy()
    trained = [k for k in range(1, len(tokens)) if counts[k] > 0]
    if not trained:
        raise TeacherError(f"{checkpoint}: no item has a training interaction")
    data_dir = dataset_folder(config)
    path = FeatureSource(name).path(data_dir, config["dataset"])
    producer = {"name": "id-model-teacher", "model": config["model"], "checkpoint": str(checkpoint),
                "checkpoint_sha256": file_sha256(checkpoint), "seed": config["seed"],
                "items_without_training_interactions": len(tokens) - 1 - len(trained)}
    write_feature_file(path, vectors[trained], [tokens[k] for k in trained], config["dataset"],
                       data_dir, producer)
    return path


def transition_vectors(sessions, n_items, window=5, decay=0.7, dim=64, seed=0):
    """``(vectors [n_items, d] float32, known [n_items] bool)`` from sessions (lists of item
    rows, time order): items ``k`` apart (``k <= window``) co-occur with weight ``decay ** (k - 1)``
    in both directions; the positive PMI of those counts (context frequencies smoothed by the
    power 0.75) is factorised by truncated SVD and each item's vector is ``U sqrt(S)``. ``d`` is
    ``dim`` or less on a small catalogue. Items with no positive-PMI co-occurrence are zero and
    not known.
    Deterministic for a seed (start vector and each column's sign fixed)."""
    from scipy import sparse
    from scipy.sparse.linalg import svds

    rows, cols, weights = [], [], []
    for session in sessions:
        for distance in range(1, window + 1):
            if distance >= len(session):
                break
            a, b = session[:-distance], session[distance:]
            w = [decay ** (distance - 1)] * len(a)
            rows += a + b
            cols += b + a
            weights += w + w
    counts = sparse.coo_matrix((weights, (rows, cols)), shape=(n_items, n_items)).tocsr().tocoo()
    known = np.zeros(n_items, dtype=bool)
    if counts.nnz == 0:
        return np.zeros((n_items, 1), dtype=np.float32), known
    row_sum = np.asarray(counts.sum(1)).ravel()
    context = np.asarray(counts.sum(0)).ravel() ** 0.75
    pmi = np.log(counts.data * context.sum() / (row_sum[counts.row] * context[counts.col]))
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=counts.shape)
    known[np.unique(counts.row[keep])] = True
    k = max(1, min(dim, n_items - 2))
    if k < dim or n_items <= 2 * dim:  # small catalogues: the dense SVD, exact and quick
        u, s, _ = np.linalg.svd(ppmi.toarray())
        u, s = u[:, :k], s[:k]
    else:
        v0 = np.random.default_rng(seed).standard_normal(n_items)
        u, s, _ = svds(ppmi, k=k, v0=v0)
        order = np.argsort(-s)
        u, s = u[:, order], s[order]
    u = u * np.where(u[np.abs(u).argmax(0), np.arange(u.shape[1])] < 0, -1.0, 1.0)
    vectors = (u * np.sqrt(s)).astype(np.float32)
    vectors[~known] = 0
    return vectors, known


def export_transition_teacher(data_dir, dataset, window=None, decay=None, dim=None):
    """Write ``<dataset>.teacher-transitions.npy`` from the dataset's training sessions
    (:func:`~recbole_tpad.distill.sessions.training_sessions`: never the valid or test targets),
    with :data:`TRANSITION_SETTINGS` where a setting is not given. Returns the path."""
    from recbole_tpad.data.features import write_feature_file
    from recbole_tpad.data.sources import FeatureSource
    from recbole_tpad.distill.sessions import training_sessions

    settings = dict(TRANSITION_SETTINGS)
    settings.update({k: v for k, v in (("window", window), ("decay", decay), ("dim", dim)) if v is not None})
    if not (isinstance(settings["window"], int) and settings["window"] >= 1 and 0 < settings["decay"] <= 1
            and isinstance(settings["dim"], int) and settings["dim"] >= 1):
        raise TeacherError(f"transition teacher settings {settings}: window and dim are whole numbers "
                           "of at least 1, decay is in (0, 1]")
    sessions = training_sessions(data_dir, dataset)
    tokens = sorted({item for session in sessions for item in session})
    row = {item: k for k, item in enumerate(tokens)}
    vectors, known = transition_vectors([[row[i] for i in s] for s in sessions], len(tokens), **settings)
    if not known.any():
        raise TeacherError(f"{dataset}: its training sessions have no two items together, so there "
                           "are no transitions to teach; pretrain without a teacher: --transition_teacher=None")
    path = FeatureSource(TRANSITION_TEACHER).path(Path(data_dir), dataset)
    producer = {"name": "transition-teacher", **settings, "sessions": len(sessions),
                "items_without_transitions": int((~known).sum())}
    write_feature_file(path, vectors[known], [t for t, k in zip(tokens, known) if k], dataset,
                       Path(data_dir), producer)
    return path


def teacher_file(config, data_dir, dataset):
    """``(path, metadata)`` of the teacher file of pretrain settings ``config`` (``None``
    without a teacher); a missing or unusable one is refused with the command that makes it.
    ``teacher-transitions`` is written here when it is missing or its dataset changed (with the
    settings it had)."""
    from recbole_tpad.data.features import FeatureFileError, is_current, read_metadata
    from recbole_tpad.data.sources import FeatureSource

    name = config.get("transition_teacher")
    if not name:
        return None
    path = FeatureSource(str(name)).path(data_dir, dataset)
    if name == TRANSITION_TEACHER and not is_current(path, dataset, data_dir):
        print(f"writing the transition teacher {path} from {dataset}'s training sessions", flush=True)
        try:  # rewritten for changed data: with the settings it was written with
            made = read_metadata(path)["producer"]
        except (FeatureFileError, FileNotFoundError):
            made = {}
        settings = {k: made.get(k) for k in TRANSITION_SETTINGS} if made.get("name") == "transition-teacher" else {}
        export_transition_teacher(data_dir, dataset, **settings)
    if not path.is_file():
        raise TeacherError(f"transition_teacher={name}: {path} does not exist. Train an ID model "
                           f"(python run_recbole_tpad.py --model=SASRecPub --dataset={dataset}), then "
                           f"write its item vectors: python -m recbole_tpad.distill.teacher "
                           f"--checkpoint=saved/<run>.pth")
    try:
        return path, read_metadata(path)
    except FeatureFileError as error:
        raise TeacherError(f"transition_teacher={name}: {error}") from None


def teacher_checksum(config, data_dir, dataset):
    """The teacher file's array checksum (``None`` without a teacher): part of the work
    folder's key, so features made with another teacher are never taken as current."""
    found = teacher_file(config, data_dir, dataset)
    return None if found is None else found[1]["array_sha256"]


def load_teacher(config, data_dir, dataset, item_ids):
    """``(vectors [N, d] float32, known [N] bool)`` aligned to ``item_ids`` (the pretrainer's
    item order); items the teacher has no vector for are zero and not known."""
    from recbole_tpad.data.features import load_feature_table

    path, _ = teacher_file(config, data_dir, dataset)
    table, report = load_feature_table(path, dataset, data_dir, ["[PAD]"] + list(item_ids),
                                       missing_feature="zero")
    known = np.ones(len(item_ids), dtype=bool)
    row = {item: k for k, item in enumerate(item_ids)}
    for item in report.missing:
        known[row[item]] = False
    return table[1:], known


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a stage-2 teacher (transition_teacher): a "
                                                 "trained ID model's item vectors, or the training "
                                                 "sessions' transitions factorised")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="saved/<run>.pth of an ID model (writes teacher-<model>)")
    source.add_argument("--transitions", action="store_true",
                        help=f"factorise the training sessions (writes {TRANSITION_TEACHER}; needs --dataset)")
    parser.add_argument("--name", default=None, help="feature source name (default teacher-<model>)")
    parser.add_argument("--dataset", help="with --transitions: the dataset")
    parser.add_argument("--data_path", default="dataset/", help="with --transitions: where datasets live")
    for key, kind in (("window", int), ("decay", float), ("dim", int)):
        parser.add_argument(f"--{key}", type=kind, default=None,
                            help=f"with --transitions (default {TRANSITION_SETTINGS[key]})")
    args = parser.parse_args(argv)
    from recbole_tpad.checkpoints import CheckpointError
    from recbole_tpad.data.locate import UnknownDatasetError, ensure_dataset

    try:
        if args.transitions:
            if not args.dataset:
                raise TeacherError("--transitions needs --dataset=<name>")
            path = export_transition_teacher(ensure_dataset(args.dataset, args.data_path), args.dataset,
                                             args.window, args.decay, args.dim)
        else:
            path = export_teacher(args.checkpoint, args.name)
    except (TeacherError, CheckpointError, UnknownDatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}; pretrain with --transition_teacher={path.name.split('.')[-2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
