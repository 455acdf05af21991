"""RecBole's ``Config`` that also reads the plugin's ``properties/`` (as RecBole-GNN does).

Priority, lowest first: RecBole's own defaults < ``properties/overall.yaml`` (the shared
protocol every model is compared under) < ``properties/model/<M>.yaml`` <
``properties/dataset/<D>.yaml`` < ``config_file_list`` < ``config_dict``.

Unlike RecBole's, this Config never reads ``sys.argv``: the run script parses its own command
line and passes ``--key=value`` pairs as ``config_dict`` (see :func:`parse_cli_values`), so
pytest's or Ray's arguments can never leak into an experiment.
"""

import ast
import difflib
import functools
import os
from pathlib import Path

import yaml
from recbole.config.configurator import Config as RecBoleConfig
from recbole.utils import InputType

from recbole_tpad.paths import properties_dir
from recbole_tpad.registry import get_model


def available_datasets_with_properties():
    """Dataset names that have a ``properties/dataset/<name>.yaml``."""
    return sorted(p.stem for p in (properties_dir() / "dataset").glob("*.yaml"))


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the key and what to write instead."""


def read_value(text):
    """A config value from text, without evaluating it: a Python literal (number, list, dict,
    tuple, string, ``None``, ``True``/``False``), a YAML flow list or mapping of bare words as
    the yaml files write them (``[brand,categories]``, ``{item: [item_id, brand]}``),
    ``true``/``false`` in any case, else the text itself. RecBole ``eval()``s such strings;
    nothing here can call code (``yaml.safe_load`` builds plain data only)."""
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        stripped = text.strip()
        if stripped[:1] + stripped[-1:] in ("[]", "{}"):
            try:
                return yaml.safe_load(stripped)
            except yaml.YAMLError:
                return text
        return {"true": True, "false": False, "none": None}.get(stripped.lower(), text)


def _yaml_keys(folder):
    keys = set()
    for path in Path(folder).rglob("*.yaml"):
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(loaded, dict):
            keys.update(str(k) for k in loaded)
            for value in loaded.values():  # variants.yaml: {label: {key: value}}
                if isinstance(value, dict):
                    keys.update(str(k) for k in value)
    return keys


#: Keys RecBole reads without a default in any of its yaml files.
_RECBOLE_KEYS_WITHOUT_DEFAULTS = {
    "model", "dataset", "config_files", "benchmark_filename", "alias_of_item_id",
    "alias_of_user_id", "alias_of_entity_id", "alias_of_relation_id", "preload_weight",
    "additional_feat_suffix", "numerical_features", "discretization", "local_rank",
    "nproc", "world_size", "offset", "ip", "port", "single_spec", "valid_neg_sample_args",
    "test_neg_sample_args", "eval_step", "state", "train_neg_sample_args", "MODEL_TYPE"}


@functools.lru_cache(maxsize=1)
def known_keys():
    """Every setting RecBole or the plugin reads: the keys of RecBole's own yaml files and of
    the plugin's ``properties/`` (models, datasets, pretraining, variants)."""
    import recbole

    return frozenset(_yaml_keys(Path(recbole.__file__).parent / "properties")
                     | _yaml_keys(properties_dir()) | _RECBOLE_KEYS_WITHOUT_DEFAULTS)


#: Settings that must be whole numbers of at least 1, or positive numbers.
_POSITIVE_INTS = ("epochs", "train_batch_size", "eval_batch_size", "stopping_step", "eval_step",
                  "embedding_size", "hidden_size", "n_layers", "n_heads", "inner_size",
                  "MAX_ITEM_LIST_LENGTH", "time_gap_buckets")
_POSITIVE_NUMBERS = ("learning_rate", "time_gap_unit")
#: Switches: True or False (a typed ``--time_gaps=yes`` would otherwise switch on as any text)
_SWITCHES = ("time_gaps", "frequency_gate", "use_features", "use_id_embedding")
#: Dropout rates and shares: at least 0, below 1.
_SHARES = ("id_dropout", "item_dropout", "feature_dropout", "hidden_dropout_prob", "attn_dropout_prob")


@functools.lru_cache(maxsize=1)
def _choices():
    """Settings of the plugin that take one of a few names."""
    from recbole_tpad.losses import SAMPLINGS, SEQUENCE_LOSSES, TRAIN_NEGATIVES
    from recbole_tpad.model.content import SESSION_VECTORS
    from recbole_tpad.model.layers import ADAPTERS, ENCODERS, FEATURE_DROPOUT_ON, FUSIONS, ID_INITS
    from recbole_tpad.model.tpad import COLD_ITEM_IDS, CONTENT_HEAD_NEGATIVES, CONTENT_HEAD_TRAININGS

    return {"encoder": ENCODERS, "fusion": FUSIONS, "adapter": ADAPTERS,
            "loss_type": ("CE", "BPR", "SS", "BCE", "MSE"), "sequence_loss": SEQUENCE_LOSSES,
            "negative_sampling": SAMPLINGS, "content_session": SESSION_VECTORS,
            "missing_feature": ("mean", "zero"), "weight_init": ("normal", "xavier"),
            "cold_item_ids": COLD_ITEM_IDS, "train_negatives": TRAIN_NEGATIVES,
            "content_head_training": CONTENT_HEAD_TRAININGS,
            "content_head_negatives": CONTENT_HEAD_NEGATIVES,
            "feature_dropout_on": FEATURE_DROPOUT_ON, "id_init": ID_INITS}


