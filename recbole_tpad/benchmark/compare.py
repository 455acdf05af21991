"""The comparison: models and TPAD's ablations on one dataset, under one protocol.

    python -m recbole_tpad.benchmark.compare --dataset=amazon-sports \
        --models=TPAD-zU,TPAD-text,SASRec,GRU4Rec --seeds=2020,2021 --jobs=2 --threads=1

Every (model, seed) is a *unit*: one :func:`recbole_tpad.quick_start.run` in its own process
(so its peak memory is its own, and a crash ends only that unit), with its own checkpoint
folder (an interrupted unit resumes from its last validated epoch) and its own result file
``<out>/runs/<dataset>/<label>-s<seed>.json``. A unit whose result file holds the same key
(settings, the properties files' settings, feature checksums; a comment edited in a properties
file changes nothing) is never run again; one whose earlier run differs only in a raised cap
(``epochs``, ``stopping_step``, ``max_train_minutes``) goes on from that run's last epoch
(:func:`continuable_run`). Variants that read
pretrained features run the pretrainer first, unless its files are current.
:mod:`recbole_tpad.benchmark.report` turns the result files into ``<out>/<dataset>.md``,
a CSV and PNG charts.
"""

import argparse
import hashlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

import yaml

from recbole_tpad.folder_lock import folder_owner, holder_text
from recbole_tpad.paths import properties_dir
from recbole_tpad.variants import (check_labels, pretrain_only_keys, pretrained_views,
                                   recbole_overrides, resolve_variant, with_pretrained_source)


def _result_path(out_dir, dataset, name):
    return Path(out_dir) / "runs" / dataset / f"{name}.json"


def _properties_text(raw):
    """What a properties/config file (its bytes, ``None`` if absent) contributes to a run key:
    its parsed YAML data, so a comment, a blank line or the order of keys changes nothing (its
    bytes where it does not parse)."""
    if raw is None:
        return b"-"
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    return b"yaml:" + json.dumps(data, sort_keys=True, default=str).encode()


def run_keys(model, dataset, config_dict, config_file_list=None, feature_files=()):
    """``(key, byte key)``: what makes two runs the same: the settings, the properties/config
    files' settings and the checksums of pretrained feature files they use.

    The byte key is the key of earlier releases, over the files' bytes (``-`` for an absent
    file); its stored runs are still recognised (``plan_units``), so an upgrade does not rerun
    them. Each file is read once for both.
    (Code and data changes are not in it: rerun with a new --tag after changing them.)"""
    root = properties_dir()
    from recbole_tpad.data.features import read_metadata

    settings = json.dumps(config_dict or {}, sort_keys=True, default=str).encode()
    key, byte_key = hashlib.sha256(settings), hashlib.sha256(settings)
    for path in feature_files:
        checksum = read_metadata(path)["array_sha256"].encode()
        key.update(checksum)
        byte_key.update(checksum)
    for path in [root / "overall.yaml", root / "model" / f"{model}.yaml",
                 root / "dataset" / f"{dataset}.yaml"] + [Path(p) for p in config_file_list or []]:
        raw = path.read_bytes() if path.is_file() else None
        key.update(path.name.encode() + _properties_text(raw))
        byte_key.update(path.name.encode() + (b"-" if raw is None else raw))
    return key.hexdigest(), byte_key.hexdigest()


def seeded_pretraining(overrides, seed, dataset, config_dict=None, config_file_list=None):
    """A variant's overrides when its seed varies the pretraining too (``--pretrain-per-seed``):
    the pretrainer runs with ``seed`` and writes under its own name
    (:meth:`~recbole_tpad.data.sources.FeatureSource.for_pretrain_seed`), which the run reads.
    Without this a TPAD row's seeds share one feature table, and their std leaves out how much
    the pretraining itself varies (on amazon-sports-session, more than some gaps it decided)."""
    from recbole_tpad.data.sources import FeatureSource
    from recbole_tpad.distill.settings import pretrain_config, pretrain_keys

    views = pretrained_views(overrides)
    if seed is None or not views:
        return overrides
    known = pretrain_keys()
    given = {k: v for k, v in {**(config_dict or {}), **views[0]}.items() if k in known}
    default_seed = pretrain_config(dataset, config_file_list, given)["seed"]
    source = FeatureSource.parse(overrides["feature_source"]).for_pretrain_seed(seed, default_seed)
    return {**overrides, "feature_source": source.name,
            "pretrain": {**overrides.get("pretrain", {}), "seed": seed}}


