"""Finding datasets: shared copies are linked file by file, X-session is derived and kept fresh."""

import os

import pytest

from dataset_tools.atomic import write_atomic
from recbole_tpad.data.locate import UnknownDatasetError, ensure_dataset


@pytest.fixture
def shared(tmp_path, monkeypatch):
    root = tmp_path / "shared"
    rows = [[f"u{u}", f"i{(u + k) % 5}", str(k)] for u in range(6) for k in range(3)]
    write_atomic(root / "toy" / "toy.inter",
                 [("user_id", "token"), ("item_id", "token"), ("timestamp", "float")], rows)
    write_atomic(root / "toy" / "toy.item", [("item_id", "token"), ("title", "token_seq")],
                 [[f"i{k}", f"thing {k}"] for k in range(5)])
    os.chmod(root / "toy", 0o555)  # shared data is read-only
    monkeypatch.setenv("TPAD_SHARED_DATA", str(root))
    yield root
    os.chmod(root / "toy", 0o755)


def test_shared_dataset_is_linked_file_by_file(shared, tmp_path):
    data_path = tmp_path / "dataset"
    target = ensure_dataset("toy", data_path)
    assert target.is_dir() and not target.is_symlink()
    assert (target / "toy.inter").is_symlink() and (target / "toy.inter").read_text().startswith("user_id")
    (target / "toy.features.npy").write_bytes(b"derived artefacts go beside the links")


def test_session_dataset_is_derived_then_rebuilt_when_the_source_changes(shared, tmp_path):
    data_path = tmp_path / "dataset"
    target = ensure_dataset("toy-session", data_path)
    assert (target / "toy-session.train.inter").is_file() and (target / "toy-session.item").is_file()
    first = (target / "toy-session.sessions.json").read_text()
    mtime = (target / "toy-session.train.inter").stat().st_mtime_ns
    ensure_dataset("toy-session", data_path)
    assert (target / "toy-session.train.inter").stat().st_mtime_ns == mtime  # current: untouched
    os.chmod(shared / "toy", 0o755)
    with open(shared / "toy" / "toy.inter", "a") as f:
        f.write("u9\ti1\t86400\nu9\ti2\t86401\n")
    ensure_dataset("toy-session", data_path)
    assert (target / "toy-session.sessions.json").read_text() != first


def test_unknown_dataset_says_what_exists(tmp_path, monkeypatch):
    monkeypatch.setenv("TPAD_SHARED_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(UnknownDatasetError, match=r"dataset 'nope' not found.*Known datasets: .*demo"):
        ensure_dataset("nope", tmp_path / "dataset")


def test_a_generated_demo_under_its_own_name_is_scored_on_its_split_files(tmp_path, monkeypatch, caplog):
    import logging

    from dataset_tools.demo import generate_demo
    from recbole_tpad.data.locate import inferred_settings
    from recbole_tpad.quick_start import run

    folder = tmp_path / "data" / "mydemo"
    generate_demo(folder, items_per_category=10, n_sessions=600, images=False)
    (folder / "demo.inter").rename(folder / "mydemo.inter")  # the tool names files after the folder
    for split in ("train", "valid", "test"):
        (folder / f"demo.{split}.inter").rename(folder / f"mydemo.{split}.inter")
    (folder / "demo.item").rename(folder / "mydemo.item")
    settings = inferred_settings(folder, "mydemo")
    assert settings["benchmark_filename"] == ["train", "valid", "test"]
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO):
        result = run("GRU4Rec", "mydemo", config_dict={
            "data_path": str(tmp_path / "data"), "epochs": 1, "show_progress": False,
            "checkpoint_dir": str(tmp_path / "saved")}, saved=False)
    n_test = sum(1 for _ in open(folder / "mydemo.test.inter")) - 1
    assert result["n_test_cases"] == n_test
    assert "protocol: the benchmark split files mydemo.train/valid/test.inter" in caplog.text
