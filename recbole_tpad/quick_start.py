"""The one training/evaluation core: the run script, the comparison and the tuner all call it.

:func:`run` is RecBole's ``run_recbole`` plus what the plugin promises around it: the dataset
is found (or linked, or generated) and validated before anything long starts, and the result
carries epoch times, the validation curve, slices and peak memory for side-by-side comparisons.
The rest lives where RecBole puts it: the feature table in the dataset
(:mod:`recbole_tpad.data.dataset`), timing, checkpoints and the time budget in the trainer
(:mod:`recbole_tpad.trainer`).
"""

import json
import sys
import time
from logging import getLogger
from pathlib import Path

import torch
from recbole.data import data_preparation
from recbole.utils import dict2str, init_logger, init_seed, set_color

from recbole_tpad.checkpoints import best_checkpoint_path
from recbole_tpad.config import (Config, ConfigError, available_datasets_with_properties,
                                 check_selected_features, load_col_with_selected_features)
from recbole_tpad.data.dataset import BUILDABLE_SOURCE, create_dataset, load_item_features
from recbole_tpad.data.features import library_versions
from recbole_tpad.data.locate import ensure_dataset, inferred_settings, protocol_description
from recbole_tpad.losses import last_row_per_sequence, model_class_for
from recbole_tpad.model.layers import start_ids_from_features
from recbole_tpad.prior_grid import (CONTENT_PRIOR_RARITIES, CONTENT_PRIOR_WEIGHTS, prior_point,
                                     search_content_prior)
from recbole_tpad.registry import get_trainer
from recbole_tpad.runtime import machine_description, peak_rss_mb
from recbole_tpad.trainer import plugin_trainer


class DatasetInvalidError(ValueError):
    """The dataset's atomic files failed validation; the message lists every problem."""


def prepare_dataset(config):
    """Make the dataset's folder ready and, if ``validate_dataset`` is on, check its files."""
    dataset_dir = Path(config["data_path"])
    ensure_dataset(config["dataset"], dataset_dir.parent)
    if config["dataset"] not in available_datasets_with_properties():
        given = set(config.external_config_dict)
        for key, value in inferred_settings(dataset_dir, config["dataset"]).items():
            if key not in given:
                config[key] = value
        config["load_col"] = load_col_with_selected_features(config)
    getLogger().info(protocol_description(config))
    if config["validate_dataset"]:
        from dataset_tools.validate import validate_dataset

        report = validate_dataset(dataset_dir, config["dataset"])
        for problem in report.warnings:
            getLogger().warning(problem)
        if report.errors:
            raise DatasetInvalidError(
                f"dataset {config['dataset']} at {dataset_dir} has {len(report.errors)} error(s):\n"
                + "\n".join(report.errors[:50])
                + "\nFix them, or run with --validate_dataset=False to skip the checks.")
    return dataset_dir


def build_features(dataset, config_file_list=None, config_dict=None, force=False):
    """``--stage=features``: write the text-encoder feature file for ``dataset`` (``text-minilm``
    unless ``feature_source`` names another text source; TPAD's own default, ``tpad-zU``, is the
    pretrainer's to write)."""
    from recbole_tpad.data.sources import FeatureSource, dataset_folder, feature_file
    from recbole_tpad.text.encoder import build_text_features

    config_dict = {"feature_source": BUILDABLE_SOURCE, **(config_dict or {})}
    config = Config(model="TPAD", dataset=dataset, config_file_list=config_file_list,
                    config_dict=config_dict)
    if FeatureSource.parse(config["feature_source"]).pretrained:
        raise ConfigError(f"--stage=features writes text-encoder features, not "
                          f"{config['feature_source']}: those come from --stage=pretrain")
    init_logger(config)
    prepare_dataset(config)
    return build_text_features(config["dataset"], dataset_folder(config), feature_file(config),
                               encoder=config["text_encoder"], force=force,
                               progress=config["show_progress"])