def plan_units(models, dataset, config_dict=None, seeds=(None,), out_dir="results", tag="",
               config_file_list=None, pretrain=True, pretrain_per_seed=False, pretrain_threads=None):
    """One unit per (model or variant, seed): what it runs, where its result goes, its key.
    Pretrains first where a variant reads pretrained features (skipped when current), once, or
    with ``pretrain_per_seed`` once per seed (:func:`seeded_pretraining`); ``pretrain=False``
    marks such units ``pretrain_first`` instead (``--plan``). ``pretrain_threads`` (``compare
    --threads``) is the torch threads such a pretraining uses, as the units do; without it,
    properties/pretrain's (beside a running unit, the pretraining's two threads stall)."""
    from recbole_tpad.data.features import read_metadata
    from recbole_tpad.data.locate import ensure_dataset
    from recbole_tpad.distill.settings import feature_path

    variants = [(label, model, with_pretrained_source(model, overrides, config_dict))
                for label, (model, overrides) in ((label, resolve_variant(label)) for label in models)]
    rows = [(label, model, seed,
             seeded_pretraining(overrides, seed, dataset, config_dict, config_file_list)
             if pretrain_per_seed else overrides)
            for label, model, overrides in variants for seed in seeds]
    needed = {}  # pretrain settings -> the views variants read
    for _, _, _, overrides in rows:
        views = pretrained_views(overrides)
        if views:
            needed.setdefault(json.dumps(views[0], sort_keys=True), set()).add(views[1])
    problems, not_pretrained = {}, set()
    for settings, views in needed.items():
        try:
            from recbole_tpad.distill.runs import ensure_pretrained, pretrained_current

            threads = {"threads": pretrain_threads} if pretrain_threads else {}  # bookkeeping
            args = (dataset, {**(config_dict or {}), **json.loads(settings), **threads},
                    config_file_list, tuple(sorted(views)))
            if pretrain:
                ensure_pretrained(*args)
            elif not pretrained_current(*args)[0]:
                not_pretrained.add(settings)
        except Exception as error:  # noqa: BLE001 - that variant's units fail, the others run
            problems[settings] = f"pretraining failed: {type(error).__name__}: {error}"
            print(f"{dataset}: {problems[settings]}", flush=True)
    pretrain_only = pretrain_only_keys()
    recbole_values = {k: v for k, v in (config_dict or {}).items() if k not in pretrain_only}
    units = []
    for label, model, seed, overrides in rows:
        settings = {**recbole_values, **recbole_overrides(overrides)}
        if seed is not None:
            settings["seed"] = seed
        name = f"{label}{'-' + tag if tag else ''}{f'-s{seed}' if seed is not None else ''}"
        views = pretrained_views(overrides)
        files = ()
        pretrain_settings = views and json.dumps(views[0], sort_keys=True)
        problem = views and problems.get(pretrain_settings)
        if problem:
            units.append({"label": label, "model": model, "dataset": dataset, "seed": seed,
                          "name": name, "error": problem, "result": "", "run_key": ""})
            continue
        if views and pretrain_settings in not_pretrained:
            # its key needs the features' checksum, which pretraining has yet to make
            units.append({"label": label, "model": model, "dataset": dataset, "seed": seed,
                          "name": name, "pretrain_first": True, "run_key": "",
                          "result": str(_result_path(out_dir, dataset, name))})
            continue
        if views:
            data_dir = ensure_dataset(dataset, settings.get("data_path", "dataset/"))
            files = (feature_path(data_dir, dataset, views[1], views[0]["feature_prefix"]),)
        key, byte_key = run_keys(model, dataset, settings, config_file_list, files)
        checkpoints = Path(settings.get("checkpoint_dir", "saved")).resolve() / "compare" / dataset
        if (not any((checkpoints / f"{name}-{key[:10]}").glob("*-latest.pth"))
                and any((checkpoints / f"{name}-{byte_key[:10]}").glob("*-latest.pth"))):
            key = byte_key  # a run an earlier release began under its key: resume that one
        table = read_metadata(files[0]) if files else {}
        unit = {"label": label, "model": model, "dataset": dataset, "seed": seed,
                "settings": settings, "run_key": key, "byte_key": byte_key, "name": name,
                # which feature table it read: the report pools seeds of one table only
                "feature_sha256": table.get("array_sha256"),
                # and the seed of the pretraining that wrote it: seeds whose pretraining seed is
                # their own (--pretrain-per-seed) pool although their tables differ
                "pretrain_seed": (table.get("producer", {}).get("config") or {}).get("seed"),
                "config_file_list": list(config_file_list or []),
                "result": str(_result_path(out_dir, dataset, name)),
                # RecBole's checkpoints of this unit, so an interrupted unit resumes
                "checkpoint_dir": str(checkpoints / f"{name}-{key[:10]}")}
        found = continuable_run(unit, files)
        if found:
            unit["continues"], unit["continues_changes"], unit["continues_ended"] = (
                str(found[0]), found[1], found[2])
        units.append(unit)
    return units