def check_values(values, source="--key=value"):
    """Refuse unknown keys (naming the closest known one) and impossible values, before any
    data is read."""
    known = known_keys()
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]!r}?" if close else (
                "; see properties/ and RecBole's docs for the settings that exist")
            raise ConfigError(f"{source}: unknown setting {key!r}{hint}")
        if key in _POSITIVE_INTS and value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f"{source}: {key}={value!r}: give a whole number of at least 1")
        if key in _POSITIVE_NUMBERS and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                         or not value > 0):
            raise ConfigError(f"{source}: {key}={value!r}: give a positive number (e.g. 0.001)")
        if key in _SWITCHES and value is not None and not isinstance(value, bool):
            raise ConfigError(f"{source}: {key}={value!r}: give True or False")
        if key in _SHARES and value is not None and (
                not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1):
            raise ConfigError(f"{source}: {key}={value!r}: give a share from 0 up to (not including) 1")
        if key == "feature_whitening" and value not in (None, "all") and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f"{source}: feature_whitening={value!r}: give a whole number of "
                              "dimensions (e.g. 64), all, or ~ (no whitening)")
        if key == "content_prior" and value not in (None, "valid") and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ConfigError(f"{source}: content_prior={value!r}: give valid (chosen on the "
                              "validation split), a weight of at least 0 (e.g. 4), or ~ (off)")
        if key == "content_prior_training" and value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ConfigError(f"{source}: content_prior_training={value!r}: give a weight above 0 "
                              "(e.g. 4), or ~ (off)")
        if key == "content_prior_rarity" and value not in (None, "valid") and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ConfigError(f"{source}: content_prior_rarity={value!r}: give valid (chosen on "
                              "the validation split with the weight), an exponent of at least 0 "
                              "(e.g. 0.25; 0: the same weight for every item), or ~")
        choices = _choices().get(key)
        if choices and value not in choices:
            raise ConfigError(f"{source}: {key}={value!r}: use one of {', '.join(map(str, choices))}")
        if key == "topk" and not (
                (isinstance(value, int) and not isinstance(value, bool) and value > 0)
                or (isinstance(value, list) and value
                    and all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in value))):
            raise ConfigError(f"{source}: topk={value!r}: give a list of positive whole numbers, "
                              "e.g. [5,10,20]")


def plugin_model_files(model, model_class, every_model=False):
    """The plugin's yaml files of a model, existing ones only: those of the plugin classes it
    extends first (SASRecPub: TPAD's, then its own). ``every_model``: also the plugin's yaml for
    a RecBole model (``properties/model/SASRec.yaml``: the protocol's settings for it)."""
    root = properties_dir()
    lineage = [c.__name__ for c in reversed(getattr(model_class, "__mro__", ()))
               if c.__module__.startswith("recbole_tpad.")]
    if every_model:
        lineage.append(model)
    elif not lineage:
        return []
    files = [root / "model" / f"{name}.yaml" for name in dict.fromkeys(lineage)]
    return [path for path in files if path.is_file()]


