"""TPADDataset: RecBole's ``SequentialDataset`` plus the item-feature table, loaded and checked once.

The pattern of RecBole's UniSRec: side data belongs to the dataset, so the model only reads
``dataset.item_features`` (``float32 [item_num, dim]`` tensor aligned to RecBole's internal
item ids, row 0 = padding) and never opens a file. The table is read through the feature-file
contract (:func:`recbole_tpad.data.features.load_feature_table`: dataset checksum, item set,
dimension, NaN rows) when the dataset is built; its copies (the train / valid / test splits)
share it. The default text-encoder file is built first when it is missing or stale
(:func:`ensure_default_features`).

``import recbole_tpad`` registers the class with RecBole as ``TPADDataset`` and
``ContentKNNDataset``, so RecBole's own ``create_dataset`` (and ``run_recbole``) finds it too.
"""


from logging import getLogger

import torch
from recbole.data.dataset import SequentialDataset

from recbole_tpad.data.features import load_feature_table
from recbole_tpad.data.sources import FeatureSource, dataset_folder, feature_file

#: The producer :func:`ensure_default_features` can build on its own (no pretraining needed).
BUILDABLE_SOURCE = "text-minilm"


def reads_features(config):
    """True when the run's model reads an item-feature table (TPAD unless ``use_features`` is
    off, ContentKNN always; an ID-only TPAD or SASRecPub with a ``content_prior`` weight)."""
    explicit_prior = bool(config["content_prior"]) and config["content_prior"] != "valid"
    return (config["use_features"] is not False or explicit_prior) \
        and config["feature_source"] is not None


def ensure_default_features(config):
    """Make the run's feature file when it is missing or out of date (``build_missing_features``).

    ``text-minilm``: the MiniLM encoder is run (seconds to minutes). A pretrainer source
    (``tpad-zU``, ``tpad-zT``, ...): the TPAD pretrainer is run first, with its own progress bars
    and time estimates, resumable from its checkpoints, with ``properties/pretrain/`` settings,
    but only when the file is missing or was made from other data: a current file is used as it
    is, whatever settings made it. A file given explicitly (``feature_file``) is the user's and
    is checked, never replaced. Returns the path, or ``None`` when nothing is built.
    Unset (RecBole's own models, whose yaml has no such key) means the plugin's default, on:
    a SASRec started from, or ranking with, a table gets it built as a TPAD would.
    """
    if not reads_features(config) or config["feature_file"] \
            or config["build_missing_features"] is False:
        return None
    source = FeatureSource.parse(config["feature_source"])
    if source.pretrained:
        return _ensure_pretrained_features(config, source)
    if source.name != BUILDABLE_SOURCE:
        return None
    from recbole_tpad.text.encoder import DEFAULT_ENCODER, build_text_features

    return build_text_features(config["dataset"], dataset_folder(config), feature_file(config),
                               encoder=config["text_encoder"] or DEFAULT_ENCODER,
                               progress=bool(config["show_progress"]))


def _ensure_pretrained_features(config, source):
    from recbole_tpad.data.features import is_current

    path = feature_file(config)
    folder = dataset_folder(config)
    if is_current(path, config["dataset"], folder):
        return path
    from recbole_tpad.distill.runs import ensure_pretrained

    getLogger().warning(
        f"{path.name} is missing or was made from other data: running the TPAD pretrainer on "
        f"{config['dataset']} first (properties/pretrain/; resumable: a re-run continues from its "
        "last checkpoint). To skip it, pass --feature_source=text-minilm or --build_missing_features=False")
    ensure_pretrained(config["dataset"], {
        "data_path": str(folder.parent), "checkpoint_dir": config["checkpoint_dir"],
        "feature_prefix": source.producer, "show_progress": bool(config["show_progress"])},
        views=(source.view,))
    return path


class _OtherSource:
    """``config`` read as if it named ``source``'s table, with no explicit file or dimension."""

    def __init__(self, config, source):
        self.config, self.source = config, source

    def __getitem__(self, key):
        overridden = {"feature_source": self.source, "feature_file": None, "feature_dim": None,
                      "use_features": True}
        return overridden[key] if key in overridden else self.config[key]


def load_item_features(config, dataset, source=None):
    """``(table, report)``: the run's feature file (built first where it can be, see
    :func:`ensure_default_features`) as a tensor whose row ``i`` is ``dataset``'s item id ``i``
    (row 0 padding), and its :class:`~recbole_tpad.data.features.FeatureReport`. For any
    RecBole dataset: a model whose dataset holds no table (RecBole's own) gets one this way.
    ``source``: another feature source's table than the run's (e.g. a content prior ranking by
    MiniLM beside a model that reads z_U)."""
    if source is not None:
        config = _OtherSource(config, source)
    ensure_default_features(config)
    table, report = load_feature_table(
        feature_file(config), config["dataset"], dataset_folder(config),
        dataset.field2id_token[dataset.iid_field], expected_dim=config["feature_dim"],
        missing_feature=config["missing_feature"] or "mean")
    return torch.from_numpy(table), report


class TPADDataset(SequentialDataset):
    """A sequential dataset that also holds ``item_features`` (``None`` when the model reads none)
    and, for ``item_attributes``, ``item_attributes`` (:class:`recbole_tpad.data.attributes.ItemAttributes`)."""

    def __init__(self, config):
        super().__init__(config)
        self.item_features, self.feature_report, self.item_attributes = None, None, None
        self.new_item_share = None  # set on the splits by build()
        if config["item_attributes"] and reads_features(config):
            from recbole_tpad.data.attributes import load_item_attributes

            self.item_attributes = load_item_attributes(
                dataset_folder(config), config["dataset"], self.field2id_token[self.iid_field],
                list(config["item_attributes"]))
        if reads_features(config):
            self.item_features, self.feature_report = load_item_features(config, self)

    def build(self):
        """RecBole's splits, each knowing :attr:`new_item_share`: the share of validation targets
        that are items with no training interaction (Laplace-smoothed), which TPAD's
        ``new_item_share: valid`` takes as the prior that the next item is a new one."""
        splits = super().build()
        if len(splits) >= 2:
            from recbole_tpad.evaluation import items_seen_in_training

            seen = items_seen_in_training(splits[0], self.config)
            targets = splits[1].inter_feat[self.iid_field].long()
            new = 0 if self.config["drop_cold_targets"] else int((~seen[targets]).sum())
            share = (new + 1) / (len(targets) + 2)
            for split in splits:
                split.new_item_share = share
        return splits

    def __str__(self):
        text = super().__str__()
        if self.feature_report is not None:
            text += "\n" + self.feature_report.summary()
        return text


def create_dataset(config):
    """The dataset of a run: :class:`TPADDataset` for models that read item features, RecBole's
    class otherwise. Unlike RecBole's ``create_dataset`` it never loads a pickled dataset from
    ``checkpoint_dir`` (a file anyone could have put there): the dataset is always built from
    its atomic files."""
    from recbole_tpad.registry import dataset_class

    return dataset_class(config)(config)