def _record_pretrain_seed(unit, stored):
    """Add the pretraining seed to a result stored before results recorded it (the same run:
    its key holds the table's checksum), so the report can pool it with seeds pretrained apart."""
    if unit.get("pretrain_seed") is not None and stored.get("pretrain_seed") is None:
        stored["pretrain_seed"] = unit["pretrain_seed"]
        _write_result(unit["result"], stored)


def _write_result(path, result):
    """A unit's result file, atomically (a killed write leaves the old file or none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(path)


#: The copy of a finished unit's result that its checkpoint folder keeps.
FOLDER_RESULT = "result.json"


def stored_result(unit):
    """``(result, path)``: the unit's stored result if it was run with the same key (or an
    earlier release's key over the same files' bytes), read from its ``--out`` file or else from
    the copy its checkpoint folder keeps (:data:`FOLDER_RESULT`); ``(None, None)`` if none.
    Why the copy: the folder is the run's, whatever ``--out`` a comparison writes to; without it
    a finished unit compared into another ``--out`` resumed from its last checkpoint, trained
    another epoch and read the test split again."""
    keys = {unit.get("run_key"), unit.get("byte_key")} - {None, ""}
    places = [Path(unit["result"])] if unit.get("result") else []
    if unit.get("checkpoint_dir"):
        places.append(Path(unit["checkpoint_dir"]) / FOLDER_RESULT)
    for path in places:
        if path.is_file():
            stored = json.loads(path.read_text())
            if stored.get("run_key") in keys:
                return stored, path
    return None, None


def finished_result(unit):
    """The unit's stored result under its key (:func:`stored_result`), else ``None``."""
    return stored_result(unit)[0]


def run_unit(spec_file):
    """Child process: run one unit (resuming from its last validated epoch if it has one) and
    write its result file atomically. Its peak memory is its own (one run per process)."""
    import recbole_tpad  # noqa: F401
    from recbole_tpad.folder_lock import FolderBusy, hold_folder

    unit = json.loads(Path(spec_file).read_text())
    try:
        with hold_folder(unit["checkpoint_dir"], f"compare unit {unit['name']}"):
            return _run_unit(unit)
    except FolderBusy as error:
        print(f"not running {unit['name']}: {error}", flush=True)
        return 3