def one_row_per_sequence(config, train_data):
    """The training loader over each user's or session's longest prefix only (``sequence_loss:
    all`` takes the loss at every position of it, so the shorter prefixes would repeat it)."""
    from recbole.data.utils import get_dataloader

    dataset = train_data._dataset
    kept = dataset.copy(dataset.inter_feat[last_row_per_sequence(dataset, config)])
    getLogger().info(f"sequence_loss=all: {len(kept)} training sequences "
                     f"(of {len(dataset)} prefixes), loss at every position")
    loader = get_dataloader(config, "train")(config, kept, train_data._sampler,
                                             shuffle=config["shuffle"])
    # every prefix: what the warm/cold/tail slices and the model's item counts are taken from
    loader.source_dataset = kept.source_dataset = dataset
    return loader


def evaluation_cases(config, loader, phase, train_dataset):
    """The valid or test loader without the cases the published protocol drops
    (``exclude_history``: targets that repeat an item of their own history, which a ranking
    without history items cannot hold; ``drop_cold_targets``: targets never seen in training)."""
    from recbole.data.utils import get_dataloader

    from recbole_tpad.evaluation import items_seen_in_training

    dataset = loader._dataset
    inter = dataset.inter_feat
    targets = inter[config["ITEM_ID_FIELD"]].long()
    keep = torch.ones(len(targets), dtype=torch.bool)
    if config["exclude_history"]:
        keep &= ~(inter[config["ITEM_ID_FIELD"] + config["LIST_SUFFIX"]] == targets.unsqueeze(1)).any(1)
    if config["drop_cold_targets"]:
        keep &= items_seen_in_training(train_dataset, config)[targets]
    getLogger().info(f"{phase}: {int(keep.sum())} of {len(keep)} cases kept (exclude_history="
                     f"{config['exclude_history']}, drop_cold_targets={config['drop_cold_targets']})")
    kept = dataset.copy(inter[torch.nonzero(keep).squeeze(1)])
    return get_dataloader(config, phase)(config, kept, loader._sampler, shuffle=False)


def build_experiment(model, dataset, config_file_list=None, config_dict=None, log=False,
                     fresh=True):
    """Config, data splits and trainer (holding the model) of one run, with the plugin's checks
    on the way: what :func:`run` trains and what the cost benchmark times. ``log`` sets up
    RecBole's log (console and ``log/``) from this config. ``fresh=False``: the model's weights
    come from a checkpoint next (:func:`load_experiment`), so a RecBole model's ``id_init``
    start, which they replace, is not made (it would read, or even build, a feature table for
    nothing)."""
    config = Config(model=model, dataset=dataset, config_file_list=config_file_list,
                    config_dict=config_dict)
    metric, _, k = str(config["valid_metric"]).partition("@")
    if k and int(k) not in config["topk"]:
        raise ConfigError(f"valid_metric {config['valid_metric']} needs {k} in topk "
                          f"(now {config['topk']}): add it, e.g. --topk=[{k},{max(config['topk'])}], "
                          f"or choose --valid_metric={metric}@{config['topk'][0]}")
    model_class = model_class_for(config, config.model_class)  # refuses impossible objectives
    init_seed(config["seed"], config["reproducibility"])
    if log:
        init_logger(config)
    logger = getLogger()
    prepare_dataset(config)
    logger.info(config)

    data = create_dataset(config)  # TPADDataset (with its feature table) for TPAD / ContentKNN
    check_selected_features(config, data)
    logger.info(data)
    modes = config["eval_args"]["mode"]
    modes = modes.values() if isinstance(modes, dict) else [modes]
    if "full" in modes and max(config["topk"]) >= data.item_num:
        raise ConfigError(f"dataset {config['dataset']} has {data.item_num - 1} items, fewer than "
                          f"topk {max(config['topk'])}: pass a smaller --topk (e.g. --topk=[1,5])")
    train_data, valid_data, test_data = data_preparation(config, data)
    if config["exclude_history"] or config["drop_cold_targets"]:
        valid_data = evaluation_cases(config, valid_data, "valid", train_data._dataset)
        test_data = evaluation_cases(config, test_data, "test", train_data._dataset)
    if config["sequence_loss"] == "all":
        train_data = one_row_per_sequence(config, train_data)

    init_seed(config["seed"], config["reproducibility"])
    try:
        model = model_class(config, train_data._dataset).to(config["device"])
    except ValueError as error:
        # a model refuses a setting its constructor can only judge against the data (TPAD's
        # feature_whitening against the feature size, say): said as a setting, not a traceback
        raise ConfigError(f"{config['model']} cannot be built with these settings: {error}") from error
    if fresh:
        start_id_vectors(config, model, train_data._dataset)
    logger.info(model)
    trainer_class = plugin_trainer(get_trainer(config["MODEL_TYPE"], config["model"]), config)
    trainer = trainer_class(config, model)
    trainer.train_loader = train_data  # its shuffling state goes into checkpoints
    return config, (train_data, valid_data, test_data), trainer


