"""The item-feature file contract: how any producer writes item vectors and how TPAD reads them.

A feature file is a pair written atomically:

* ``NAME.npy``: ``float32`` array ``[n, dim]``, row ``k`` is the vector of ``item_ids[k]``;
* ``NAME.json``: metadata: ``format``, ``format_version``, ``dataset``, ``dataset_checksum``
  (:func:`dataset_tools.atomic.dataset_checksum` of the files it was made from),
  ``item_field``, ``item_ids`` (original tokens, in row order), ``dim``, ``producer``
  (``name``, ``config``), ``array_sha256``, ``created`` and ``versions``.

:func:`load_feature_table` aligns the rows to RecBole's internal item ids through
``dataset.field2id_token`` (row 0 = ``[PAD]`` = zeros) and refuses, with a
:class:`FeatureFileError` that says what to do, a missing or half-written file, another
dataset, changed data, another item set, a wrong dimension and NaN/inf rows.
Items of the dataset that have no row get the fallback vector (``missing_feature``: the mean
of the present rows, or zeros) and are counted in the returned report.
"""

import datetime
import functools
import hashlib
import json
import logging
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dataset_tools.atomic import dataset_checksum, publish

FORMAT = "recbole-tpad-features"
FORMAT_VERSION = 1
FALLBACKS = ("mean", "zero")
#: The commands that write a feature file, quoted in errors: the pretrainer's (tpad-* sources)
#: or the text encoder's.
PRETRAIN_COMMAND = "python run_recbole_tpad.py --stage=pretrain --dataset={dataset}"
BUILD_COMMAND = "python run_recbole_tpad.py --stage=features --dataset={dataset}"


def rebuild_command(path, dataset):
    """The command that rebuilds the file at ``path``: the pretrainer for its files."""
    from recbole_tpad.data.sources import FeatureSource

    name = Path(path).name
    source = name[len(dataset) + 1:-len(".npy")] if name.startswith(dataset + ".") else ""
    parsed = FeatureSource.parse(source)
    if parsed.pretrained:
        extra = "" if parsed.producer == "tpad" else f" --feature_prefix={parsed.producer} (with that ablation's settings)"
        return PRETRAIN_COMMAND.format(dataset=dataset) + extra
    return BUILD_COMMAND.format(dataset=dataset)

logger = logging.getLogger(__name__)


class FeatureFileError(ValueError):
    """A feature file that must not be used; the message names the file and the fix."""


def metadata_path(path):
    return Path(path).with_suffix(".json")


def _array_sha256(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


#: The packages whose numerics or decoding shape an artefact (written next to every one), so a
#: run that does not reproduce can be checked against the environment that made it.
VERSIONED_PACKAGES = ("torch", "recbole", "transformers", "tokenizers", "peft", "scipy", "pillow",
                      "recbole-tpad")


def library_versions():
    import importlib.metadata as md

    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    source = source_revision(Path(__file__).resolve().parents[2])
    if source:
        versions["recbole-tpad-source"] = source
    return versions


@functools.lru_cache(maxsize=None)
def source_revision(folder):
    """The git commit of the checkout at ``folder`` (``+changes`` when tracked files differ from
    it), or ``None`` outside a checkout (an installed wheel): the version number stays 0.1.0
    from commit to commit, and two runs of one command that part can only be told apart by the
    code that made them."""
    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    if not (Path(folder) / ".git").exists():
        return None
    try:
        commit = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if changed else "")


