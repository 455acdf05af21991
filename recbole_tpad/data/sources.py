"""Where a feature source's file lives: the one place a feature file's name is made.

A ``feature_source`` names a producer and, for the pretrainer, a view: ``text-minilm`` (the
MiniLM text encoder), ``tpad-zU`` / ``tpad-zK`` / ``tpad-zT`` (the pretrainer's distilled,
stage-1 and transfer views), ``tpad-noHMIE-zU`` (an ablation's own prefix). Its file is
``<dataset folder>/<dataset>.<feature_source>.npy`` (with the contract's ``.json`` beside it).
The pretrainer writes through :meth:`FeatureSource.path`, TPAD and ContentKNN read through
:func:`feature_file`, and the comparison and its report find files through it too.
"""

from dataclasses import dataclass
from pathlib import Path

#: The pretrainer's views (``recbole_tpad.distill``).
PRETRAINER_VIEWS = ("zU", "zK", "zT")
#: Producer prefixes that mean the pretrainer (``tpad``, ``tpad-noHMIE``, ...).
PRETRAINER_PREFIX = "tpad"


@dataclass(frozen=True)
class FeatureSource:
    producer: str
    view: str = ""

    @classmethod
    def parse(cls, name):
        """``"tpad-noHMIE-zU"`` -> ``FeatureSource("tpad-noHMIE", "zU")``; ``"text-minilm"`` ->
        ``FeatureSource("text-minilm")``."""
        name = str(name)
        prefix, _, view = name.rpartition("-")
        if prefix.split("-")[0] == PRETRAINER_PREFIX and view in PRETRAINER_VIEWS:
            return cls(prefix, view)
        return cls(name)

    @property
    def name(self):
        return f"{self.producer}-{self.view}" if self.view else self.producer

    @property
    def pretrained(self):
        """Made by the TPAD pretrainer (so the comparison runs it first when missing)."""
        return bool(self.view)

    def path(self, dataset_dir, dataset):
        return Path(dataset_dir) / f"{dataset}.{self.name}.npy"

    def for_pretrain_seed(self, seed, default_seed):
        """The source a run reads when its seed varies the pretraining too (``compare
        --pretrain-per-seed``): ``tpad-zU`` -> ``tpad-s2021-zU``. The default pretraining seed's
        files keep their name, so they are the files a run without that option reads."""
        if not self.pretrained or seed == default_seed:
            return self
        return FeatureSource(f"{self.producer}-s{seed}", self.view)

    def without_pretrain_seed(self, seed):
        """The inverse of :meth:`for_pretrain_seed`: ``tpad-s2021-zU`` (seed 2021) -> ``tpad-zU``
        (so the report knows seeds of one row when each read its own pretraining)."""
        suffix = f"-s{seed}"
        if self.pretrained and self.producer.endswith(suffix):
            return FeatureSource(self.producer[:-len(suffix)], self.view)
        return self


def dataset_folder(config):
    """The dataset's own folder. In a RecBole Config (after ``_set_default_parameters``)
    ``data_path`` is already ``<root>/<dataset>``; this is the one helper that says so."""
    return Path(config["data_path"])


def feature_file(config):
    """The feature file a model reads: ``feature_file`` when set, else the file of
    ``feature_source`` in the dataset's folder."""
    if config["feature_file"]:
        return Path(config["feature_file"])
    return FeatureSource.parse(config["feature_source"]).path(dataset_folder(config), config["dataset"])