def start_id_vectors(config, model, dataset):
    """``id_init: features`` for ID models: RecBole's (SASRec, GRU4Rec, ...) and the ID-only
    TPADs (SASRecPub, ``use_features: False``): their ``item_embedding`` starts from the table
    ``feature_source`` names (:func:`~recbole_tpad.model.layers.start_ids_from_features`), so a
    baseline can be offered TPAD's lever.

    Where each start is made: a model that holds its feature table (a TPAD with features)
    starts itself when it is built, so every builder gives it the start, RecBole's own
    ``run_recbole`` included (which calls nothing of the plugin's around the constructor). A
    model that holds none is started here, by the plugin's builder, only when it is built fresh:
    rebuilt from a checkpoint it needs no feature table at all."""
    if (config["id_init"] or "random") == "random" or getattr(model, "use_features", False):
        return
    embedding = getattr(model, "item_embedding", None)
    if not isinstance(embedding, torch.nn.Embedding) or embedding.num_embeddings != dataset.item_num:
        raise ConfigError(f"id_init=features: {config['model']} has no item_embedding table of "
                          "one row per item to start: use id_init: random for it")
    if not (config["feature_source"] or config["feature_file"]):
        raise ConfigError(f"id_init=features: {config['model']} reads no item features of its "
                          "own: name the table to start from with feature_source (e.g. tpad-zU "
                          "or text-minilm) or feature_file")
    start_ids_from_features(embedding.weight, load_item_features(config, dataset)[0])


def choose_content_prior(trainer, valid_data, saved):
    """``content_prior: valid`` (and ``content_prior_rarity: valid``): the weight of
    :data:`CONTENT_PRIOR_WEIGHTS` and rarity of :data:`CONTENT_PRIOR_RARITIES` with the best
    validation score of the trained (best) model
    (:func:`recbole_tpad.prior_grid.search_content_prior`), set on it and
    written into its checkpoint; ``{"chosen", "rarity", "metric", "valid"}``, or ``None`` when
    the model has nothing to choose. Validation only: the test split is read afterwards, once."""
    model = trainer.model
    weights_to_choose = getattr(model, "content_prior_to_choose", False)
    rarity_to_choose = getattr(model, "content_prior_rarity_to_choose", False)
    if not (weights_to_choose or rarity_to_choose):
        return None
    weights = CONTENT_PRIOR_WEIGHTS if weights_to_choose else (model.content_prior,)
    rarities = CONTENT_PRIOR_RARITIES if rarity_to_choose else (model.content_prior_rarity,)
    metric = trainer.config["valid_metric"].lower()
    evaluated = []

    def evaluate(weight, rarity):
        model.set_content_prior(weight, rarity)
        result = trainer.evaluate(valid_data, load_best_model=saved and not evaluated,
                                  show_progress=False)
        evaluated.append(weight)
        return float(result[metric]), None

    (weight, rarity), tried = search_content_prior(evaluate, weights, rarities)
    model.set_content_prior(weight, rarity)
    model.content_prior_to_choose = model.content_prior_rarity_to_choose = False
    scores = {prior_point(w, r): score for (w, r), score, _ in tried}
    getLogger().info(f"content_prior: {weight:g}, content_prior_rarity: {rarity:g} (validation "
                     f"{metric} by weight/rarity " + ", ".join(f"{k}: {v:.4f}" for k, v in scores.items()) + ")")
    if saved:
        from recbole_tpad.checkpoints import record_settings

        record_settings(trainer.saved_model_file,
                        {"content_prior": weight, "content_prior_rarity": rarity})
    return {"chosen": weight, "rarity": rarity, "metric": metric, "valid": scores}


