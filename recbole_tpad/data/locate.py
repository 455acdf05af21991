"""Finding a dataset's atomic files, linking a shared copy in, or generating the demo.

A dataset ``D`` is ready when ``<data_path>/D/`` holds ``D.inter`` or its benchmark split
files. Otherwise, in order: a folder ``D`` in a shared data directory
(``$TPAD_SHARED_DATA``, ``../shared/data``) is linked in; ``demo`` is generated; anything
else is an :class:`UnknownDatasetError` listing the datasets that exist and saying how to add one.
"""

import json
import logging
import os
from pathlib import Path

from dataset_tools.atomic import SPLIT_SUFFIXES, dataset_checksum, dataset_files
from recbole_tpad.config import available_datasets_with_properties
from recbole_tpad.paths import shared_data_dirs

logger = logging.getLogger(__name__)

GENERATED = ("demo",)
#: Datasets derived from a dataset X by name: ``X<suffix>`` is built from X by the builder,
#: whose options are recorded in ``NAME<meta suffix>`` and reused on a rebuild.
DERIVED = {
    "-session": (".sessions.json", "dataset_tools.sessions:sessionize",
                 ("gap", "min_length", "max_length", "min_item_count", "seed", "max_prefix", "ratios")),
    "-cold": (".cold.json", "dataset_tools.cold:cold_split", ("share", "seed", "max_prefix")),
}


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


def _derived_source(name, data_path):
    """``(suffix, folder of X)`` for a derived ``X<suffix>`` whose X exists or can be had."""
    for suffix in DERIVED:
        if name.endswith(suffix) and len(name) > len(suffix):
            try:
                return suffix, ensure_dataset(name[: -len(suffix)], data_path)
            except UnknownDatasetError:
                return None
    return None


def ensure_derived_dataset(name, data_path, suffix, source_dir):
    """(Re)build ``X-session`` / ``X-cold`` from X when it is missing or X changed since.

    A rebuild reuses the options recorded in its metadata file, so a dataset built by hand
    (``python -m dataset_tools sessionize|cold-split``) with other options keeps them.
    """
    import importlib

    meta_suffix, builder, option_names = DERIVED[suffix]
    target = Path(data_path) / name
    source = source_dir.name
    meta_file = target / f"{name}{meta_suffix}"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else None
    if is_ready(target, name) and (meta is None or meta.get("source") != source):
        return target  # made another way: not ours to rebuild
    current = dataset_checksum(source_dir, source)
    if is_ready(target, name) and meta.get("source_checksum") == current:
        return target
    options = {k: meta[k] for k in option_names if meta and k in meta}
    if options.get("gap") == "calendar day":
        options["gap"] = None
    if "ratios" in options:
        options["ratios"] = tuple(options["ratios"])
    logger.info("%s %s from %s (%s)", "rebuilding" if meta else "building", name, source,
                options or "default options")
    module, function = builder.split(":")
    getattr(importlib.import_module(module), function)(source_dir, source, target, name, **options)
    return target


def ensure_dataset(name, data_path):
    """Make ``<data_path>/<name>/`` ready and return that folder."""
    target = Path(data_path) / name
    derived = _derived_source(name, data_path)
    if derived is not None:
        return ensure_derived_dataset(name, data_path, *derived)
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


def inferred_settings(dataset_dir, name):
    """RecBole settings read off a dataset's own headers, for datasets without a properties yaml.

    RecBole's defaults load only ``user_id`` and ``item_id`` (no time, so no time order) and
    expect ``.inter``; this loads every interaction column, takes ``session_id`` as the
    sequence field when there is no ``user_id``, and uses the split files when present.
    """
    from dataset_tools.atomic import parse_header

    files = dataset_files(dataset_dir, name)
    splits = all(s in files for s in SPLIT_SUFFIXES)
    # benchmark split files win over a NAME.inter beside them (dataset_tools demo and
    # sessionize write both: the .inter is the raw source, the splits are the protocol)
    source = files[".train.inter"] if splits else files[".inter"]
    with open(source, encoding="utf-8") as handle:
        columns = [n for n, _ in parse_header(handle.readline())]
    settings = {"load_col": {"inter": columns}}
    if "user_id" not in columns and "session_id" in columns:
        settings["USER_ID_FIELD"] = "session_id"
    if splits or "item_id_list" in columns:
        settings["benchmark_filename"] = ["train", "valid", "test"]
        settings["alias_of_item_id"] = ["item_id_list"]
    return settings


def protocol_description(config):
    """One line saying how a run splits and scores its data (logged at the start of a run)."""
    name = config["dataset"]
    if config["benchmark_filename"]:
        split = (f"the benchmark split files {name}.{'/'.join(config['benchmark_filename'])}.inter "
                 "(valid/test cases: the last item given its prefix)")
    else:
        split = (f"{name}.inter split by eval_args {config['eval_args']['split']} "
                 f"(grouped by {config['eval_args']['group_by']}, order {config['eval_args']['order']})")
    ranking = "full ranking" if "full" in str(config["eval_args"]["mode"]) else "sampled ranking"
    history = ", history items never ranked" if config["exclude_history"] else ""
    return f"protocol: {split}; {ranking}{history}"