def _run_unit(unit):
    import torch

    from recbole_tpad.quick_start import run

    if unit.get("threads"):
        torch.set_num_threads(int(unit["threads"]))
    settings = dict(unit["settings"], checkpoint_dir=unit["checkpoint_dir"])
    latest = sorted(Path(unit["checkpoint_dir"]).glob("*-latest.pth"), key=os.path.getmtime)
    resume = str(latest[-1]) if latest else None
    continued = None
    if not resume and unit.get("continues"):
        continued = unit["continues"]
        resume = copy_checkpoints(continued, unit["checkpoint_dir"])
    if resume:
        print(f"resuming from {resume}" + (f" (copied from {continued})" if continued else ""),
              flush=True)

    def report(epoch_idx, valid_score):
        print(f"PROGRESS epoch {epoch_idx + 1} valid {valid_score:.4f}", flush=True)

    result = run(unit["model"], unit["dataset"], unit["config_file_list"] or None, settings,
                 callback_fn=report, resume_file=resume)
    result.update(model=unit["label"], base_model=unit["model"], settings=unit["settings"],
                  run_key=unit["run_key"], resumed_from=resume, continued_from=continued,
                  feature_sha256=unit.get("feature_sha256"), pretrain_seed=unit.get("pretrain_seed"),
                  peak_rss_mb=result.pop("process_peak_rss_mb"))
    _write_result(unit["result"], result)
    _write_result(Path(unit["checkpoint_dir"]) / FOLDER_RESULT, result)
    return 0


def earlier_runs(unit):
    """Checkpoint folders of this unit's name under another run key, with an epoch to resume
    from, oldest first: what a changed setting or properties file (a plugin upgrade) leaves
    behind when the unit starts anew, so the user is told rather than left to find it."""
    import re

    own = Path(unit["checkpoint_dir"])
    if any(own.glob("*-latest.pth")) or not own.parent.is_dir():
        return []
    pattern = re.compile(re.escape(unit["name"]) + r"-[0-9a-f]{10}")
    found = [d for d in own.parent.iterdir() if d != own and pattern.fullmatch(d.name)
             and (d / "unit.json").is_file() and any(d.glob("*-latest.pth"))]
    return sorted(found, key=lambda d: max(os.path.getmtime(p) for p in d.glob("*-latest.pth")))


def continuable_run(unit, feature_files=()):
    """``(folder, {setting: [before, now]}, how it ended)``: the newest earlier run of this unit
    that it goes on from instead of starting anew, else ``None``. Why: a unit the epoch cap (or
    ``max_train_minutes``) ended while it still improved gets a new key when the cap is raised,
    and would train again from epoch 1; continuing its last validated epoch gives the run the
    raised cap would have given (a resumed run reproduces the uninterrupted one), for the
    epochs it has left. Only a run that differs in settings a resume may change
    (:data:`recbole_tpad.checkpoints.RESUMABLE_CHANGES`: ``epochs``, ``stopping_step``,
    ``max_train_minutes``, ...), whose stored key is what its settings give under today's
    properties files and feature tables (nothing else changed), that no process holds, and that
    did not end by early stopping (a fresh run would have stopped there too), unless
    ``stopping_step`` changed; the caps (:data:`CAPS`) only raised, never lowered. A
    ``max_train_minutes`` budget counts the continuing process's time alone, as on any resume."""
    from recbole_tpad.checkpoints import RESUMABLE_CHANGES

    for earlier in reversed(earlier_runs(unit)):
        spec = _unit_spec(earlier)
        try:
            before, before_key = dict(spec["settings"]), spec["run_key"]
        except (ValueError, KeyError, TypeError):
            continue
        if (spec.get("model") != unit["model"] or spec.get("dataset") != unit["dataset"]
                or list(spec.get("config_file_list") or []) != unit["config_file_list"]):
            continue
        now = unit["settings"]
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        if not changed or not set(changed) <= RESUMABLE_CHANGES or folder_owner(earlier):
            continue
        if before_key not in run_keys(unit["model"], unit["dataset"], before,
                                      unit["config_file_list"], feature_files):
            continue
        ended = _ended_by(spec)
        if ended == "early stopping" and "stopping_step" not in changed:
            continue
        changes = {k: [before.get(k), now.get(k)] for k in changed}
        caps = [k for k in CAPS if k in changed]
        if caps:  # compared as the runs see them: a cap absent from the settings is the yaml's
            files = _properties_caps(unit, caps)
            was, will = ({k: side[k] if k in side else files[k] for k in caps} for side in (before, now))
            if not all(_not_lowered(was[k], will[k]) for k in caps):
                continue
            changes.update({k: [was[k], will[k]] for k in caps})
        return earlier, changes, ended
    return None