def run(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True,
        callback_fn=None, resume_file=None):
    """Train ``model`` on ``dataset`` and evaluate it on the test split.

    Args:
        model: a model name (``TPAD`` or any RecBole model) or class.
        dataset: a dataset name (a folder under ``data_path``, a shared dataset, or ``demo``).
        config_file_list: yaml files applied after the plugin's properties.
        config_dict: values applied last (what ``--key=value`` gives).
        saved: keep the best checkpoint (and evaluate it) as RecBole does.
        callback_fn: ``f(epoch_idx, valid_score)`` after each validation (Ray Tune reports).
        resume_file: a checkpoint of this same config to continue from: ``saved/X-latest.pth``
            (written after every validated epoch) continues after the last epoch; RecBole's
            ``saved/X.pth`` continues after the best one.

    Returns:
        dict with ``best_valid_result``, ``test_result``, ``epoch_times``, ``process_peak_rss_mb``, ...
    """
    started = time.time()
    config, (train_data, valid_data, test_data), trainer = build_experiment(
        model, dataset, config_file_list, config_dict, log=True)
    saved = saved and not getattr(trainer.model, "training_free", False)  # ContentKNN: no weights
    if resume_file:
        trainer.resume_checkpoint(resume_file)
        # RecBole would now write its best model over the file it resumed from.
        trainer.saved_model_file = best_checkpoint_path(resume_file)
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"],
        callback_fn=callback_fn)
    content_prior = choose_content_prior(trainer, valid_data, saved)
    tic = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=saved,
                                   show_progress=config["show_progress"])
    test_seconds = time.perf_counter() - tic
    by_target = trainer.evaluate_by_target(train_data, test_data)
    epoch_times = trainer.epoch_times

    # as RecBole logs its validation results ("recall@10 : 0.0958"), not the dict's repr,
    # which numpy 2 fills with np.float64(...); a run resumed after its last epoch validated
    # nothing (None)
    for title, values in (("best valid ", best_valid_result), ("test result", test_result)):
        getLogger().info(set_color(title, "yellow") + f": {dict2str(values) if values else values}")
    result = {
        "model": config["model"],
        "dataset": config["dataset"],
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": dict(best_valid_result or {}),
        "test_result": dict(test_result),
        "test_result_by_target": by_target,
        "content_prior": content_prior,
        "new_item_scoring": (trainer.model.new_item_scoring()
                             if hasattr(trainer.model, "new_item_scoring") else None),
        "epochs_run": len(epoch_times),
        "stopped_by": trainer.stopped_by,
        "valid_curve": trainer.valid_curve,
        "max_epochs": config["epochs"],
        "epoch_times": epoch_times,
        "mean_epoch_seconds": sum(epoch_times) / len(epoch_times) if epoch_times else None,
        "test_seconds": test_seconds,
        "n_test_cases": len(test_data.dataset) if hasattr(test_data, "dataset") else None,
        "total_seconds": time.time() - started,
        "process_peak_rss_mb": peak_rss_mb(),  # the whole process so far, not this run alone
        "device": str(config["device"]),
        "machine": machine_description(config["device"]),
        "torch_threads": torch.get_num_threads(),
        "seed": config["seed"],
        "saved_model_file": trainer.saved_model_file if saved else None,
        "latest_checkpoint": trainer.latest_checkpoint,
        "versions": library_versions(),
        "command": " ".join(sys.argv),
    }
    if saved:
        summary = Path(trainer.saved_model_file).with_suffix(".json")
        summary.write_text(json.dumps(result, indent=1, default=str))
    return result