def write_feature_file(path, array, item_ids, dataset, dataset_dir, producer, item_field="item_id"):
    """Write ``array`` (rows = ``item_ids``) and its metadata; nothing is left half-written.

    Both files go to temporary names in the target folder first; the ``.npy`` is renamed
    before the ``.json``, and the ``.json`` holds the array's checksum, so a crash between the
    two renames is caught at load time rather than read as valid.
    """
    path = Path(path)
    array = np.asarray(array, dtype=np.float32)
    item_ids = [str(i) for i in item_ids]
    if array.ndim != 2 or array.shape[0] != len(item_ids):
        raise FeatureFileError(
            f"{path}: array of shape {array.shape} does not match {len(item_ids)} item ids")
    if len(set(item_ids)) != len(item_ids):
        raise FeatureFileError(f"{path}: item ids are not unique")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise FeatureFileError(f"{path}: {int(bad.sum())} rows hold NaN or inf "
                               f"(first items: {[item_ids[i] for i in np.flatnonzero(bad)[:5]]})")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset": dataset,
        "dataset_checksum": dataset_checksum(dataset_dir, dataset),
        "item_field": item_field,
        "n_items": len(item_ids),
        "dim": int(array.shape[1]),
        "dtype": "float32",
        "producer": producer,
        "array_sha256": _array_sha256(array),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "item_ids": item_ids,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_files = []
    try:
        fd, tmp_npy = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
        tmp_files.append(tmp_npy)
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        fd, tmp_json = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".json", dir=path.parent)
        tmp_files.append(tmp_json)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=1)
        publish(tmp_npy, path)
        publish(tmp_json, metadata_path(path))
    finally:
        for tmp in tmp_files:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def read_metadata(path):
    """The metadata of a feature file, or a :class:`FeatureFileError` saying why it is unusable."""
    path = Path(path)
    meta_file = metadata_path(path)
    if not meta_file.is_file():
        raise FeatureFileError(
            f"{path}: its metadata file {meta_file.name} is missing, so the rows cannot be "
            "matched to item ids; rebuild the feature file with the command that produced it")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FeatureFileError(f"{meta_file}: not valid JSON ({error}); rebuild the feature file")
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise FeatureFileError(
            f"{meta_file}: format {meta.get('format')!r} v{meta.get('format_version')} is not "
            f"{FORMAT!r} v{FORMAT_VERSION}; rebuild the feature file")
    return meta


def is_current(path, dataset, dataset_dir, producer=None):
    """True if ``path`` is a complete feature file for the dataset as it is now on disk
    (and, if given, made by the same producer and config): a producer can skip rebuilding."""
    try:
        meta = read_metadata(path)
        _check_source(path, meta, dataset, dataset_dir)
    except (FeatureFileError, FileNotFoundError):
        return False
    return producer is None or meta.get("producer") == producer


def _check_source(path, meta, dataset, dataset_dir):
    if not Path(path).is_file():
        raise FeatureFileError(f"feature file {path} does not exist")
    if meta.get("dataset") != dataset:
        raise FeatureFileError(
            f"{path} was made for dataset {meta.get('dataset')!r}, not {dataset!r}; point "
            f"feature_file at this dataset's features or run: {rebuild_command(path, dataset)}")
    current = dataset_checksum(dataset_dir, dataset)
    if meta.get("dataset_checksum") != current:
        raise FeatureFileError(
            f"{path} was made from other contents of dataset {dataset!r} (checksum "
            f"{str(meta.get('dataset_checksum'))[:12]} != {current[:12]} of the files in {dataset_dir}): "
            f"the data changed since; rebuild it: {rebuild_command(path, dataset)}")


@dataclass
class FeatureReport:
    """What loading did: how many dataset items had a row, and which fell back."""

    path: str
    dim: int
    producer: dict
    n_dataset_items: int
    n_found: int
    missing: list = field(default_factory=list)
    fallback: str = "mean"

    def summary(self):
        return (f"features {self.path}: dim {self.dim}, producer {self.producer.get('name')}; "
                f"{self.n_found}/{self.n_dataset_items} items have a feature row, "
                f"{len(self.missing)} use the {self.fallback} fallback")


