"""The feature-file contract: alignment to RecBole ids, and every promised refusal."""

import json
import shutil

import numpy as np
import pytest

from dataset_tools.atomic import write_atomic
from recbole_tpad.data.features import (FeatureFileError, is_current, load_feature_table,
                                        metadata_path, write_feature_file)

PRODUCER = {"name": "test", "config": {"k": 1}}


@pytest.fixture
def dataset(tmp_path):
    d = tmp_path / "toy"
    write_atomic(d / "toy.inter", [("user_id", "token"), ("item_id", "token"), ("timestamp", "float")],
                 [["u1", "a", "1"], ["u1", "b", "2"], ["u2", "c", "1"], ["u2", "d", "2"]])
    write_atomic(d / "toy.item", [("item_id", "token"), ("title", "token_seq")],
                 [["a", "red ball"], ["b", "blue bat"], ["c", "green net"], ["d", "tent"]])
    return d


def write(dataset, ids, array, name="toy.f.npy", dataset_name="toy"):
    return write_feature_file(dataset / name, np.asarray(array, np.float32), ids, dataset_name,
                              dataset, PRODUCER)


def test_rows_follow_recbole_internal_ids(dataset):
    path = write(dataset, ["d", "a", "c", "b"], [[4, 4], [1, 1], [3, 3], [2, 2]])
    tokens = np.array(["[PAD]", "a", "b", "c", "d"])  # as dataset.field2id_token gives them
    table, report = load_feature_table(path, "toy", dataset, tokens)
    assert table.tolist() == [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]]
    assert report.n_found == 4 and report.missing == []
    meta = json.loads(metadata_path(path).read_text())
    assert meta["item_ids"] == ["d", "a", "c", "b"] and meta["dim"] == 2
    assert meta["producer"] == PRODUCER and len(meta["dataset_checksum"]) == 64
    assert {"torch", "transformers", "peft", "pillow", "scipy"} <= set(meta["versions"])


def test_items_without_a_row_get_the_mean_and_are_counted(dataset):
    path = write(dataset, ["a", "b", "c"], [[1, 0], [3, 0], [5, 0]])
    table, report = load_feature_table(path, "toy", dataset, ["[PAD]", "a", "b", "c", "d"])
    assert table[4].tolist() == [3, 0] and report.missing == ["d"]
    table, _ = load_feature_table(path, "toy", dataset, ["[PAD]", "a", "b", "c", "d"],
                                  missing_feature="zero")
    assert table[4].tolist() == [0, 0]


def test_missing_file_names_the_command(dataset):
    with pytest.raises(FeatureFileError, match="run_recbole_tpad.py --stage=features --dataset=toy"):
        load_feature_table(dataset / "nope.npy", "toy", dataset, ["[PAD]", "a"])


def test_missing_metadata_is_refused(dataset):
    path = write(dataset, ["a"], [[1.0]])
    metadata_path(path).unlink()
    with pytest.raises(FeatureFileError, match="metadata file toy.f.json is missing"):
        load_feature_table(path, "toy", dataset, ["[PAD]", "a"])


