"""Recommend with a trained checkpoint: the same ranking as evaluation, bad input handled."""

import logging
import sys
from pathlib import Path

import pytest
import torch

from recbole_tpad.quick_start import run
from recbole_tpad.recommend import Recommender, RecommendError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import run_recbole_tpad  # noqa: E402


@pytest.fixture(scope="module")
def checkpoints(demo_root, demo_features, tmp_path_factory):
    from tests.conftest import FAST

    folder = tmp_path_factory.mktemp("rec")
    settings = dict(FAST, data_path=str(demo_root), checkpoint_dir=str(folder / "saved"),
                    build_missing_features=False, epochs=2)
    cwd = Path.cwd()
    import os

    os.chdir(folder)
    try:
        return {m: run(m, "demo", config_dict=settings)["saved_model_file"] for m in ("TPAD", "GRU4Rec")}
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("model", ["TPAD", "GRU4Rec"])
def test_recommend_ranks_a_session_as_evaluation_does(model, checkpoints):
    from recbole.data.interaction import Interaction

    rec = Recommender.from_checkpoint(checkpoints[model])
    session = [rec.id_to_token[i] for i in (5, 9, 17)]
    top = rec.recommend(session, k=10)
    assert len(top) == 10 and all(r.title for r in top)
    # the model's own full-ranking scores for the same prefix
    batch = Interaction({"item_id_list": torch.tensor([[5, 9, 17] + [0] * (rec.max_length - 3)]),
                         "item_length": torch.tensor([3])})
    with torch.no_grad():
        scores = rec.model.full_sort_predict(batch.to(rec.device)).view(-1).cpu()
    scores[0] = -torch.inf
    assert [r.item for r in top] == [rec.id_to_token[i] for i in scores.topk(10).indices.tolist()]
    seen = rec.recommend(session, k=30, exclude_seen=True)
    assert not {r.item for r in seen} & set(session)


def test_unknown_ids_empty_sessions_and_strict_mode(checkpoints, caplog):
    rec = Recommender.from_checkpoint(checkpoints["GRU4Rec"])
    known = rec.id_to_token[7]
    with caplog.at_level(logging.WARNING):
        result = rec.recommend_batch([[known, "no-such-item"], []], k=5)
    assert result[0].skipped == ["no-such-item"] and "no-such-item" in caplog.text
    assert result[1].fallback == "popularity" and len(result[1].items) == 5
    most_popular = rec.id_to_token[int(rec.popularity.argmax())]
    assert result[1].items[0].item == most_popular
    with pytest.raises(RecommendError, match="unknown item id 'no-such-item'"):
        rec.recommend([known, "no-such-item"], strict=True)