def load_feature_table(path, dataset, dataset_dir, item_tokens, expected_dim=None,
                       missing_feature="mean", max_missing_share=0.5):
    """Read a feature file and align it to RecBole's internal item ids.

    Args:
        path: the ``.npy`` of the feature file.
        dataset, dataset_dir: the dataset the model trains on (its name and folder).
        item_tokens: ``dataset.field2id_token[item_field]``: token of internal id ``k`` at ``k``
            (``[PAD]`` at 0).
        expected_dim: refuse a file of another dimension (``None``: any).
        missing_feature: fallback for items without a row: ``mean`` or ``zero``.
        max_missing_share: refuse when more than this share of items has no row: that is a
            file made for another item set, not a few items without content.

    Returns:
        ``(table, report)``: ``float32`` array ``[len(item_tokens), dim]``, row 0 zeros.
    """
    path = Path(path)
    if missing_feature not in FALLBACKS:
        raise FeatureFileError(f"missing_feature={missing_feature!r}: use one of {FALLBACKS}")
    if not path.is_file():
        raise FeatureFileError(
            f"feature file {path} does not exist. Make it with: "
            f"python run_recbole_tpad.py --stage=pretrain --dataset={dataset} (TPAD's distilled "
            f"features, --feature_source=tpad-zU, the default) or {BUILD_COMMAND.format(dataset=dataset)} "
            "(text-encoder features, --feature_source=text-minilm), or point --feature_file at a "
            "feature file")
    meta = read_metadata(path)
    _check_source(path, meta, dataset, dataset_dir)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise FeatureFileError(f"{path}: not a readable .npy array ({error}); rebuild it")
    if not isinstance(array, np.ndarray):  # an .npz archive renamed .npy loads as NpzFile
        array.close()
        raise FeatureFileError(f"{path}: an .npz archive, not one .npy array; write the vectors "
                               "with numpy.save (or rebuild the file)")
    ids = meta.get("item_ids") or []
    dim = meta.get("dim")
    if array.ndim != 2 or array.shape != (len(ids), dim):
        raise FeatureFileError(
            f"{path}: array shape {array.shape} disagrees with its metadata "
            f"({len(ids)} items x dim {dim}); the pair is inconsistent, rebuild it")
    if meta.get("array_sha256") != _array_sha256(array.astype(np.float32, copy=False)):
        raise FeatureFileError(
            f"{path}: contents do not match the checksum in {metadata_path(path).name} "
            "(a partial write or a file replaced by hand); rebuild it")
    if expected_dim is not None and dim != expected_dim:
        raise FeatureFileError(
            f"{path}: features have dimension {dim}, the config expects feature_dim={expected_dim}; "
            "set feature_dim to match or use the matching feature file")
    if len(set(ids)) != len(ids):
        raise FeatureFileError(f"{path}: item ids in its metadata are not unique; rebuild it")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise FeatureFileError(
            f"{path}: {int(bad.sum())} rows hold NaN or inf (first items: "
            f"{[ids[i] for i in np.flatnonzero(bad)[:5]]}); rebuild it or fix its producer")

    row_of = {token: k for k, token in enumerate(ids)}
    tokens = [str(t) for t in item_tokens]
    table = np.zeros((len(tokens), dim), dtype=np.float32)
    found = np.zeros(len(tokens), dtype=bool)
    missing = []
    for internal_id, token in enumerate(tokens):
        if internal_id == 0:  # [PAD]
            continue
        row = row_of.get(token)
        if row is None:
            missing.append(token)
        else:
            table[internal_id] = array[row]
            found[internal_id] = True
    n_items = len(tokens) - 1
    if n_items and len(missing) > max_missing_share * n_items:
        raise FeatureFileError(
            f"{path}: {len(missing)} of the {n_items} items of dataset {dataset!r} have no row "
            f"(e.g. {missing[:5]}): the file was made for another item set; rebuild it with "
            f"{rebuild_command(path, dataset)}")
    if missing:
        fill = array.mean(axis=0) if missing_feature == "mean" and len(array) else 0.0
        table[1:][~found[1:]] = fill
    report = FeatureReport(str(path), dim, meta.get("producer", {}), n_items,
                           int(found.sum()), missing, missing_feature)
    (logger.warning if missing else logger.info)(report.summary())
    return table, report