def test_other_dataset_is_refused(dataset, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(dataset, other)
    for f in other.iterdir():
        f.rename(other / f.name.replace("toy", "other"))
    path = write(other, ["a", "b"], [[1], [2]], name="other.f.npy", dataset_name="other")
    with pytest.raises(FeatureFileError, match="made for dataset 'other', not 'toy'"):
        load_feature_table(path, "toy", dataset, ["[PAD]", "a", "b"])


def test_changed_data_is_refused_and_not_current(dataset):
    path = write(dataset, ["a", "b", "c", "d"], [[1], [2], [3], [4]])
    assert is_current(path, "toy", dataset, PRODUCER)
    with open(dataset / "toy.inter", "a") as f:
        f.write("u3\ta\t5\n")
    assert not is_current(path, "toy", dataset, PRODUCER)
    with pytest.raises(FeatureFileError, match="the data changed since"):
        load_feature_table(path, "toy", dataset, ["[PAD]", "a", "b", "c", "d"])


def test_stale_pretrainer_features_point_to_the_pretrainer(dataset):
    path = write(dataset, ["a", "b", "c", "d"], [[1], [2], [3], [4]], name="toy.tpad-zU.npy")
    text = write(dataset, ["a", "b", "c", "d"], [[1], [2], [3], [4]], name="toy.text-minilm.npy")
    with open(dataset / "toy.inter", "a") as f:
        f.write("u3\ta\t5\n")
    with pytest.raises(FeatureFileError, match="--stage=pretrain --dataset=toy"):
        load_feature_table(path, "toy", dataset, ["[PAD]", "a", "b", "c", "d"])
    with pytest.raises(FeatureFileError, match="--stage=features --dataset=toy"):
        load_feature_table(text, "toy", dataset, ["[PAD]", "a", "b", "c", "d"])


def test_other_item_set_is_refused(dataset):
    path = write(dataset, ["x", "y", "a"], [[1], [2], [3]])
    with pytest.raises(FeatureFileError, match="made for another item set"):
        load_feature_table(path, "toy", dataset, ["[PAD]", "a", "b", "c", "d"])


def test_wrong_dimension_is_refused(dataset):
    path = write(dataset, ["a", "b"], [[1, 2], [3, 4]])
    with pytest.raises(FeatureFileError, match="dimension 2, the config expects feature_dim=8"):
        load_feature_table(path, "toy", dataset, ["[PAD]", "a", "b"], expected_dim=8)


def test_nan_rows_are_refused_at_write_and_at_load(dataset):
    with pytest.raises(FeatureFileError, match="1 rows hold NaN or inf"):
        write(dataset, ["a", "b"], [[1, 2], [np.nan, 4]])
    path = write(dataset, ["a", "b"], [[1, 2], [3, 4]])
    meta = json.loads(metadata_path(path).read_text())
    bad = np.array([[1, 2], [np.inf, 4]], np.float32)
    np.save(path, bad)  # a producer that bypassed the writer, with a matching checksum
    import hashlib
    meta["array_sha256"] = hashlib.sha256(bad.tobytes()).hexdigest()
    metadata_path(path).write_text(json.dumps(meta))
    with pytest.raises(FeatureFileError, match=r"1 rows hold NaN or inf \(first items: \['b'\]\)"):
        load_feature_table(path, "toy", dataset, ["[PAD]", "a", "b"])


def test_replaced_array_is_refused(dataset):
    path = write(dataset, ["a", "b"], [[1, 2], [3, 4]])
    np.save(path, np.array([[1, 2], [3, 5]], np.float32))
    with pytest.raises(FeatureFileError, match="do not match the checksum"):
        load_feature_table(path, "toy", dataset, ["[PAD]", "a", "b"])


def test_an_npz_renamed_npy_is_a_feature_file_error(dataset):
    path = write(dataset, ["a", "b"], [[1, 2], [3, 4]])
    with open(path, "wb") as handle:
        np.savez(handle, vectors=np.array([[1, 2], [3, 4]], np.float32))
    with pytest.raises(FeatureFileError, match="an .npz archive"):
        load_feature_table(path, "toy", dataset, ["[PAD]", "a", "b"])


def test_failed_write_leaves_no_file(dataset, monkeypatch):
    import recbole_tpad.data.features as features

    def broken_dump(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(features.json, "dump", broken_dump)
    with pytest.raises(OSError):
        write(dataset, ["a"], [[1.0]])
    assert sorted(p.name for p in dataset.iterdir()) == ["toy.inter", "toy.item"]


def test_artefacts_record_the_source_commit_of_a_checkout(tmp_path):
    """A run's versions name the git commit of the code that made it (``+changes`` when tracked
    files differ from it); outside a checkout nothing is claimed."""
    import subprocess

    from recbole_tpad.data.features import source_revision

    revision = source_revision.__wrapped__  # uncached: the checkout changes within this test
    assert revision(tmp_path) is None
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(git + ["init", "-q"], check=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    subprocess.run(git + ["add", "code.py"], check=True)
    subprocess.run(git + ["commit", "-qm", "first"], check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert revision(tmp_path) == head and len(head) == 40
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    assert revision(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert revision(tmp_path) == head + "+changes"
