"""The pretrainer's settings, read once: ``properties/pretrain/`` yaml < files < command line,
checked before any model loads; the run's work folder (one per pretrainer version, result
settings and dataset contents); and whether a run's feature files are current.
"""

import hashlib
import json
from pathlib import Path

import yaml

from recbole_tpad.data.sources import FeatureSource
from recbole_tpad.distill.objectives import SESSION_QUERIES
from recbole_tpad.mllm.backbone import POOLINGS
from recbole_tpad.paths import properties_dir

#: Bumped whenever a change makes old checkpoints and caches invalid (it is in the work folder's
#: name, so a new version never resumes an old run). 2: standardised heads, unit-vector CLUB;
#: 3: LoRA weights checkpointed per adapter through peft's get/set_peft_model_state_dict.
PRETRAINER_VERSION = 3
#: Keys outside the pretrain yaml that a run may still carry (RecBole's, from shared files).
PASSTHROUGH = {"model", "dataset", "state"}


#: Settings that change how a run is done, not what it computes (not in the work folder's key).
BOOKKEEPING = ("show_progress", "threads", "checkpoint_every", "data_path", "checkpoint_dir",
               "feature_prefix", "device")


#: Settings added after runs existed, with the value that reproduces what those runs did.
LATER_SETTINGS = {"precision": "fp32", "stage2_targets": "last", "session_query": "state",
                  "transition_teacher": None, "teacher_weight": 1.0, "item_pooling": "last"}


def result_settings(config):
    """The settings a pretraining result depends on. A later setting at the value every run
    had before it existed (:data:`LATER_SETTINGS`) is left out, so those runs' work folders
    and features stay current."""
    return {k: v for k, v in config.items()
            if k not in BOOKKEEPING and not (k in LATER_SETTINGS and v == LATER_SETTINGS[k])}


DEVICES = "auto | cpu | cuda | cuda:N"
PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(config):
    """``(device, precision)`` of a run: ``device: auto`` is the first CUDA GPU when torch sees
    one, else the CPU; ``precision: auto`` is bf16 autocast on a GPU that supports it, else fp32.
    A device or precision this machine cannot give is refused with what it has."""
    import torch

    name = str(config.get("device") or "auto")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == "auto":
        name = "cuda" if gpus else "cpu"
    if name.startswith("cuda"):
        index = name.partition(":")[2]
        if not gpus:
            raise PretrainConfigError(f"device={name}: torch {torch.__version__} sees no CUDA GPU "
                                      "here; use device=cpu (or auto)")
        if index and (not index.isdigit() or int(index) >= gpus):
            raise PretrainConfigError(f"device={name}: this machine has {gpus} GPU(s), cuda:0 to "
                                      f"cuda:{gpus - 1}")
    elif name != "cpu":
        raise PretrainConfigError(f"device={name!r}: use {DEVICES}")
    precision = str(config.get("precision") or "auto")
    if precision not in PRECISIONS:
        raise PretrainConfigError(f"precision={precision!r}: use one of {', '.join(PRECISIONS)}")
    on_gpu = name.startswith("cuda")
    if precision == "auto":
        precision = "bf16" if on_gpu and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "bf16" and not (on_gpu and torch.cuda.is_bf16_supported()):
        raise PretrainConfigError("precision=bf16 needs a GPU with bf16 support (autocast); "
                                  f"on {name} use fp32 (or auto)")
    return name, precision


class PretrainConfigError(ValueError):
    """An unknown or invalid pretrain setting; the message lists what exists."""


def pretrain_keys():
    """Every setting the pretrainer knows: the keys of ``properties/pretrain/overall.yaml``."""
    return set(yaml.safe_load((properties_dir() / "pretrain" / "overall.yaml").read_text()))


