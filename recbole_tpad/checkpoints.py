"""Checkpoints that load without unpickling: RecBole's trainer state, saved so that
``torch.load(weights_only=True)`` reads it.

RecBole pickles its whole ``Config`` (classes included) into every checkpoint, so loading one
needs ``weights_only=False``: a crafted file would run code. The plugin's trainers
(:func:`recbole_tpad.trainer.plugin_trainer`) save the same state with the config as JSON text
and tensors, ints, floats and lists only, write it to a temporary file and rename it (a kill
during the save keeps the previous file), and read checkpoints with ``weights_only=True``. A
checkpoint in RecBole's own pickled format is refused with the reason, never loaded.
"""

import json
import os
import pickle
import random
import warnings
import zipfile
from enum import Enum
from pathlib import Path

import numpy as np
import torch

FORMAT = "recbole-tpad-checkpoint/1"
#: Settings a resumed run may change (how long and how verbosely it runs, where files go);
#: any other difference from the checkpoint's settings is refused, naming the keys.
RESUMABLE_CHANGES = frozenset({
    "epochs", "max_train_minutes", "stopping_step", "show_progress", "state", "checkpoint_dir",
    "data_path", "eval_batch_size", "gpu_id", "use_gpu", "device", "worker", "log_wandb",
    "saved", "validate_dataset", "build_missing_features"})
#: Settings added after checkpoints were written, each with the value that does what its
#: absence did: a checkpoint saved before the key existed resumes when the run has that value
#: (upgrading the plugin does not strand a half-trained run), and is refused with any other.
#: A new setting whose default keeps the old behaviour belongs here.
ADDED_SETTINGS = {"time_gaps": False, "time_gap_unit": 86400, "time_gap_buckets": 12}


class CheckpointError(ValueError):
    """A checkpoint that must not be loaded; the message names the file and the fix."""


def _plain(value):
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def plain_settings(config):
    """The run's settings as JSON values: what the checkpoint records and resume compares."""
    return {k: _plain(v) for k, v in config.final_config_dict.items()}


