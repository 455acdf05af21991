"""The packaged MiniLM producer: real offline weights, a valid feature file, meaningful vectors."""

import numpy as np

from recbole_tpad.data.features import is_current, load_feature_table, read_metadata
from recbole_tpad.text.encoder import build_text_features


def test_minilm_features_are_valid_and_group_categories(demo_root, tmp_path):
    dataset_dir = demo_root / "demo"
    out = tmp_path / "demo.minilm.npy"
    path = build_text_features("demo", dataset_dir, out, progress=False)
    meta = read_metadata(path)
    assert meta["dim"] == 384 and meta["n_items"] == 320 and meta["producer"]["name"] == "text-encoder"
    assert is_current(path, "demo", dataset_dir, meta["producer"])

    array = np.load(path)
    assert np.allclose(np.linalg.norm(array, axis=1), 1, atol=1e-4)
    category = np.array([i[1:3] for i in meta["item_ids"]])  # demo ids are i<category><k>
    sims = array @ array.T
    same = category[:, None] == category[None, :]
    np.fill_diagonal(same, False)
    off = ~same
    np.fill_diagonal(off, False)
    assert sims[same].mean() > sims[off].mean() + 0.1

    mtime = path.stat().st_mtime_ns
    build_text_features("demo", dataset_dir, out, progress=False)  # current: not rebuilt
    assert path.stat().st_mtime_ns == mtime

    tokens = ["[PAD]"] + list(reversed(meta["item_ids"]))
    table, report = load_feature_table(path, "demo", dataset_dir, tokens)
    assert np.array_equal(table[1], array[-1]) and report.missing == []
