"""RecBole's ``Config`` that also reads the plugin's ``properties/`` (as RecBole-GNN does).

Priority, lowest first: RecBole's own defaults < ``properties/overall.yaml`` (the shared
protocol every model is compared under) < ``properties/model/<M>.yaml`` <
``properties/dataset/<D>.yaml`` < ``config_file_list`` < ``config_dict``.

Unlike RecBole's, this Config never reads ``sys.argv``: the run script parses its own command
line and passes ``--key=value`` pairs as ``config_dict`` (see :func:`parse_cli_values`), so
pytest's or Ray's arguments can never leak into an experiment.
"""

import os

from recbole.config.configurator import Config as RecBoleConfig

from recbole_tpad.paths import properties_dir
from recbole_tpad.registry import get_model


def available_datasets_with_properties():
    """Dataset names that have a ``properties/dataset/<name>.yaml``."""
    return sorted(p.stem for p in (properties_dir() / "dataset").glob("*.yaml"))


class Config(RecBoleConfig):
    """RecBole Config + the plugin's properties; accepts plugin model names such as ``TPAD``."""

    def _load_cmd_line(self):
        return {}

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
        super()._load_internal_config_dict(model, model_class, dataset)
        root = properties_dir()
        for path in (root / "overall.yaml", root / "model" / f"{model}.yaml",
                     root / "dataset" / f"{dataset}.yaml"):
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


def parse_cli_values(pairs):
    """``["--epochs=3", "--fusion=gate"]`` -> ``{"epochs": 3, "fusion": "gate"}``.

    Values are read as RecBole reads its own command line (numbers, lists, dicts, booleans,
    ``None``), so ``--topk=[5,10]`` works as it does for ``run_recbole``.
    """
    raw = {}
    for pair in pairs:
        if not pair.startswith("--") or "=" not in pair:
            raise ValueError(f"cannot read argument {pair!r}: write config values as --key=value")
        key, value = pair[2:].split("=", 1)
        if not key:
            raise ValueError(f"cannot read argument {pair!r}: the key is empty")
        raw[key] = value
    return RecBoleConfig._convert_config_dict(None, raw)