def work_dir_for(dataset, config, data_dir):
    """A run's work folder: one per (pretrainer version, result settings, dataset contents and,
    with a ``transition_teacher``, the teacher's vectors)."""
    from dataset_tools.atomic import dataset_checksum
    from recbole_tpad.distill.teacher import teacher_checksum

    parts = [PRETRAINER_VERSION, result_settings(config), dataset_checksum(data_dir, dataset)]
    teacher = teacher_checksum(config, data_dir, dataset)
    if teacher:  # absent without one, so older runs keep their folders
        parts.append(teacher)
    key = json.dumps(parts, sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return Path(config["checkpoint_dir"]).resolve() / "pretrain" / f"{dataset}-{digest}"


def features_current(dataset, config, data_dir, views=("zU", "zK", "zT")):
    """True when this run's feature files (``views`` of them) are already written: same
    pretrainer version, same result settings, same work folder, unchanged dataset."""
    from recbole_tpad.data.features import is_current, read_metadata

    expected = json.loads(json.dumps(result_settings(config), default=str))
    # the folder's name is its key; where the project lives (another clone, another machine) is not
    work_dir = work_dir_for(dataset, config, data_dir).name
    for view in views:
        path = feature_path(data_dir, dataset, view, config.get("feature_prefix", "tpad"))
        if not (path.is_file() and is_current(path, dataset, data_dir)):
            return False
        producer = read_metadata(path)["producer"]
        if producer.get("version") != PRETRAINER_VERSION or Path(producer.get("work_dir", "")).name != work_dir \
                or result_settings(producer.get("config", {})) != expected:
            return False
    return True


def pretrain_config(dataset, config_file_list=None, config_dict=None):
    """``properties/pretrain/overall.yaml`` < ``<dataset>.yaml`` < files < ``config_dict``.

    Keys in ``config_file_list`` that the pretrainer does not know are ignored (they may be a
    RecBole run's settings); unknown keys in ``config_dict`` (the command line) are refused.
    """
    root = properties_dir() / "pretrain"
    config = yaml.safe_load((root / "overall.yaml").read_text())
    known = set(config)
    specific = root / f"{dataset}.yaml"
    if specific.is_file():
        config.update(yaml.safe_load(specific.read_text()) or {})
    for path in config_file_list or []:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        config.update({k: v for k, v in loaded.items() if k in known})
    unknown = sorted(set(config_dict or {}) - known - PASSTHROUGH)
    if unknown:
        raise PretrainConfigError(f"unknown pretrain setting(s) {unknown}; known: {sorted(known)}")
    config.update({k: v for k, v in (config_dict or {}).items() if k in known})
    check_pretrain_values(config)
    config["device"], config["precision"] = resolve_device(config)
    config["dataset"] = dataset
    return config


#: Pretrain settings that must be whole numbers: at least 1, or (steps) at least 0.
_AT_LEAST_ONE = ("stage1_batch", "stage2_batch", "encode_batch", "checkpoint_every", "lora_rank",
                 "z_dim", "estimator_hidden", "max_prefix", "threads", "gen_items")
_AT_LEAST_ZERO = ("stage1_steps", "stage2_steps")
#: Which items of a sampled session window stage 2 predicts (see properties/pretrain/overall.yaml).
STAGE2_TARGETS = ("last", "every")
_POSITIVE = ("stage1_lr", "stage2_lr", "club_lr", "temperature", "lora_alpha", "teacher_weight")
#: Pretrain settings that take one of a few names.
_CHOICES = {"stage2_targets": STAGE2_TARGETS, "item_pooling": POOLINGS, "session_query": SESSION_QUERIES}


def check_pretrain_values(config):
    """Refuse impossible pretrain settings before any model is loaded (a run with negative
    steps once trained nothing for minutes and wrote features that later runs trusted)."""
    def whole(value):
        return isinstance(value, int) and not isinstance(value, bool)

    for key in _AT_LEAST_ONE + _AT_LEAST_ZERO:
        low = 1 if key in _AT_LEAST_ONE else 0
        if not whole(config.get(key)) or config[key] < low:
            raise PretrainConfigError(f"{key}={config.get(key)!r}: give a whole number of at least {low}")
    for key in _POSITIVE:
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise PretrainConfigError(f"{key}={value!r}: give a positive number")
    for key, choices in _CHOICES.items():
        # absent: a config from before the key, made with its earlier value
        if config.get(key, LATER_SETTINGS[key]) not in choices:
            raise PretrainConfigError(f"{key}={config.get(key)!r}: use one of {', '.join(choices)}")
    from recbole_tpad.distill.teacher import TEACHER_PREFIX

    teacher = config.get("transition_teacher")
    if teacher is not None and not (isinstance(teacher, str) and teacher.startswith(TEACHER_PREFIX + "-")):
        raise PretrainConfigError(f"transition_teacher={teacher!r}: give the feature source name of "
                                  "a teacher file (teacher-<model>, written by python -m "
                                  "recbole_tpad.distill.teacher), or leave it null")
    if not 0 < config.get("mask_ratio", 0.3) < 1:
        raise PretrainConfigError(f"mask_ratio={config.get('mask_ratio')!r}: give a number between 0 and 1")


def feature_path(data_dir, dataset, view="zU", prefix="tpad"):
    """What ``--feature_source=<prefix>-<view>`` reads (``tpad-zU``; an ablation writes under its
    own prefix, e.g. ``tpad-noHMIE-zU``): :class:`recbole_tpad.data.sources.FeatureSource`'s path."""
    return FeatureSource(prefix, view).path(data_dir, dataset)
