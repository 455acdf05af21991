"""Shared fixtures: small generated datasets with learnable patterns, one thread for torch."""

import os

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import recbole_tpad  # noqa: E402,F401  (shims first, as users get them)
from dataset_tools.demo import generate_demo  # noqa: E402
from recbole_tpad.data.features import write_feature_file  # noqa: E402

FAST = {"show_progress": False, "epochs": 2, "train_batch_size": 256, "eval_batch_size": 256,
        "embedding_size": 32, "hidden_size": 32, "inner_size": 64, "state": "WARNING",
        # the tests' feature tables stand in for MiniLM's; TPAD's default (the pretrainer's
        # tpad-zU) is tested on its own in test_dataset.py
        "feature_source": "text-minilm"}


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """A data_path holding a small ``demo`` dataset (320 items, 1,500 sessions, no images)."""
    root = tmp_path_factory.mktemp("data")
    generate_demo(root / "demo", items_per_category=20, n_sessions=1500, images=False)
    return root


def category_features(dataset_dir, name="demo", dim=16, seed=0):
    """A feature file whose vectors encode each demo item's category (plus noise)."""
    from dataset_tools.atomic import read_item_table

    items = read_item_table(dataset_dir, name)
    rng = np.random.default_rng(seed)
    categories = sorted({r["category"] for r in items.values()})
    centres = rng.normal(size=(len(categories), dim))
    ids = list(items)
    array = np.stack([centres[categories.index(items[i]["category"])] for i in ids])
    array = array + 0.1 * rng.normal(size=array.shape)
    return ids, array.astype(np.float32)


@pytest.fixture(scope="session")
def demo_features(demo_root):
    """The default feature file path of the demo dataset, filled with category features."""
    dataset_dir = demo_root / "demo"
    ids, array = category_features(dataset_dir)
    path = dataset_dir / "demo.text-minilm.npy"
    write_feature_file(path, array, ids, "demo", dataset_dir,
                       {"name": "test-category-features", "config": {}})
    return path


@pytest.fixture
def run_config(demo_root, demo_features, tmp_path, monkeypatch):
    """Config values that keep a RecBole run small and inside ``tmp_path``."""
    monkeypatch.chdir(tmp_path)  # RecBole writes ./log and ./log_tensorboard
    return dict(FAST, data_path=str(demo_root), checkpoint_dir=str(tmp_path / "saved"),
                build_missing_features=False)


def nearest_neighbour_agreement(x, category):
    """Share of items whose cosine nearest neighbour (not itself) has their category."""
    unit = torch.nn.functional.normalize(x, dim=-1)
    similarity = (unit @ unit.t()).fill_diagonal_(-2)
    return (category[similarity.argmax(1)] == category).float().mean().item()
