"""What other stages do with a pretraining run: run it unless its features are current (the
comparison, and TPAD's dataset when ``tpad-*`` features are missing), and encode items added
after training through a finished run's adapters and heads (``--new-items``)."""

import time
from pathlib import Path

import torch

from recbole_tpad.distill.pretrainer import Pretrainer, pretrain
from recbole_tpad.distill.settings import (PretrainConfigError, feature_path, features_current,
                                           pretrain_config, resolve_device)


def encode_like_producer(producer, items, backbone=None):
    """The ``zU`` or ``zT`` vectors of items added after training (:mod:`recbole_tpad.new_items`),
    through the same frozen backbone, adapters, projector and heads that wrote the feature file
    recorded as ``producer``: they are restored from the run's work folder, which the file's
    metadata names. The path is the one :meth:`Pretrainer.write_features` took (lower layers
    rounded to fp16 as cached, then the adapter's layers, then the view's head), so an item
    with another item's content gets that item's vector. ``zK`` (the stage-1 knowledge) cannot
    be made again: stage 2 goes on training the knowledge adapter, and its stage-1 state is not
    kept."""
    from recbole_tpad.mllm.prompts import ItemContent

    config, view = producer.get("config") or {}, producer.get("view")
    if view not in ("zU", "zT"):
        raise PretrainConfigError(
            f"new items can be encoded for the tpad-zU and tpad-zT views, not {view!r} (the "
            "stage-1 knowledge adapter is not kept after stage 2); train on tpad-zU to add items")
    run = Pretrainer(config["dataset"], config, backbone=backbone)
    if Path(producer.get("work_dir", "")).name != run.work_dir.name \
            or not (run.work_dir / "checkpoint.pt").is_file():
        raise PretrainConfigError(
            f"the pretraining run that wrote these features ({producer.get('work_dir')}) is not "
            "in checkpoint_dir any more, so its adapters and heads are gone; run --stage=pretrain "
            "again with the same settings (it rewrites the same features) and retry")
    # computed where this machine can (the run may have been on a GPU; device is bookkeeping)
    run.config = dict(run.config)
    run.config["device"], run.config["precision"] = resolve_device({"device": "auto"})
    run._build()
    stage, _ = run.load_checkpoint()
    if stage != "done":
        raise PretrainConfigError(f"{run.work_dir}: the pretraining run did not finish; finish it first")
    contents = [ItemContent(i.item_id, i.text, i.image if config.get("use_images") else None)
                for i in items]
    batch = config["encode_batch"]
    adapter = "knowledge" if view == "zU" else "transfer"
    with torch.no_grad(), run.autocast():
        hidden = torch.cat([run.encode_contents(contents[start:start + batch], adapter)
                            for start in range(0, len(contents), batch)])
        return run.objectives.features(hidden.float(), view).float().cpu().numpy()


def pretrained_current(dataset, config_dict=None, config_file_list=None, views=("zU", "zK", "zT")):
    """``(current, zU file, the pretrain settings given, the whole pretrain config)``: whether
    the feature files (``views``) are current for these settings, checked without running
    anything (``compare --plan``)."""
    from recbole_tpad.data.locate import ensure_dataset
    from recbole_tpad.distill.settings import pretrain_keys

    known = pretrain_keys()
    given = {k: v for k, v in (config_dict or {}).items() if k in known}
    config = pretrain_config(dataset, config_file_list, given)
    data_dir = ensure_dataset(dataset, config["data_path"])
    return (features_current(dataset, config, data_dir, views),
            feature_path(data_dir, dataset, "zU", config["feature_prefix"]), given, config)


def ensure_pretrained(dataset, config_dict=None, config_file_list=None, views=("zU", "zK", "zT")):
    """Run the pretrainer unless the feature files (``views``) are current for these settings."""
    current, path, given, config = pretrained_current(dataset, config_dict, config_file_list, views)
    if current:
        print(f"pretrained features of {dataset} are current ({path})", flush=True)
        return
    print(f"pretraining on {dataset} ({config['feature_prefix']}: properties/pretrain/ + {given})",
          flush=True)
    tic = time.time()
    pretrain(dataset, config_file_list, given)
    print(f"pretraining finished in {time.time() - tic:.0f}s", flush=True)