#: the settings that end a run; a continued run may only have them raised (a run continued past
#: a lowered cap would have trained longer than one under that cap)
CAPS = ("epochs", "stopping_step", "max_train_minutes")


def _properties_caps(unit, keys):
    """The values of ``keys`` that ``unit``'s properties and config files give (what a run whose
    settings leave them out has); the same for both runs, whose keys say the files are unchanged."""
    from recbole_tpad.config import Config

    settings = {k: v for k, v in unit["settings"].items() if k not in keys}
    config = Config(model=unit["model"], dataset=unit["dataset"],
                    config_file_list=unit["config_file_list"] or None, config_dict=settings)
    return {k: config[k] for k in keys}


def _not_lowered(before, now):
    """Whether a cap went up or away (``None``: no cap)."""
    if now is None:
        return True
    try:
        return before is not None and float(now) >= float(before)
    except (TypeError, ValueError):
        return False


def _unit_spec(folder):
    """The unit spec (``unit.json``) a checkpoint folder holds; ``{}`` when it is missing or
    unreadable."""
    try:
        spec = json.loads((Path(folder) / "unit.json").read_text())
    except (OSError, ValueError):
        return {}
    return spec if isinstance(spec, dict) else {}


def _ended_by(spec):
    """How the run of a unit spec ended (its result's ``stopped_by``), ``None`` if it has no
    result under its key (interrupted)."""
    try:
        stored = stored_result(spec)[0]
    except (OSError, ValueError, TypeError):
        return None
    return stored.get("stopped_by") if stored else None


def copy_checkpoints(earlier, folder):
    """Copy the newest ``-latest`` checkpoint of ``earlier`` and its best-model file into
    ``folder`` (each written whole, then renamed); returns the copied ``-latest`` path. The
    earlier folder is left as it was: its result still stands for its own settings."""
    import shutil

    from recbole_tpad.checkpoints import best_checkpoint_path

    latest = max(Path(earlier).glob("*-latest.pth"), key=os.path.getmtime)
    Path(folder).mkdir(parents=True, exist_ok=True)
    for source in {latest, Path(best_checkpoint_path(latest))}:
        if source.is_file():
            part = Path(folder) / (source.name + ".part")
            shutil.copyfile(source, part)
            part.replace(Path(folder) / source.name)
    return str(Path(folder) / latest.name)


def _continues(unit):
    """What a unit says of the earlier run it continues."""
    changes = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in unit["continues_changes"].items())
    ended = unit.get("continues_ended")
    return (f"continues the earlier run of it in {unit['continues']} after "
            f"{_last_progress(Path(unit['continues']) / 'unit.log')}"
            + (f" (ended by the {ended}; its test split was read then)" if ended else "")
            + f", under {changes}")


def _not_resumed(earlier):
    """What a unit says of the earlier run of it that it does not resume: how to finish it, or,
    when it ended already, how and where its result is (there is nothing to finish)."""
    spec = _unit_spec(earlier)
    ended = _ended_by(spec)
    if ended:
        return (f"not resuming the earlier run of it in {earlier}: its settings or properties "
                f"files differ, so a new one starts; that run has ended ({ended}, after "
                f"{_last_progress(earlier / 'unit.log')}), its result in {spec['result']}")
    return (f"not resuming the earlier run of it in {earlier} ({_last_progress(earlier / 'unit.log')}): "
            "its settings or properties files differ, so a new one starts. To finish that one as "
            f"it was started: python -m recbole_tpad.benchmark.compare --unit={earlier / 'unit.json'}")


