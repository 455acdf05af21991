"""A collaborative teacher for stage 2: the item vectors of a trained ID model.

On amazon-sports the Transfer-MLLM learns the items' content similarity in stage 2, not their
transitions (its held-out next-item Recall@20 equals the last item's content alone), while the
item vectors of a trained SASRec rank next items from the last item's vector alone at 2.8x
popularity, and a map from the frozen content states to those vectors keeps most of that
(2.3x; README, "A collaborative teacher"). So ``transition_teacher: teacher-<model>`` gives stage 2 those vectors as a second
transition signal: z_T is aligned with them by InfoNCE
(:meth:`~recbole_tpad.distill.objectives.TransitionDistillation.teacher_loss`) and AMIE
carries what z_T learns into z_U, as it carries the session transitions.

:func:`export_teacher` writes the vectors as a feature file (``<dataset>.teacher-<model>.npy``,
the same contract as every feature file: item ids, dataset checksum, array checksum), with the
checkpoint's checksum in its producer, so a pretraining run on a teacher is keyed by the
teacher's contents and a re-trained teacher makes its features stale.

    python -m recbole_tpad.distill.teacher --checkpoint=saved/SASRecPub-X.pth
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from recbole_tpad.distill.settings import PretrainConfigError

#: Feature sources whose name starts so are teachers (``teacher-sasrecpub``).
TEACHER_PREFIX = "teacher"


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


def teacher_file(config, data_dir, dataset):
    """``(path, metadata)`` of the teacher file of pretrain settings ``config`` (``None``
    without a teacher); a missing or unusable one is refused with the command that makes it."""
    from recbole_tpad.data.features import FeatureFileError, read_metadata
    from recbole_tpad.data.sources import FeatureSource

    name = config.get("transition_teacher")
    if not name:
        return None
    path = FeatureSource(str(name)).path(data_dir, dataset)
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
    parser = argparse.ArgumentParser(description="Write a trained ID model's item vectors as a "
                                                 "stage-2 teacher (transition_teacher)")
    parser.add_argument("--checkpoint", required=True, help="saved/<run>.pth of an ID model")
    parser.add_argument("--name", default=None, help="feature source name (default teacher-<model>)")
    args = parser.parse_args(argv)
    from recbole_tpad.checkpoints import CheckpointError

    try:
        path = export_teacher(args.checkpoint, args.name)
    except (TeacherError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}; pretrain with --transition_teacher={path.name.split('.')[-2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
