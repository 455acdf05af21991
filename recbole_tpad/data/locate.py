"""Finding a dataset's atomic files, linking a shared copy in, or generating the demo.

A dataset ``D`` is ready when ``<data_path>/D/`` holds ``D.inter`` or its benchmark split
files. Otherwise, in order: a folder ``D`` in a shared data directory
(``$TPAD_SHARED_DATA``, ``../shared/data``) is linked in; ``demo`` is generated; anything
else is an :class:`UnknownDatasetError` listing the datasets that exist and saying how to add one.
"""

import logging
import os
from pathlib import Path

from dataset_tools.atomic import SPLIT_SUFFIXES, dataset_files
from recbole_tpad.config import available_datasets_with_properties
from recbole_tpad.paths import shared_data_dirs

logger = logging.getLogger(__name__)

GENERATED = ("demo",)


class UnknownDatasetError(FileNotFoundError):
    """No atomic files for a dataset, and no way to get them here."""


def is_ready(dataset_dir, name):
    files = dataset_files(dataset_dir, name)
    return ".inter" in files or all(s in files for s in SPLIT_SUFFIXES)


def datasets_in(data_path):
    """Names of the ready datasets under ``data_path``."""
    root = Path(data_path)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and is_ready(p, p.name))


def known_datasets(data_path):
    """Every dataset name this installation can run: ready, shareable, generated or configured."""
    names = set(datasets_in(data_path)) | set(GENERATED) | set(available_datasets_with_properties())
    for shared in shared_data_dirs():
        names |= set(datasets_in(shared))
    return sorted(names)


def link_dataset(source, target, name):
    """Link each atomic file of ``source`` into a real folder ``target``.

    Files, not the folder: the shared copy may be read-only, and artefacts derived from the
    dataset (feature files) are written beside the links.
    """
    if target.is_symlink():  # an older whole-folder link
        target.unlink()
    target.mkdir(parents=True, exist_ok=True)
    for suffix, path in dataset_files(source, name).items():
        link = target / path.name
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(path.resolve(), link)
    logger.info("linked the atomic files of %s from %s into %s", name, source.resolve(), target)


def ensure_dataset(name, data_path):
    """Make ``<data_path>/<name>/`` ready and return that folder."""
    target = Path(data_path) / name
    if is_ready(target, name):
        return target
    for shared in shared_data_dirs():
        source = shared / name
        if is_ready(source, name):
            link_dataset(source, target, name)
            return target
    if name == "demo":
        from dataset_tools.demo import generate_demo

        generate_demo(target)
        return target
    raise UnknownDatasetError(
        f"dataset {name!r} not found: no {name}.inter (or {name}.train/valid/test.inter) in {target}. "
        f"Known datasets: {', '.join(known_datasets(data_path)) or 'none'}. "
        f"To add one, put RecBole atomic files in {target}/ (see README, 'Add your own dataset'), "
        f"or set TPAD_SHARED_DATA to a folder that holds {name}/. amazon-sports comes from "
        "../shared/data/amazon-sports beside the checkout.")