def unit_state(unit):
    """One line: what running this unit now would do (``--plan``), without running it."""
    if unit.get("error"):
        return f"fails before training: {unit['error']}"
    if unit.get("pretrain_first"):
        return ("pretrains first (its feature files are missing or stale for these settings), "
                "then trains from epoch 1")
    stored, where = stored_result(unit)
    if stored:
        test = stored.get("test_result", {}).get("ndcg@10")
        copy = "" if where == Path(unit["result"]) else f"; a run copies it to {unit['result']}"
        return (f"done: {stored.get('epochs_run')} epochs ({stored.get('stopped_by')}), test "
                f"ndcg@10 {test} ({where}{copy})")
    own = Path(unit["checkpoint_dir"])
    holder = folder_owner(own)
    if holder:
        return f"running now in {holder_text(holder)} ({_last_progress(own / 'unit.log')}; {own})"
    if any(own.glob("*-latest.pth")):
        return f"resumes after {_last_progress(own / 'unit.log')} ({own})"
    if unit.get("continues"):
        return _continues(unit)
    earlier = earlier_runs(unit)
    return "trains from epoch 1" + (f"; {_not_resumed(earlier[-1])}" if earlier else "")


def _last_progress(log_file):
    try:
        lines = [line for line in Path(log_file).read_text(errors="replace").splitlines()
                 if line.startswith("PROGRESS ")]
    except FileNotFoundError:
        return "starting"
    return lines[-1][len("PROGRESS "):] if lines else "loading data"