def rng_state(loader_generator=None):
    """Every global random state (torch, CUDA, Python, numpy) as tensors, ints and lists, so
    ``weights_only=True`` reads it back; with ``loader_generator``, a data loader's shuffling
    generator too. The one place the plugin's checkpoints (trainer and pretrainer) take them."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_version": random.getstate()[0],
             "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
             "numpy_pos": int(np_state[2]), "numpy_has_gauss": int(np_state[3]),
             "numpy_gauss": float(np_state[4])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if loader_generator is not None:
        state["train_loader"] = loader_generator.get_state()
    return state


def set_rng_state(state, loader_generator=None):
    """Restore :func:`rng_state` (and ``loader_generator``'s state, when it was saved); its
    tensors may come back on the GPU (a checkpoint read with ``map_location=cuda``), and torch
    takes generator states only as CPU byte tensors."""
    torch.set_rng_state(state["torch"].cpu())
    random.setstate((state["python_version"], tuple(state["python"]), None))
    np.random.set_state(("MT19937", state["numpy_keys"].cpu().numpy().astype(np.uint32),
                         state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if loader_generator is not None and "train_loader" in state:
        loader_generator.set_state(state["train_loader"].cpu())


def dataset_checksum_of(trainer):
    """The checksum of the run's atomic files (``dataset_tools.atomic.dataset_checksum``),
    computed once per trainer: a checkpoint is only valid for the item ids of the data it saw."""
    if getattr(trainer, "dataset_checksum", None) is None:
        from dataset_tools.atomic import dataset_checksum

        config = trainer.config
        try:
            trainer.dataset_checksum = dataset_checksum(config["data_path"], config["dataset"])
        except FileNotFoundError:
            trainer.dataset_checksum = ""
    return trainer.dataset_checksum


def check_same_data(state, trainer, path):
    """Refuse a checkpoint whose dataset files changed since it was trained: the item ids it
    learned would silently point at other items."""
    saved = state.get("dataset_checksum")
    if saved and saved != dataset_checksum_of(trainer):
        config = trainer.config
        raise CheckpointError(
            f"{path}: trained on other contents of dataset {config['dataset']!r} (the files in "
            f"{config['data_path']} are not the ones it saw: changed since, or another copy); "
            "its item ids would point at other items: give it the data it was trained on, or "
            "re-train on these")


def loadable_other_parameter(model):
    """RecBole's ``other_parameter()``, kept to what ``weights_only=True`` reads back (tensors
    and plain values). The rest is what the model's constructor builds from the dataset anyway:
    SASRecF names its whole feature layer (an ``nn.Module``, whose weights are in the state
    dict), EASE its scipy matrices. Saving those pickled them, and the run's own checkpoint was
    then refused when the best model was loaded for the test."""
    plain = (torch.Tensor, bool, int, float, str, type(None))
    return {key: value for key, value in model.other_parameter().items() if isinstance(value, plain)}


def save_checkpoint(path, trainer, epoch):
    """Write ``trainer``'s state atomically (temporary file, then rename)."""
    path = Path(path)
    state = {
        "format": FORMAT,
        "config": json.dumps(plain_settings(trainer.config)),
        "external_config": json.dumps(_plain(trainer.config.external_config_dict)),
        "epoch": int(epoch),
        "cur_step": int(trainer.cur_step),
        "best_valid_score": float(trainer.best_valid_score),
        "state_dict": trainer.model.state_dict(),
        "other_parameter": loadable_other_parameter(trainer.model),
        "optimizer": trainer.optimizer.state_dict() if trainer.optimizer is not None else {},
        # the loader's shuffling generator too: a resumed run sees the same batches
        "rng": rng_state(getattr(getattr(trainer, "train_loader", None), "generator", None)),
        "dataset_checksum": dataset_checksum_of(trainer),
        # the run so far (epoch wall times, validation curve), so a resumed run reports all of it
        "history": {"epoch_times": list(getattr(trainer, "epoch_times", [])),
                    "valid_curve": [dict(point) for point in getattr(trainer, "valid_curve", [])]},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, map_location="cpu"):
    """A plugin checkpoint's state, read with ``weights_only=True``; its config as a dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint. Give the saved/<run>.pth or "
                              "saved/<run>-latest.pth that a training run wrote.")
    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol says nothing useful here
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: refused: it holds Python objects that only an unpickler that runs code "
            "could load. recbole-tpad never loads such files (RecBole's own checkpoints are "
            "among them): it reads only the checkpoints its own runs write; re-train the model "
            "with this version.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(f"{path}: unreadable or cut short ({type(error).__name__}: "
                              f"{str(error)[:160]}); use the run's other checkpoint "
                              "(-latest.pth or .pth) or re-train.") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a recbole-tpad checkpoint (format "
                              f"{state.get('format') if isinstance(state, dict) else type(state).__name__!r}, "
                              f"expected {FORMAT!r}); re-train the model with this version.")
    state["config"] = json.loads(state["config"])
    state["external_config"] = json.loads(state.get("external_config", "{}"))
    return state


def record_settings(path, settings):
    """Write settings chosen after training (``content_prior: valid``'s weight and rarity) into a
    checkpoint's run settings, atomically, so the model rebuilt from it ranks as evaluated."""
    path = Path(path)
    state = load_checkpoint(path)
    state["external_config"].update(settings)
    state["config"].update(settings)
    state["config"] = json.dumps(state["config"])
    state["external_config"] = json.dumps(state["external_config"])
    tmp = path.with_name(path.name + ".part")
    torch.save(state, tmp)
    os.replace(tmp, path)


def differing_settings(saved, config):
    """``{key: (checkpoint's value, this run's value)}`` for settings a resume may not change."""
    now = plain_settings(config)
    return {k: (saved.get(k), now.get(k)) for k in sorted(set(saved) | set(now))
            if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k)
            and not (k not in saved and k in ADDED_SETTINGS and now.get(k) == ADDED_SETTINGS[k])}


def latest_checkpoint_path(best_file):
    """``saved/X.pth`` (RecBole's best model) -> ``saved/X-latest.pth`` (the last validated epoch)."""
    best_file = Path(best_file)
    return str(best_file.with_name(best_file.stem + "-latest" + best_file.suffix))


def unused_checkpoint_path(path):
    """``path``, or ``X-2.pth``, ``X-3.pth``, ...: the first name that neither a checkpoint nor
    its ``-latest`` holds. RecBole names a checkpoint by model and the second its trainer was
    built, so a second run started within that second in the same ``checkpoint_dir`` would
    overwrite the first one's files."""
    path = Path(path)
    candidate, n = path, 2
    while candidate.exists() or Path(latest_checkpoint_path(candidate)).exists():
        candidate, n = path.with_name(f"{path.stem}-{n}{path.suffix}"), n + 1
    return str(candidate)


def best_checkpoint_path(checkpoint):
    """The best-model file that belongs to a checkpoint (itself, or the one its ``-latest`` names)."""
    checkpoint = Path(checkpoint)
    if checkpoint.stem.endswith("-latest"):
        return str(checkpoint.with_name(checkpoint.stem[: -len("-latest")] + checkpoint.suffix))
    return str(checkpoint)