def load_experiment(model_file, config_dict=None, state=None):
    """``(config, (train, valid, test), trainer)`` of a checkpoint this plugin wrote (any model),
    its weights in the trainer's model (in eval mode). The checkpoint is read with
    ``weights_only=True`` (:mod:`recbole_tpad.checkpoints`); the run is rebuilt from the settings
    it records (``config_dict``: values to change that do not touch the weights, such as
    ``show_progress``; ``data_path``: the folder holding the dataset's folder, where it moved,
    else the run refuses to start without it: :func:`check_dataset_present`). ``state``: the
    checkpoint as ``load_checkpoint`` read it, where the caller has read it already (it is not
    read twice)."""
    from recbole_tpad.checkpoints import load_checkpoint

    from recbole_tpad.config import saved_model_settings

    state = load_checkpoint(model_file) if state is None else state
    saved = state["config"]
    values = {**saved_model_settings(saved), **state["external_config"],
              "data_path": str(Path(saved["data_path"]).parent),
              "checkpoint_dir": saved["checkpoint_dir"], **(config_dict or {})}
    for key in ("model", "dataset"):  # given by the checkpoint's own settings below
        values.pop(key, None)
    if "data_path" not in (config_dict or {}):
        check_dataset_present(model_file, saved["dataset"], values["data_path"])
    config, data, trainer = build_experiment(saved["model"], saved["dataset"], config_dict=values,
                                             fresh=False)
    trainer.load_weights(state, model_file)
    trainer.model.eval()
    return config, data, trainer


def check_dataset_present(model_file, dataset, data_path):
    """Refuse to rebuild a checkpoint's run when its dataset is no longer where it was trained
    (the checkpoint records the folder; a relative one is read from the working directory).
    Without this the data would be made anew there (the demo generated, a shared copy linked)
    and the checkpoint then refused as trained on other data, which names the wrong cause.
    Given another folder (``data_path``), its files are checked against the checkpoint's
    checksum as any: a copy of the same files loads, other data is refused."""
    from recbole_tpad.checkpoints import CheckpointError
    from recbole_tpad.data.locate import is_ready

    if not is_ready(Path(data_path) / dataset, dataset):
        raise CheckpointError(
            f"{model_file}: its dataset {dataset!r} is not where it was trained "
            f"({Path(data_path) / dataset} holds no atomic files; a relative path is read from "
            f"the working directory, {Path.cwd()}): give the folder that holds {dataset}/ "
            "(--data_path=DIR: --stage=recommend, benchmark.content_prior; data_path= in "
            "Python); its files must be the ones the model was trained on, which their "
            "checksum tells")


def load_data_and_model(model_file, data_path=None):
    """``(config, model, dataset, train_data, valid_data, test_data)`` of a checkpoint, as
    RecBole's function returns them (see :func:`load_experiment`); ``data_path``: the folder
    that holds the dataset's folder, where it is no longer where the checkpoint was trained."""
    config, (train_data, valid_data, test_data), trainer = load_experiment(
        model_file, {"data_path": str(data_path)} if data_path is not None else None)
    return config, trainer.model, train_data._dataset, train_data, valid_data, test_data


def format_results(results, metrics=None):
    """A markdown table of test metrics, one row per run result (as :func:`run` returns)."""
    metrics = metrics or list(results[0]["test_result"])
    header = "| model | " + " | ".join(metrics) + " | s/epoch | epochs |"
    lines = [header, "|" + "---|" * (len(metrics) + 3)]
    for r in results:
        cells = [f"{r['test_result'].get(m, float('nan')):.4f}" for m in metrics]
        epoch = f"{r['mean_epoch_seconds']:.1f}" if r["mean_epoch_seconds"] else "-"
        lines.append(f"| {r['model']} | " + " | ".join(cells) + f" | {epoch} | {r['epochs_run']} |")
    return "\n".join(lines)