def compare(models, dataset, config_dict=None, out_dir="results", tag="", config_file_list=None,
            seeds=(None,), jobs=1, threads=None, heartbeat=60, pretrain_per_seed=False):
    """Run every unit not finished yet, ``jobs`` at a time, each in its own process (a crash
    is reported and the others go on); returns ``(results, failed units)``."""
    import subprocess

    units = plan_units(models, dataset, config_dict, seeds, out_dir, tag, config_file_list,
                       pretrain_per_seed=pretrain_per_seed, pretrain_threads=threads)
    results, pending, failed = {}, [], []
    for k, unit in enumerate(units, start=1):
        unit["index"] = f"[{k}/{len(units)}] {unit['name']} on {dataset}"
        stored, where = (None, None) if unit.get("error") else stored_result(unit)
        if unit.get("error"):
            print(f"{unit['index']}: FAILED: {unit['error']}", flush=True)
            failed.append(unit)
        elif stored:
            copied = where != Path(unit["result"])  # finished for another --out: the folder's copy
            if copied:
                _write_result(unit["result"], stored)
            print(f"{unit['index']}: done earlier ({unit['result']}"
                  + (f", copied from {where}" if copied else "") + ")", flush=True)
            _record_pretrain_seed(unit, stored)
            results[unit["name"]] = stored
        else:
            pending.append(unit)
            if unit.get("continues"):
                print(f"{unit['index']}: {_continues(unit)}", flush=True)
            elif earlier := earlier_runs(unit):
                print(f"{unit['index']}: {_not_resumed(earlier[-1])}", flush=True)
    running = []
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    last_beat = time.time()
    while pending or running:
        while pending and len(running) < max(1, jobs):
            unit = pending.pop(0)
            holder = folder_owner(unit["checkpoint_dir"])
            if holder:  # the same unit, started by another compare (or its --unit command)
                print(f"{unit['index']}: not started twice: {unit['checkpoint_dir']} is in use by "
                      f"{holder_text(holder)}; its result is read back when a later run finds it",
                      flush=True)
                failed.append(unit)
                continue
            Path(unit["checkpoint_dir"]).mkdir(parents=True, exist_ok=True)
            spec = Path(unit["checkpoint_dir"]) / "unit.json"
            spec.write_text(json.dumps(dict(unit, threads=threads), indent=1, default=str))
            log = Path(unit["checkpoint_dir"]) / "unit.log"
            with open(log, "ab") as handle:
                process = subprocess.Popen(
                    [sys.executable, "-m", "recbole_tpad.benchmark.compare", f"--unit={spec}"],
                    stdout=handle, stderr=subprocess.STDOUT, env=env)
            running.append((unit, process, log, time.time()))
            print(f"{unit['index']}: running (log {log})", flush=True)
        time.sleep(0.5)
        for entry in list(running):
            unit, process, log, started = entry
            if process.poll() is None:
                continue
            running.remove(entry)
            stored = finished_result(unit)
            if process.returncode == 0 and stored:
                results[unit["name"]] = stored
                print(f"{unit['index']}: finished in {time.time() - started:.0f}s, "
                      f"{stored['epochs_run']} epochs ({stored.get('stopped_by')}), test ndcg@10 "
                      f"{stored['test_result'].get('ndcg@10')}", flush=True)
            else:
                failed.append(unit)
                tail = Path(log).read_text(errors="replace").strip().splitlines()[-1:]
                print(f"{unit['index']}: FAILED (exit {process.returncode}): "
                      f"{tail[0] if tail else ''} (log {log})", flush=True)
        if running and time.time() - last_beat > heartbeat:
            last_beat = time.time()
            for unit, _, log, started in running:
                print(f"{unit['index']}: {_last_progress(log)}, {time.time() - started:.0f}s",
                      flush=True)
    ordered = [results[u["name"]] for u in units if u["name"] in results]
    return ordered, failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", help="dataset name (a folder under data_path, shared, or demo)")
    parser.add_argument("--models", default="TPAD,SASRec,GRU4Rec,SRGNN",
                        help="models and variants (properties/variants.yaml), comma-separated")
    parser.add_argument("--seeds", default="", help="comma-separated seeds (default: the config's seed)")
    parser.add_argument("--jobs", type=int, default=1, help="units run at once, each in its own process")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per unit, and of a pretraining it starts first")
    parser.add_argument("--out", default="results")
    parser.add_argument("--tag", default="", help="suffix of the report and result files")
    parser.add_argument("--note", default="", help="a sentence written under the table (how it was run)")
    parser.add_argument("--pretrain-per-seed", action="store_true",
                        help="each seed of a row on pretrained features pretrains its own (seed "
                             "s: <prefix>-s<s>-<view> files; the default pretraining seed keeps "
                             "the plain files), so the row's std includes the pretraining's")
    parser.add_argument("--plan", action="store_true",
                        help="say what each unit would do (done, resume from which epoch, start, "
                             "pretrain first) and run nothing")
    parser.add_argument("--unit", help=argparse.SUPPRESS)  # a child process runs one unit
    args, extra = parser.parse_known_args(argv)
    if args.unit:
        return run_unit(args.unit)
    if not args.dataset:
        parser.error("--dataset is required")

    import recbole_tpad  # noqa: F401
    from recbole_tpad.benchmark.report import write_report
    from recbole_tpad.config import parse_cli_values

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()] or [None]
    except ValueError:
        parser.error(f"--seeds={args.seeds!r}: give whole numbers separated by commas, e.g. 2020,2021")
    try:
        settings = parse_cli_values(extra)
        check_labels(args.models.split(","))
    except ValueError as error:  # a bad --key=value or label: one line, not a traceback
        parser.error(str(error))
    if args.plan:
        units = plan_units(args.models.split(","), args.dataset, settings, seeds, args.out,
                           args.tag, pretrain=False, pretrain_per_seed=args.pretrain_per_seed)
        for k, unit in enumerate(units, start=1):
            print(f"[{k}/{len(units)}] {unit['name']} on {args.dataset}: {unit_state(unit)}")
        return 0
    results, failed = compare(args.models.split(","), args.dataset, settings,
                              args.out, args.tag, seeds=seeds, jobs=args.jobs, threads=args.threads,
                              pretrain_per_seed=args.pretrain_per_seed)
    if results:
        command = "python -m recbole_tpad.benchmark.compare " + shlex.join(
            argv if argv is not None else sys.argv[1:])
        report = write_report(results, args.dataset, args.out, args.tag, command, args.note,
                              missing=[u["name"] for u in failed])
        print(report.read_text())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