def test_run_script_recommends_for_a_file_of_sessions(checkpoints, tmp_path, capsys):
    rec = Recommender.from_checkpoint(checkpoints["GRU4Rec"])
    sessions = tmp_path / "sessions.txt"
    sessions.write_text(f"{rec.id_to_token[3]},{rec.id_to_token[4]}\n\n{rec.id_to_token[8]}\n")
    out = tmp_path / "out.tsv"
    assert run_recbole_tpad.main(["--stage=recommend", f"--checkpoint={checkpoints['GRU4Rec']}",
                                  f"--sessions={sessions}", f"--out={out}", "--topk=3"]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("session\trank\titem") and len(lines) == 1 + 3 * 3
    assert run_recbole_tpad.main(["--stage=recommend", "--checkpoint=/nope.pth", "--session=a"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_a_checkpoint_is_refused_once_its_data_changed(demo_root, demo_features, tmp_path, monkeypatch):
    import shutil

    from recbole_tpad.checkpoints import CheckpointError
    from tests.conftest import FAST

    root = tmp_path / "data"
    shutil.copytree(demo_root / "demo", root / "demo")
    monkeypatch.chdir(tmp_path)
    path = run("GRU4Rec", "demo", config_dict=dict(FAST, data_path=str(root), epochs=1,
                                                    checkpoint_dir=str(tmp_path / "saved")))["saved_model_file"]
    assert Recommender.from_checkpoint(path).recommend(["i00001"], k=3)
    test_file = root / "demo" / "demo.test.inter"
    test_file.write_text(test_file.read_text() + test_file.read_text().splitlines()[1] + "\n")
    with pytest.raises(CheckpointError, match="trained on other contents of dataset 'demo'"):
        Recommender.from_checkpoint(path)


def test_a_checkpoint_whose_data_moved_is_given_its_new_folder(demo_root, demo_features, tmp_path,
                                                               monkeypatch, capsys):
    """The dataset moved (another machine, a moved project): the checkpoint is refused with the
    fix, and nothing is made at the old place (the demo would otherwise be generated there);
    given the new folder it ranks as before; given a folder of other data it is refused."""
    import shutil

    from recbole_tpad.checkpoints import CheckpointError
    from tests.conftest import FAST

    shutil.copytree(demo_root / "demo", tmp_path / "old" / "demo")
    monkeypatch.chdir(tmp_path)
    path = run("GRU4Rec", "demo", config_dict=dict(FAST, data_path=str(tmp_path / "old"), epochs=1,
                                                    checkpoint_dir=str(tmp_path / "saved")))["saved_model_file"]
    before = [r.item for r in Recommender.from_checkpoint(path).recommend(["i00001", "i00002"], k=5)]
    shutil.move(tmp_path / "old", tmp_path / "new")
    with pytest.raises(CheckpointError, match=r"its dataset 'demo' is not where it was trained .*old/demo"):
        Recommender.from_checkpoint(path)
    assert not (tmp_path / "old").exists()
    moved = Recommender.from_checkpoint(path, data_path=tmp_path / "new")
    assert [r.item for r in moved.recommend(["i00001", "i00002"], k=5)] == before
    assert run_recbole_tpad.main(["--stage=recommend", f"--checkpoint={path}", "--session=i00001",
                                  f"--data_path={tmp_path / 'new'}", "--topk=3"]) == 0
    assert run_recbole_tpad.main(["--stage=recommend", f"--checkpoint={path}", "--session=i00001"]) == 2
    assert "--data_path=DIR" in capsys.readouterr().err
    from recbole_tpad.benchmark import content_prior

    prior = ["--weights=1", "--rarities=0", f"--out={tmp_path / 'results'}", f"--checkpoint={path}"]
    assert content_prior.main(prior) == 2 and "is not where it was trained" in capsys.readouterr().err
    assert content_prior.main(prior + [f"--data_path={tmp_path / 'new'}"]) == 0
    other = tmp_path / "other" / "demo"
    shutil.copytree(tmp_path / "new" / "demo", other)
    test_file = other / "demo.test.inter"
    test_file.write_text(test_file.read_text() + test_file.read_text().splitlines()[1] + "\n")
    with pytest.raises(CheckpointError, match="not the ones it saw"):
        Recommender.from_checkpoint(path, data_path=other.parent)


def test_a_trained_id_model_exports_its_item_vectors_as_a_teacher(checkpoints, demo_root, capsys):
    """``python -m recbole_tpad.distill.teacher``: the checkpoint's item vectors, each under its
    item id, for the items it trained on; a model without ID vectors and a bad file are refused."""
    import numpy as np
    import torch

    from recbole_tpad.data.features import load_feature_table, read_metadata
    from recbole_tpad.distill.teacher import TeacherError, item_vectors, main
    from recbole_tpad.quick_start import load_data_and_model

    assert main([f"--checkpoint={checkpoints['GRU4Rec']}"]) == 0
    path = demo_root / "demo" / "demo.teacher-gru4rec.npy"
    try:
        assert "--transition_teacher=teacher-gru4rec" in capsys.readouterr().out
        config, model, dataset, *_ = load_data_and_model(checkpoints["GRU4Rec"])
        tokens = dataset.field2id_token[config["ITEM_ID_FIELD"]]
        table, report = load_feature_table(path, "demo", demo_root / "demo", tokens,
                                           missing_feature="zero")
        found = [k for k in range(1, len(tokens)) if tokens[k] not in set(report.missing)]
        assert len(found) > 0.9 * (len(tokens) - 1)
        weight = model.item_embedding.weight.detach().cpu().numpy()
        np.testing.assert_allclose(table[found], weight[found], atol=1e-6)  # each row is its item's
        meta = read_metadata(path)
        assert meta["producer"]["model"] == "GRU4Rec" and len(meta["producer"]["checkpoint_sha256"]) == 64
    finally:
        path.unlink()
        path.with_suffix(".json").unlink()
    with pytest.raises(TeacherError, match="no item_embedding"):
        item_vectors(torch.nn.Linear(2, 2), "ContentKNN")
    assert main([f"--checkpoint={demo_root / 'demo' / 'demo.item'}"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "demo.item" in error and "Traceback" not in error


def test_ranking_keeps_the_item_table_until_a_weight_or_buffer_changes(checkpoints):
    """In ranking TPAD's item table is computed once and reused by every batch; any change to a
    weight (an optimiser step, a checkpoint loaded, an in-place edit), a buffer (items added) or
    the dtype gives the new table, never the kept one. In training it is always computed anew."""
    rec = Recommender.from_checkpoint(checkpoints["TPAD"])
    model = rec.model.eval()
    with torch.no_grad():
        kept = model.item_representations()
        assert model.item_representations() is kept
        assert torch.equal(kept, model._item_representations())
        state = {k: v.clone() for k, v in model.state_dict().items()}
        model.adapter.proj[-1].bias.add_(1.0)
        edited = model.item_representations()
        assert not torch.allclose(edited, kept) and torch.equal(edited, model._item_representations())
        model.load_state_dict(state)
        assert torch.equal(model.item_representations(), kept)
    # an optimiser step in training, then ranking again
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.item_representations().pow(2).sum().backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        stepped = model.item_representations()
        assert not torch.allclose(stepped, kept) and torch.equal(stepped, model._item_representations())
        model.add_items(model.item_features[1:3].clone())
        assert model.item_representations().shape[0] == stepped.shape[0] + 2
        model.double()
        assert model.item_representations().dtype == torch.float64
    with torch.enable_grad():  # a caller that wants gradients gets a table that has them
        assert model.item_representations().requires_grad


def test_recommend_latency_measures_several_checkpoints_on_the_same_sessions(checkpoints, tmp_path, capsys):
    import json

    from recbole_tpad.benchmark import recommend_latency

    both = f"{checkpoints['GRU4Rec']},{checkpoints['TPAD']}"
    assert recommend_latency.main([f"--checkpoint={both}", "--sessions=30", "--batch=16",
                                   f"--out={tmp_path}"]) == 0
    figures = json.loads((tmp_path / "recommend-demo.json").read_text())
    assert [row["model"] for row in figures["models"]] == ["GRU4Rec", "TPAD"]
    assert figures["sessions"] == 30
    for row in figures["models"]:
        assert 0 < row["single_median_ms"] <= row["single_p95_ms"] and row["batched_sessions_per_s"] > 0
    assert "| TPAD |" in capsys.readouterr().out


def test_recommend_latency_refuses_checkpoints_of_different_datasets(monkeypatch, capsys):
    from types import SimpleNamespace

    from recbole_tpad.benchmark import recommend_latency

    monkeypatch.setattr(recommend_latency, "load", lambda path: (
        SimpleNamespace(config={"dataset": path.split(".")[0]}), None))
    with pytest.raises(SystemExit):
        recommend_latency.main(["--checkpoint=shop.pth,demo.pth"])
    assert "different datasets (demo, shop)" in capsys.readouterr().err