def saved_model_settings(saved):
    """The values a checkpoint's run had (``saved``: its final config) for every model setting,
    a key of a plugin model yaml (wherever the run set it: ``item_attributes`` comes from the
    dataset's yaml): a checkpoint is rebuilt with the settings it was trained with, not with
    defaults changed since (a new default can add layers, such as TPAD's content head). Keys the
    run did not have keep today's values."""
    keys = set()
    for path in sorted((properties_dir() / "model").glob("*.yaml")):
        keys |= set(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return {key: saved[key] for key in sorted(keys) if key in saved}


class Config(RecBoleConfig):
    """RecBole Config + the plugin's properties; accepts plugin model names such as ``TPAD``."""

    def _load_cmd_line(self):
        return {}

    def _load_config_files(self, file_list):
        for path in file_list or []:
            if not Path(path).is_file():
                raise ConfigError(f"--config_files: {path} does not exist (give yaml files, "
                                  "separated by spaces or commas)")
        return super()._load_config_files(file_list)

    def _convert_config_dict(self, config_dict):
        # RecBole's own eval()s every string value; read literals only (read_value)
        return {key: read_value(value) for key, value in config_dict.items()}

    def _merge_external_config_dict(self):
        super()._merge_external_config_dict()
        check_values(self.file_config_dict, "--config_files")
        check_values(self.variable_config_dict)

    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model")
        if model is None:
            raise KeyError("no model given: pass --model=NAME (e.g. TPAD, SASRec, SRGNN)")
        model_class = get_model(model)
        model_name = model if isinstance(model, str) else model.__name__
        if dataset is None:
            dataset = self.external_config_dict.get("dataset")
        if dataset is None:
            raise KeyError("no dataset given: pass --dataset=NAME (e.g. demo, amazon-sports)")
        return model_name, model_class, dataset

    def _load_internal_config_dict(self, model, model_class, dataset):
        # RecBole's defaults (and, through compat.read_plugin_model_properties, a plugin model's
        # own yaml, which the plugin's overall.yaml must not override: so it is read again below)
        super()._load_internal_config_dict(model, model_class, dataset)
        root = properties_dir()
        model_files = plugin_model_files(model, model_class, every_model=True)
        for path in (root / "overall.yaml", *model_files, root / "dataset" / f"{dataset}.yaml"):
            if path.is_file():
                loaded = self._update_internal_config_dict(str(path)) or {}
                if path.parent.name == "dataset":
                    self.parameters["Dataset"] += [k for k in loaded if k not in self.parameters["Dataset"]]

    def _set_default_parameters(self):
        # Relative paths are taken from the working directory now and stored absolute, so the
        # config pickled into checkpoints and sent to Ray workers means the same place anywhere.
        for key in ("data_path", "checkpoint_dir"):
            value = self.final_config_dict.get(key)
            if isinstance(value, str) and not os.path.isabs(value):
                self.final_config_dict[key] = os.path.abspath(value)
        super()._set_default_parameters()
        self.final_config_dict["load_col"] = load_col_with_selected_features(self.final_config_dict)
        if self.final_config_dict.get("loss_type") == "SS":
            # sampled softmax (recbole_tpad.losses): pointwise input, like RecBole's CE
            if self.final_config_dict.get("train_neg_sample_args") is not None:
                raise ValueError("loss_type SS samples its own negatives: set train_neg_sample_args: ~")
            self.final_config_dict["MODEL_INPUT_TYPE"] = InputType.POINTWISE


def load_col_with_selected_features(config):
    """``load_col`` with the item fields ``selected_features`` names (the fields RecBole's
    feature-aware models read: SASRecF, FDSA, ...) and the item ids, so such a model's setting
    works on any dataset without restating the dataset's whole ``load_col`` (one given in a
    config replaces the dataset's, inter columns included). RecBole left an unloaded field to a
    KeyError deep in the model; :func:`check_selected_features` names it once the data is read."""
    get = config.get if isinstance(config, dict) else config.__getitem__  # a RecBole Config: None if unset
    selected, load_col = get("selected_features"), get("load_col")
    if not selected or not isinstance(load_col, dict) or load_col.get("item") == "*":
        return load_col  # None or item '*': every column is loaded already
    columns = list(load_col.get("item") or [])
    wanted = [get("ITEM_ID_FIELD"), *selected]
    return dict(load_col, item=columns + [field for field in wanted if field not in columns])


def check_selected_features(config, dataset):
    """Refuse ``selected_features`` the dataset's ``.item`` file does not hold, by name."""
    missing = [field for field in config["selected_features"] or [] if field not in dataset.field2type]
    if missing:
        path = Path(config["data_path"]) / f"{config['dataset']}.item"
        if not path.is_file():
            raise ConfigError(f"selected_features {missing} (read by {config['model']}): the dataset has "
                              f"no item file {path}; add one with these columns, or unset selected_features")
        from dataset_tools.atomic import parse_header

        with open(path, encoding="utf-8") as handle:
            header = [name for name, _ in parse_header(handle.readline())]
        raise ConfigError(f"selected_features {missing} (read by {config['model']}): {path} has no such "
                          f"column; its columns are {header}. Name columns of the .item file, or add "
                          "them there.")


def parse_cli_values(pairs):
    """``["--epochs=3", "--fusion=gate"]`` -> ``{"epochs": 3, "fusion": "gate"}``.

    Values are read as Python literals (numbers, lists, dicts, booleans, ``None``), so
    ``--topk=[5,10]`` works as it does for ``run_recbole``; nothing is evaluated
    (:func:`read_value`). Unknown keys and impossible values are refused (:func:`check_values`).
    """
    raw = {}
    for pair in pairs:
        if not pair.startswith("--") or "=" not in pair:
            raise ValueError(f"cannot read argument {pair!r}: write config values as --key=value")
        key, value = pair[2:].split("=", 1)
        if not key:
            raise ValueError(f"cannot read argument {pair!r}: the key is empty")
        raw[key] = value
    return {key: read_value(value) for key, value in raw.items()}
