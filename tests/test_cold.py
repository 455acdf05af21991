"""Cold start: a share of items never in training; warm and cold test cases reported apart;
TPAD ranks cold items from their features, an ID-only model cannot."""

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from dataset_tools.atomic import read_atomic, write_atomic
from dataset_tools.cold import cold_split
from dataset_tools.validate import validate_dataset
from recbole_tpad.data.features import write_feature_file
from recbole_tpad.data.locate import ensure_dataset
from recbole_tpad.evaluation import training_item_counts
from recbole_tpad.model.layers import FeatureWhitening

N_CATEGORIES, PER_CATEGORY = 12, 15


def user_dataset(root, name="shop", users=900, length=8, seed=0):
    """Users whose next item is from the next category (``c -> c + 1``), items with category text."""
    rng = random.Random(seed)
    rows = []
    for u in range(users):
        c = rng.randrange(N_CATEGORIES)
        for k in range(length):
            rows.append([f"u{u}", f"c{c}-{rng.randrange(PER_CATEGORY)}", str(86400 * k + u)])
            c = (c + 1) % N_CATEGORIES
    folder = root / name
    write_atomic(folder / f"{name}.inter",
                 [("user_id", "token"), ("item_id", "token"), ("timestamp", "float")], rows)
    write_atomic(folder / f"{name}.item", [("item_id", "token"), ("category", "token_seq")],
                 [[f"c{c}-{i}", f"category {c}"] for c in range(N_CATEGORIES) for i in range(PER_CATEGORY)])
    return folder


def category_features(folder, name, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(N_CATEGORIES, dim))
    ids = [f"c{c}-{i}" for c in range(N_CATEGORIES) for i in range(PER_CATEGORY)]
    array = np.stack([centres[int(i[1:].split("-")[0])] for i in ids]) + 0.1 * rng.normal(size=(len(ids), dim))
    write_feature_file(folder / f"{name}.text-minilm.npy", array.astype(np.float32), ids, name, folder,
                       {"name": "test-category-features", "config": {}})


def test_cold_items_never_reach_training(tmp_path):
    source = user_dataset(tmp_path)
    counts = cold_split(source, "shop", tmp_path / "shop-cold", "shop-cold", share=0.1, seed=3)
    meta = json.loads((tmp_path / "shop-cold" / "shop-cold.cold.json").read_text())
    cold = set(meta["cold_items"])
    assert len(cold) == counts["cold_items"] == 18  # 10% of 180 items
    split = {s: read_atomic(tmp_path / "shop-cold" / f"shop-cold.{s}.inter")[1] for s in ("train", "valid", "test")}
    trained = {i for row in split["train"] for i in row[1].split() + [row[2]]}
    assert not trained & cold
    assert len(split["test"]) == len(split["valid"]) == 900
    # test = last item given everything before it (cold items included); valid = second last
    assert all(len(row[1].split()) == 7 for row in split["test"])
    assert counts["test_cold_cases"] == sum(row[2] not in trained for row in split["test"]) > 0
    assert validate_dataset(tmp_path / "shop-cold", "shop-cold").ok
    again = cold_split(source, "shop", tmp_path / "again", "again", share=0.1, seed=3)
    assert again == counts  # seeded: the same items, the same split


def test_bad_cold_split_requests_are_refused(tmp_path):
    source = user_dataset(tmp_path)
    with pytest.raises(ValueError, match="between 0 and 1"):
        cold_split(source, "shop", tmp_path / "x", "x", share=1.5)
    write_atomic(tmp_path / "notime" / "notime.inter", [("user_id", "token"), ("item_id", "token")],
                 [["u1", "i1"]])
    with pytest.raises(ValueError, match=r"notime.inter: the cold-start split needs a timestamp field"):
        cold_split(tmp_path / "notime", "notime", tmp_path / "y", "y")


def test_x_cold_is_derived_on_demand_and_rebuilt_when_x_changes(tmp_path):
    data_path = tmp_path / "dataset"
    user_dataset(data_path)
    target = ensure_dataset("shop-cold", data_path)
    train = target / "shop-cold.train.inter"
    stamp = train.stat().st_mtime_ns
    assert ensure_dataset("shop-cold", data_path) == target and train.stat().st_mtime_ns == stamp
    with open(data_path / "shop" / "shop.inter", "a") as f:
        f.write("u0\tc0-0\t9999999\n")
    ensure_dataset("shop-cold", data_path)
    assert train.stat().st_mtime_ns != stamp


def cold_run_settings(tmp_path, monkeypatch):
    """A small cold-start split with category features, and the run settings for it."""
    monkeypatch.chdir(tmp_path)
    data_path = tmp_path / "dataset"
    user_dataset(data_path)
    folder = ensure_dataset("shop-cold", data_path)
    category_features(folder, "shop-cold")
    return small_run_settings(tmp_path)


def small_run_settings(tmp_path):
    return dict(data_path=str(tmp_path / "dataset"), checkpoint_dir=str(tmp_path / "saved"),
                show_progress=False, state="WARNING", epochs=15, train_batch_size=256,
                eval_batch_size=512, embedding_size=32, hidden_size=32, inner_size=64,
                learning_rate=0.005, topk=[5, 10, 20], stopping_step=3,
                build_missing_features=False, feature_source="text-minilm")


def test_tpad_ranks_cold_items_from_features_an_id_model_cannot(tmp_path, monkeypatch):
    from recbole_tpad.quick_start import run

    common = cold_run_settings(tmp_path, monkeypatch)
    tpad = run("TPAD", "shop-cold", config_dict=dict(common, use_id_embedding=False))
    sasrec = run("SASRec", "shop-cold", config_dict=common)
    for result in (tpad, sasrec):
        by_target = result["test_result_by_target"]
        assert by_target["cases"]["cold"] > 50
        assert by_target["cases"]["warm"] + by_target["cases"]["cold"] == 900
        # the split metrics are RecBole's own: the "all" group reproduces its test result
        for metric, value in result["test_result"].items():
            assert by_target["all"][metric] == pytest.approx(float(value), abs=2e-4)
        # tail / head: about a fifth of the cases each, by the target's training count; cold
        # targets (count 0) are in the tail; the buckets cover every case once
        cases = by_target["cases"]
        assert 0.2 * 900 <= cases["tail"] < 0.5 * 900 and 0.2 * 900 <= cases["head"] < 0.5 * 900
        assert by_target["tail_max_train_count"] < by_target["head_min_train_count"]
        assert sum(b["cases"] for b in by_target["buckets"]) == 900
        assert by_target["buckets"][0]["max_count"] <= by_target["buckets"][-1]["min_count"]
    random_recall = 20 / 180
    assert tpad["test_result_by_target"]["cold"]["recall@20"] > 3 * random_recall
    assert sasrec["test_result_by_target"]["cold"]["recall@20"] < \
        tpad["test_result_by_target"]["cold"]["recall@20"] / 3
    assert os.path.isfile(tpad["saved_model_file"])


def test_zero_ids_or_a_content_head_for_cold_items_let_the_fused_model_rank_them(tmp_path, monkeypatch):
    """RecBole's way (``cold_item_ids: learned``) gives a cold item an untrained ID vector that drowns its features;
    ``cold_item_ids: zero`` scores it from its features through the fusion, ``content`` from a
    content head at full weight, and ``id_dropout`` trains the features to carry a ranking
    without IDs: either way the fused model ranks cold items and keeps its warm quality."""
    from recbole_tpad.quick_start import build_experiment, run

    common = cold_run_settings(tmp_path, monkeypatch)
    results = {"learned": run("TPAD", "shop-cold", config_dict=dict(common, cold_item_ids="learned", id_dropout=0.0))}
    for mode in ("zero", "content"):
        results[mode] = run("TPAD", "shop-cold", config_dict=dict(common, cold_item_ids=mode, id_dropout=0.3))
    cold = {name: r["test_result_by_target"]["cold"]["recall@20"] for name, r in results.items()}
    warm = {name: r["test_result_by_target"]["warm"]["recall@20"] for name, r in results.items()}
    for mode in ("zero", "content"):
        assert cold[mode] > 3 * (20 / 180) and cold[mode] > 2 * cold["learned"], cold
        assert warm[mode] > 0.8 * warm["learned"], warm

    # the switches act on the ID part only: cold rows exactly zero; dropout only in training
    _, (train, _, _), trainer = build_experiment("TPAD", "shop-cold", config_dict=dict(
        common, cold_item_ids="zero", id_dropout=0.5))
    model = trainer.model
    ids = model.id_vectors()  # training mode: cold rows and about half the others are zero
    zero_rows = (ids == 0).all(1)
    assert zero_rows[~model.id_trained].all()
    share = zero_rows[model.id_trained].float().mean()
    assert 0.3 < share < 0.7
    model.eval()
    assert torch.equal((model.id_vectors() == 0).all(1), ~model.id_trained)


def test_adapter_dropout_keeps_the_content_path_learning(tmp_path, monkeypatch):
    """``feature_dropout_on: adapter`` (the frozen table is never dropped; its normalisation is
    kept): the content head still learns to rank cold items well above random, and the fused
    model ranks warm ones as well as with dropout on the table."""
    from recbole_tpad.quick_start import run

    common = dict(cold_run_settings(tmp_path, monkeypatch), cold_item_ids="content", id_dropout=0.3)
    table = run("TPAD", "shop-cold", config_dict=common)
    adapter = run("TPAD", "shop-cold", config_dict=dict(common, feature_dropout_on="adapter"))
    cold, warm = ({name: r["test_result_by_target"][part]["recall@20"]
                   for name, r in (("table", table), ("adapter", adapter))} for part in ("cold", "warm"))
    assert cold["adapter"] > 3 * (20 / 180), cold
    assert warm["adapter"] > 0.8 * warm["table"], warm


def test_content_head_represents_exactly_the_items_without_an_id_vector(tmp_path, monkeypatch):
    """``cold_item_ids: content``: in evaluation a cold item's vector is the content head over its
    adapted features and a warm item's is the fusion, untouched; an item added after training
    takes the content path too; without id_dropout the head would never train, so it is refused."""
    from recbole_tpad.quick_start import build_experiment

    common = dict(cold_run_settings(tmp_path, monkeypatch), epochs=1)
    with pytest.raises(ValueError, match="cold_item_ids=content .* set id_dropout > 0"):
        build_experiment("TPAD", "shop-cold", config_dict=dict(common, cold_item_ids="content", id_dropout=0.0))
    _, _, trainer = build_experiment("TPAD", "shop-cold", config_dict=dict(
        common, cold_item_ids="content", id_dropout=0.3))
    model = trainer.model.eval()
    with torch.no_grad():
        items = model.item_representations()
        features = model.adapter(model.item_features)
        content = model.content_head(features)
        fused = model.fusion(model.item_embedding.weight, features)
    cold = ~model.id_trained
    assert cold[1:].any()
    assert torch.allclose(items[cold], content[cold]) and torch.allclose(items[~cold], fused[~cold])
    # in training the head replaces the rows id_dropout drops as well, and is computed on those
    # rows only: the same table as the head over every row, chosen row by row
    model.train()
    with torch.no_grad():
        torch.manual_seed(1)
        items = model.item_representations()
        torch.manual_seed(1)
        features = model.adapter(model.item_features)  # the same draws, in the same order
        keep = model.id_kept()
        torch.manual_seed(1)
        every_row = model.item_representations(with_content=True)[0]
    dropped = ~keep & ~cold
    assert dropped.float().mean() > 0.2 and keep.any()
    expected = torch.where(keep.unsqueeze(1), model.fusion(model.item_embedding.weight, features),
                           model.content_head(features))
    assert torch.allclose(items, expected, atol=1e-6) and torch.allclose(items, every_row, atol=1e-6)
    model.eval()
    model.add_items(model.item_features[1:3].clone())
    with torch.no_grad():
        added = model.item_representations()[-2:]
    assert torch.allclose(added, content[1:3], atol=1e-6)


def test_auxiliary_content_head_loss_trains_the_head_with_every_id_vector_kept(tmp_path, monkeypatch):
    """``content_head_training: auxiliary``: the loss is the objective scored against the fused
    table plus the same objective against every item's content-head vector, so the head trains
    without id_dropout; the trained model ranks cold items from their content while no warm ID
    vector is ever dropped."""
    from recbole_tpad.quick_start import build_experiment, run

    common = cold_run_settings(tmp_path, monkeypatch)
    settings = dict(common, cold_item_ids="content", id_dropout=0.0, content_head_training="auxiliary")
    _, (train, _, _), trainer = build_experiment("TPAD", "shop-cold", config_dict=dict(settings, epochs=1))
    model = trainer.model.eval()  # no dropout: the two losses are exactly comparable
    batch = next(iter(train)).to(model.device)
    objective = model.training_objective
    items, content = model.item_representations(with_content=True)
    query, positives = objective.targets_and_queries(model, batch, items)
    expected = objective.loss(query, positives, items) + objective.loss(query, positives, content)
    loss = model.calculate_loss(batch)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() > objective.loss(query, positives, items).item() + 1.0
    loss.backward()
    assert model.content_head.weight.grad.abs().sum() > 0
    model.train()
    assert torch.equal(model.id_kept(), model.id_trained)  # no ID vector dropped in training

    result = run("TPAD", "shop-cold", config_dict=settings)
    by_target = result["test_result_by_target"]
    assert by_target["cold"]["recall@20"] > 3 * (20 / 180), by_target["cold"]
    assert by_target["warm"]["recall@20"] > 3 * (20 / 180), by_target["warm"]


def test_auxiliary_loss_with_shared_negatives_draws_one_set_per_batch_for_the_content_head(
        tmp_path, monkeypatch):
    """``content_head_negatives: shared``: under sampled softmax the fused table keeps its set
    of negatives per position and the content-head loss draws one set for the whole batch; the
    head still learns to rank cold items."""
    from recbole_tpad.quick_start import build_experiment, run

    settings = dict(cold_run_settings(tmp_path, monkeypatch), cold_item_ids="content", id_dropout=0.0,
                    content_head_training="auxiliary", content_head_negatives="shared",
                    loss_type="SS", n_negatives=16)
    _, (train, _, _), trainer = build_experiment("TPAD", "shop-cold", config_dict=dict(settings, epochs=1))
    model = trainer.model.eval()  # no dropout: only the negatives are drawn
    batch = next(iter(train)).to(model.device)
    objective = model.training_objective
    items, content = model.item_representations(with_content=True)
    query, positives = objective.targets_and_queries(model, batch, items)
    torch.manual_seed(7)
    expected = (objective.loss(query, positives, items, shared=False)
                + objective.loss(query, positives, content, shared=True))
    import recbole_tpad.losses as losses

    drawn, sampled = [], losses.sampled_softmax_loss
    monkeypatch.setattr(losses, "sampled_softmax_loss", lambda *a, shared, **k: (
        drawn.append(shared), sampled(*a, shared=shared, **k))[1])
    torch.manual_seed(7)
    loss = model.calculate_loss(batch)
    assert drawn == [False, True]  # the fused table per position, the content heads per batch
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    monkeypatch.setattr(losses, "sampled_softmax_loss", sampled)

    result = run("TPAD", "shop-cold", config_dict=settings)
    assert result["test_result_by_target"]["cold"]["recall@20"] > 3 * (20 / 180)
    with pytest.raises(ValueError, match="content_head_negatives='x'"):
        build_experiment("TPAD", "shop-cold", config_dict=dict(settings, content_head_negatives="x"))


def test_whitened_features_are_fit_once_kept_in_the_checkpoint_and_applied_to_added_items(
        tmp_path, monkeypatch):
    """``feature_whitening: k``: the model reads a k-wide whitened table; the transform is part
    of the model's state (a rebuilt model takes it from the checkpoint, not from its data); an
    item added after training with an existing item's raw features gets that item's content
    vector, so added items are whitened as the catalogue was."""
    from recbole_tpad.quick_start import build_experiment

    common = dict(cold_run_settings(tmp_path, monkeypatch), epochs=1, feature_whitening=8,
                  cold_item_ids="content", id_dropout=0.3)
    _, (train, _, _), trainer = build_experiment("TPAD", "shop-cold", config_dict=common)
    model = trainer.model.eval()
    raw = train._dataset.item_features
    assert raw.size(1) == 16 and model.item_features.shape == (raw.size(0), 8)
    assert torch.allclose(torch.cov(model.item_features[1:].t()), torch.eye(8), atol=1e-3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert {"whitening.mean", "whitening.projection"} <= set(state)
    _, _, again = build_experiment("TPAD", "shop-cold", config_dict=common)
    again.model.whitening.projection.zero_()
    again.model.load_state_dict(state)
    assert torch.equal(again.model.whitening.projection, state["whitening.projection"])
    with torch.no_grad():
        before = model.content_head(model.adapter(model.item_features[[5]]))
        model.add_items(raw[[5]].clone())
        added = model.item_representations()[-1:]
    assert torch.allclose(added, before, atol=1e-5)


def test_frequency_gate_blends_by_training_count_counted_over_every_prefix(tmp_path, monkeypatch):
    """``frequency_gate``: a warm item's vector is ``g * fused + (1 - g) * content`` with ``g``
    rising with its training count (counted over every prefix, also when ``sequence_loss: all``
    trains on one row per sequence); a cold item keeps its content vector; it needs the
    content head."""
    from recbole_tpad.evaluation import training_item_counts
    from recbole_tpad.quick_start import build_experiment

    common = dict(cold_run_settings(tmp_path, monkeypatch), epochs=1, cold_item_ids="content",
                  id_dropout=0.3, frequency_gate=True)
    with pytest.raises(ValueError, match="frequency_gate .* set cold_item_ids=content"):
        build_experiment("TPAD", "shop-cold", config_dict=dict(common, cold_item_ids="zero"))
    counts = {}
    for loss in ("last", "all"):
        config, (train, _, _), trainer = build_experiment("TPAD", "shop-cold", config_dict=dict(
            common, sequence_loss=loss))
        counts[loss] = trainer.model.log_item_counts.expm1().round().long()
    full = training_item_counts(train.source_dataset, config)
    assert torch.equal(counts["last"], full) and torch.equal(counts["all"], full)
    assert full.sum() == len(train.source_dataset) + int(train.source_dataset.inter_feat[
        config["ITEM_LIST_LENGTH_FIELD"]].eq(1).sum())
    model = trainer.model.eval()
    gate = model.item_frequency_gate()
    order = full[1:].argsort()
    assert (gate[1:][order].diff() >= 0).all() and gate[1:].min() < gate[1:].max()
    with torch.no_grad():
        items = model.item_representations()
        features = model.adapter(model.item_features)
        content = model.content_head(features)
        fused = model.fusion(model.item_embedding.weight, features)
    warm, cold = model.id_trained, ~model.id_trained
    blend = gate.unsqueeze(1) * fused + (1 - gate.unsqueeze(1)) * content
    assert torch.allclose(items[warm], blend[warm], atol=1e-6)
    assert torch.allclose(items[cold], content[cold])


def test_content_prior_adds_the_last_items_content_similarity_in_ranking_only(tmp_path, monkeypatch):
    """``content_prior: w``: ranking scores gain ``w * cos`` of whitened content to the session's
    last item (0 for the session's own items), in full ranking and pointwise alike; training is
    untouched; an item added later gets its content vector; an ID-only SASRecPub with it ranks
    by content where its IDs know nothing (a hybrid baseline)."""
    from recbole_tpad.config import ConfigError
    from recbole_tpad.quick_start import build_experiment

    common = dict(cold_run_settings(tmp_path, monkeypatch), epochs=1, new_item_share=None)
    with pytest.raises(ConfigError, match="content_prior=-1"):
        build_experiment("TPAD", "shop-cold", config_dict=dict(common, content_prior=-1))
    with pytest.raises(ConfigError, match="content_prior_rarity='high'"):
        build_experiment("TPAD", "shop-cold", config_dict=dict(common, content_prior_rarity="high"))
    _, (train, _, test), trainer = build_experiment("TPAD", "shop-cold", config_dict=dict(
        common, content_prior=3.0))
    model = trainer.model.eval()
    inter = next(iter(test))[0]
    seq, lengths = inter[model.ITEM_SEQ], inter[model.ITEM_SEQ_LEN]
    with torch.no_grad():
        with_prior = model.full_sort_predict(inter)
        model.set_content_prior(None)
        plain = model.full_sort_predict(inter)
        model.set_content_prior(3.0)
        pointwise = model.predict(inter)
    raw = train._dataset.item_features
    white = torch.nn.functional.normalize(FeatureWhitening.fit(raw[1:], "all")(raw), dim=-1)
    cosine = white[seq.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)] @ white.t()
    expected = 3.0 * cosine.scatter(1, seq, 0.0)
    assert torch.allclose(with_prior[:, 1:] - plain[:, 1:], expected[:, 1:], atol=1e-4)
    assert torch.allclose(pointwise, with_prior.gather(1, inter[model.ITEM_ID].unsqueeze(1)).squeeze(1), atol=1e-4)
    # content_prior_rarity: each item's weight shrinks as ((1 + count) / (1 + median)) ** -rarity
    counts = training_item_counts(train._dataset, train._dataset.config).double()
    rarity = ((1 + counts) / (1 + counts[counts > 0].median())) ** -0.5
    assert rarity.max() > 1.5 * rarity[1:].min()  # the toy catalogue has rare and frequent items
    with torch.no_grad():
        model.set_content_prior(3.0, 0.5)
        rare_first = model.full_sort_predict(inter)
        rare_pointwise = model.predict(inter)
        model.set_content_prior(3.0)
    assert torch.allclose(rare_first[:, 1:] - plain[:, 1:], (expected * rarity.float())[:, 1:], atol=1e-4)
    assert torch.allclose(rare_pointwise, rare_first.gather(1, inter[model.ITEM_ID].unsqueeze(1)).squeeze(1),
                          atol=1e-4)
    model.train()
    batch = next(iter(train))
    torch.manual_seed(0)
    loss = model.calculate_loss(batch)
    model.set_content_prior(None)
    torch.manual_seed(0)
    assert torch.equal(loss, model.calculate_loss(batch))
    model.set_content_prior(3.0)
    model.eval()
    model.add_items(raw[[7]].clone())
    assert torch.allclose(model.prior_table.vectors[-1], model.prior_table.vectors[7], atol=1e-5)
    _, _, hybrid = build_experiment("SASRecPub", "shop-cold", config_dict=dict(
        common, content_prior=1e4, loss_type="CE", sequence_loss="last"))
    sasrec = hybrid.model.eval()
    with torch.no_grad():
        top = sasrec.full_sort_predict(inter)[:, 1:].argmax(1) + 1
    assert torch.equal(top, (cosine.scatter(1, seq, -2.0))[:, 1:].argmax(1) + 1)


def test_content_prior_training_is_part_of_the_score_in_training_and_ranking(tmp_path, monkeypatch):
    """``content_prior_training: w``: ``w * cos`` of whitened content to the session's last item
    is added to every training logit (the loss is the softmax of scores + prior) and to every
    ranking score, for TPAD and for RecBole's SASRec alike (its table named by feature_source);
    impossible settings get errors that say what to set."""
    from torch.nn import functional as F

    from recbole_tpad.config import ConfigError
    from recbole_tpad.losses import ObjectiveConfigError, item_table
    from recbole_tpad.quick_start import build_experiment

    common = dict(cold_run_settings(tmp_path, monkeypatch), epochs=1, new_item_share=None,
                  content_prior=None)
    with pytest.raises(ConfigError, match="content_prior_training=0"):
        build_experiment("TPAD", "shop-cold", config_dict=dict(common, content_prior_training=0))
    with pytest.raises(ObjectiveConfigError, match="loss_type: CE and sequence_loss: last"):
        build_experiment("TPAD", "shop-cold", config_dict=dict(
            common, content_prior_training=2, loss_type="SS"))
    with pytest.raises(ValueError, match="set feature_source"):
        build_experiment("SASRec", "shop-cold", config_dict=dict(
            common, content_prior_training=2, feature_source=None))
    for name in ("TPAD", "SASRec"):
        _, (train, _, test), trainer = build_experiment(name, "shop-cold", config_dict=dict(
            common, content_prior_training=2.0))
        model = trainer.model.eval()
        assert model.trained_prior is not None, name
        inter = next(iter(test))[0]
        seq, lengths = inter[model.ITEM_SEQ], inter[model.ITEM_SEQ_LEN]
        prior = model.trained_prior
        raw = load_table(train)
        white = F.normalize(FeatureWhitening.fit(raw[1:], "all")(raw), dim=-1)
        expected = 2.0 * (white[seq.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)] @ white.t()).scatter(1, seq, 0.0)
        with torch.no_grad():
            scored = model.full_sort_predict(inter)
            pointwise = model.predict(inter)
            model.trained_prior = None
            plain = model.full_sort_predict(inter)
            model.trained_prior = prior
        assert torch.allclose(scored[:, 1:] - plain[:, 1:], expected[:, 1:], atol=1e-4), name
        assert torch.allclose(pointwise, scored.gather(1, inter[model.ITEM_ID].unsqueeze(1)).squeeze(1), atol=1e-4)
        # training: the loss is the softmax cross-entropy of the model's scores plus the prior
        # (in eval mode, so that no dropout draw differs between the two computations)
        batch = next(iter(train))
        with torch.no_grad():
            loss = model.calculate_loss(batch)
            model.trained_prior = None
            without = model.calculate_loss(batch)
            model.trained_prior = prior
            objective, items = model.training_objective, item_table(model)
            query, positives = objective.targets_and_queries(model, batch, items)
            logits = query @ items.t() + prior(model, batch)
            if objective.unseen is not None:
                logits = logits.masked_fill(objective.unseen, float("-inf"))
        assert not torch.allclose(loss, without), name
        assert torch.allclose(loss, F.cross_entropy(logits, positives), atol=1e-5), name
    # an item added after training gets its content vector in the trained prior too (TPAD)
    _, (train, _, test), trainer = build_experiment("TPAD", "shop-cold", config_dict=dict(
        common, content_prior_training=2.0))
    model = trainer.model.eval()
    model.add_items(train._dataset.item_features[[7]].clone())
    assert torch.allclose(model.trained_prior.table.vectors[-1], model.trained_prior.table.vectors[7], atol=1e-5)
    with torch.no_grad():
        assert model.full_sort_predict(next(iter(test))[0]).shape[1] == model.n_items == len(model.trained_prior.table.vectors)
    # with the prior after training as well, both read one whitened table, and an added item
    # enters it once
    _, (train, _, _), trainer = build_experiment("TPAD", "shop-cold", config_dict=dict(
        common, content_prior_training=2.0, content_prior=1.0))
    model = trainer.model.eval()
    assert model.prior_table is model.trained_prior.table
    model.add_items(train._dataset.item_features[[7]].clone())
    assert len(model.prior_table.vectors) == model.n_items


def load_table(train):
    """The feature table of a run's training split (TPAD's own, or loaded for an ID model)."""
    from recbole_tpad.data.dataset import load_item_features

    table = getattr(train._dataset, "item_features", None)
    return table if table is not None else load_item_features(train._dataset.config, train._dataset)[0]


def test_content_prior_search_climbs_each_rarity_until_validation_falls():
    """Weight 0 is tried once; each rarity's weights go up until the score falls; the best
    pair wins, the smaller weight and rarity on a tie."""
    from recbole_tpad.prior_grid import search_content_prior

    peaks = {0.0: 2.0, 0.5: 4.0}  # each rarity's score rises to its peak weight, then falls
    calls = []

    def evaluate(weight, rarity):
        calls.append((weight, rarity))
        return -abs(weight - peaks[rarity]) + rarity, None

    chosen, tried = search_content_prior(evaluate, (0.0, 1.0, 2.0, 4.0, 8.0, 16.0), (0.0, 0.5))
    assert calls == [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (4.0, 0.0),
                     (1.0, 0.5), (2.0, 0.5), (4.0, 0.5), (8.0, 0.5)]
    assert chosen == (4.0, 0.5) and [pair for pair, _, _ in tried] == calls
    chosen, _ = search_content_prior(lambda w, r: (1.0, None), (0.0, 1.0), (0.0, 0.5))
    assert chosen == (0.0, 0.0)
    calls.clear()  # climb=False (a constrained choice): every weight of every rarity
    chosen, tried = search_content_prior(evaluate, (0.0, 1.0, 2.0, 4.0, 8.0, 16.0), (0.0, 0.5), climb=False)
    assert calls == [(0.0, 0.0)] + [(w, r) for r in (0.0, 0.5) for w in (1.0, 2.0, 4.0, 8.0, 16.0)]
    assert chosen == (4.0, 0.5)


def test_content_prior_valid_is_chosen_on_validation_and_kept_in_the_checkpoint(tmp_path, monkeypatch):
    """TPAD's default ``content_prior: valid`` and ``content_prior_rarity: valid``: after
    training, the weight and rarity with the best validation NDCG@10 (0 included) are set,
    reported and written into the best checkpoint, so the rebuilt model ranks with them; an
    ID-only TPAD has no prior to choose and no table."""
    from recbole_tpad.prior_grid import CONTENT_PRIOR_RARITIES
    from recbole_tpad.quick_start import load_experiment, run

    settings = dict(cold_run_settings(tmp_path, monkeypatch), epochs=2)
    result = run("TPAD", "shop-cold", config_dict=settings)
    prior = result["content_prior"]
    assert prior["metric"] == "ndcg@10" and "0/0" in prior["valid"]
    assert {key.split("/")[1] for key in prior["valid"]} == {f"{r:g}" for r in CONTENT_PRIOR_RARITIES}
    assert prior["valid"][f"{prior['chosen']:g}/{prior['rarity']:g}"] == max(prior["valid"].values())
    _, _, trainer = load_experiment(result["saved_model_file"])
    assert trainer.model.content_prior == (prior["chosen"] or None)
    assert trainer.model.content_prior_rarity == prior["rarity"]
    assert not (trainer.model.content_prior_to_choose or trainer.model.content_prior_rarity_to_choose)
    ids_only = run("TPAD", "shop-cold", config_dict=dict(settings, use_features=False, epochs=1))
    assert ids_only["content_prior"] is None


def test_content_prior_benchmark_chooses_on_validation_for_tpad_and_the_hybrid_baseline(
        tmp_path, monkeypatch, capsys):
    """The benchmark evaluates a checkpoint over the weights on validation, chooses the best
    validation NDCG@10, reads the test split at 0 and at the choice (0 equals the model's own
    test result), and takes an ID-only SASRecPub checkpoint and a RecBole SASRec one too
    (MiniLM-named table; the hybrid baselines). With
    ``--cold_floor`` it walks the whole grid and chooses the best among the points whose cold
    Recall@20 is at least that share of warm, and refuses without reading test when none is, or
    at its first evaluation when validation has no cold case."""
    from recbole_tpad.benchmark import content_prior
    from recbole_tpad.quick_start import run

    settings = dict(cold_run_settings(tmp_path, monkeypatch), epochs=2)
    out = tmp_path / "results"
    # trained without a prior, so that the benchmark's weight 0 is the run's own test result
    for model, extra in (("TPAD", {"content_prior": None}),
                         ("SASRecPub", {"loss_type": "CE", "sequence_loss": "last"}),
                         ("SASRec", {})):  # RecBole's: the same prior, around its scores
        result = run(model, "shop-cold", config_dict=dict(settings, **extra))
        assert content_prior.main([f"--checkpoint={result['saved_model_file']}", "--weights=1,4",
                                   "--rarities=0,0.5", f"--out={out}", f"--tag=-{model}"]) == 0
        data = json.loads((out / f"content-prior-shop-cold-{model}.json").read_text())
        tried = [(r["weight"], r["rarity"]) for r in data["valid"]]
        assert tried[:2] == [(0.0, 0.0), (1.0, 0.0)] and (1.0, 0.5) in tried
        assert data["valid"][1]["valid"] != data["valid"][0]["valid"]  # the prior reached the ranking
        best = max(r["valid"]["all"]["ndcg@10"] for r in data["valid"])
        chosen = next(r for r in data["valid"]
                      if (r["weight"], r["rarity"]) == (data["chosen_weight"], data["chosen_rarity"]))
        assert chosen["valid"]["all"]["ndcg@10"] == best
        assert set(data["test"]) == {"0/0", f"{data['chosen_weight']:g}/{data['chosen_rarity']:g}"}
        own = result["test_result_by_target"]["all"]["ndcg@10"]
        assert abs(data["test"]["0/0"]["all"]["ndcg@10"] - own) < 1e-3, (data["test"], own)
        assert (out / f"content-prior-shop-cold-{model}.png").stat().st_size > 0
        if model == "TPAD":  # its prior ranks by another table while the model reads its own
            folder = tmp_path / "dataset" / "shop-cold"
            ids = [f"c{c}-{i}" for c in range(N_CATEGORIES) for i in range(PER_CATEGORY)]
            noise = np.random.default_rng(1).normal(size=(len(ids), 8)).astype(np.float32)
            write_feature_file(folder / "shop-cold.text-noise.npy", noise, ids, "shop-cold", folder,
                               {"name": "test-noise", "config": {}})
            assert content_prior.main([f"--checkpoint={result['saved_model_file']}", "--weights=1,4",
                                       "--rarities=0,0.5", "--prior_source=text-noise", f"--out={out}",
                                       "--tag=-noise"]) == 0
            other = json.loads((out / "content-prior-shop-cold-noise.json").read_text())
            assert other["prior_source"] == "text-noise" and data["prior_source"] == "text-minilm"
            assert other["valid"][0] == data["valid"][0]  # weight 0: the model's own input is unchanged
            assert other["valid"][1]["valid"] != data["valid"][1]["valid"]  # the prior's table is not
            capsys.readouterr()
            assert content_prior.main([f"--checkpoint={result['saved_model_file']}", "--weights=1",
                                       "--prior_source=text-absent", f"--out={out}"]) == 2
            error = capsys.readouterr().err
            assert "shop-cold.text-absent.npy does not exist" in error and "Traceback" not in error
            # the cold-start rule: the best validation NDCG@10 with cold >= floor x warm
            assert content_prior.main([f"--checkpoint={result['saved_model_file']}", "--weights=1,4",
                                       "--rarities=0,0.5", "--cold_floor=1000", f"--out={out}",
                                       "--tag=-unreachable"]) == 1
            assert not (out / "content-prior-shop-cold-unreachable.json").exists()  # test not read
            assert content_prior.main([f"--checkpoint={result['saved_model_file']}", "--weights=1,4",
                                       "--rarities=0,0.5", "--cold_floor=0.05", f"--out={out}",
                                       "--tag=-floor"]) == 0
            floor = json.loads((out / "content-prior-shop-cold-floor.json").read_text())
            eligible = [r for r in floor["valid"]
                        if r["valid"]["cold"]["recall@20"] >= 0.05 * r["valid"]["warm"]["recall@20"]]
            chosen = next(r for r in floor["valid"] if (r["weight"], r["rarity"])
                          == (floor["chosen_weight"], floor["chosen_rarity"]))
            assert floor["cold_floor"] == 0.05 and chosen in eligible
            assert len(floor["valid"]) == 1 + 2 * 2  # weight 0 once, then every weight x rarity
            assert chosen["valid"]["all"]["ndcg@10"] == max(r["valid"]["all"]["ndcg@10"] for r in eligible)
            assert set(floor["test"]) == {"0/0", f"{floor['chosen_weight']:g}/{floor['chosen_rarity']:g}"}
            real, calls = content_prior.slice_metrics, []

            def no_cold_case(*args):  # a split whose validation has no cold target
                calls.append(args)
                metrics, cases = real(*args)
                return metrics, dict(cases, cold=0)

            monkeypatch.setattr(content_prior, "slice_metrics", no_cold_case)
            capsys.readouterr()
            assert content_prior.main([f"--checkpoint={result['saved_model_file']}", "--weights=1,4",
                                       "--rarities=0,0.5", "--cold_floor=0.5", f"--out={out}",
                                       "--tag=-nocold"]) == 1
            assert len(calls) == 1 and "has no case with a cold target" in capsys.readouterr().err
            assert not (out / "content-prior-shop-cold-nocold.json").exists()
            monkeypatch.setattr(content_prior, "slice_metrics", real)
    capsys.readouterr()
    assert content_prior.main([f"--checkpoint={tmp_path / 'none.pth'}"]) == 2
    error = capsys.readouterr().err
    assert "none.pth: no such checkpoint" in error and "Traceback" not in error
    with pytest.raises(SystemExit):
        content_prior.main([f"--checkpoint={result['saved_model_file']}", "--weights=-1"])
    with pytest.raises(SystemExit):
        content_prior.main([f"--checkpoint={result['saved_model_file']}", "--cold_floor=0"])


def test_content_prior_benchmark_explores_a_popularity_adjustment_on_validation_only(
        tmp_path, monkeypatch):
    """``--adjustments``: the validation figures of the own scores and of the chosen point with
    tau x log(1 + training count) subtracted; tau 0 is the search's own figures, a large tau
    pushes the most-trained items down (head NDCG@10 falls), and neither the choice nor the
    test figures change."""
    from recbole_tpad.benchmark import content_prior
    from recbole_tpad.quick_start import run

    settings = dict(cold_run_settings(tmp_path, monkeypatch), epochs=2, content_prior=None)
    result = run("TPAD", "shop-cold", config_dict=settings)
    out = tmp_path / "results"
    common = [f"--checkpoint={result['saved_model_file']}", "--weights=1,4", "--rarities=0",
              f"--out={out}"]
    assert content_prior.main(common + ["--tag=-plain"]) == 0
    assert content_prior.main(common + ["--adjustments=0.5,50", "--tag=-adjusted"]) == 0
    plain, adjusted = (json.loads((out / f"content-prior-shop-cold-{tag}.json").read_text())
                       for tag in ("plain", "adjusted"))
    assert plain["adjustment_valid"] == []
    assert adjusted["test"] == plain["test"] and adjusted["chosen_weight"] == plain["chosen_weight"]
    grid = {(r["weight"], r["rarity"]): r["valid"] for r in plain["valid"]}
    rows = {(r["weight"], r["rarity"], r["adjustment"]): r["valid"] for r in adjusted["adjustment_valid"]}
    chosen = (plain["chosen_weight"], plain["chosen_rarity"])
    assert set(rows) == {(w, r, t) for w, r in {(0.0, 0.0), chosen} for t in (0.0, 0.5, 50.0)}
    for weight, rarity in {(0.0, 0.0), chosen}:
        assert rows[(weight, rarity, 0.0)] == grid[(weight, rarity)]
        assert rows[(weight, rarity, 50.0)]["head"]["ndcg@10"] < rows[(weight, rarity, 0.0)]["head"]["ndcg@10"]
    assert "Popularity adjustment, validation only" in (out / "content-prior-shop-cold-adjusted.md").read_text()
    with pytest.raises(SystemExit):
        content_prior.main(common + ["--adjustments=-1"])


def test_item_attributes_let_the_fused_model_rank_cold_items_its_features_cannot(tmp_path, monkeypatch):
    """Item features that are noise, but a brand attribute shared by the items of a category
    (whose successor category is what users buy next): with ``item_attributes`` the default
    fused TPAD ranks cold items, since their brand's vector was trained by the warm items of that
    brand; without, it cannot."""
    from recbole_tpad.quick_start import run

    monkeypatch.chdir(tmp_path)
    data_path = tmp_path / "dataset"
    source = user_dataset(data_path)
    write_atomic(source / "shop.item", [("item_id", "token"), ("brand_id", "token")],
                 [[f"c{c}-{i}", f"b{c}"] for c in range(N_CATEGORIES) for i in range(PER_CATEGORY)])
    folder = ensure_dataset("shop-cold", data_path)
    ids = [f"c{c}-{i}" for c in range(N_CATEGORIES) for i in range(PER_CATEGORY)]
    noise = np.random.default_rng(1).normal(size=(len(ids), 16)).astype(np.float32)
    write_feature_file(folder / "shop-cold.text-minilm.npy", noise, ids, "shop-cold", folder,
                       {"name": "test-noise", "config": {}})
    common = dict(small_run_settings(tmp_path), cold_item_ids="content", id_dropout=0.3)
    plain = run("TPAD", "shop-cold", config_dict=common)
    with_brand = run("TPAD", "shop-cold", config_dict=dict(common, item_attributes=["brand_id"]))
    cold = {name: r["test_result_by_target"]["cold"]["recall@20"]
            for name, r in (("plain", plain), ("brand", with_brand))}
    assert cold["brand"] > 3 * (20 / 180) and cold["brand"] > 2 * cold["plain"], cold


def test_new_item_share_mixes_two_rankings_with_the_validation_prior(tmp_path, monkeypatch):
    """The default TPAD ranks as a mixture: the softmax of its mixed scores gives the items with
    no training interaction exactly ``new_item_share`` of the mass, measured on the validation
    targets, and leaves the order within trained and within new items as the model's own;
    training scores are untouched; a share that is not a probability is refused."""
    from recbole_tpad.quick_start import build_experiment

    common = dict(cold_run_settings(tmp_path, monkeypatch), epochs=1)
    _, (train, valid, _), trainer = build_experiment("TPAD", "shop-cold", config_dict=common)
    model = trainer.model
    # the prior: the validation targets that never occur in training, counted by hand
    fields, rows = read_atomic(tmp_path / "dataset" / "shop-cold" / "shop-cold.valid.inter")
    _, train_rows = read_atomic(tmp_path / "dataset" / "shop-cold" / "shop-cold.train.inter")
    trained = {i for r in train_rows for i in r[1].split() + [r[2]]}
    new_targets = sum(r[2] not in trained for r in rows)
    assert new_targets > 0
    assert model.new_item_share == pytest.approx((new_targets + 1) / (len(rows) + 2))

    batch = next(iter(valid))[0]
    new = ~model.id_trained
    new[0] = False
    model.eval()
    with torch.no_grad():
        items = model.item_representations()
        raw = model.forward(batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN], items) @ items.t()
        mixed = model.full_sort_predict(batch)
    mass = torch.softmax(mixed[:, 1:], 1)[:, new[1:]].sum(1)
    assert torch.allclose(mass, torch.full_like(mass, model.new_item_share), atol=1e-5)
    for part in (new, model.id_trained):
        assert torch.equal(mixed[:, part].argsort(1), raw[:, part].argsort(1))
    model.set_new_item_share(0.5)
    with torch.no_grad():
        half = torch.softmax(model.full_sort_predict(batch)[:, 1:], 1)[:, new[1:]].sum(1)
    assert torch.allclose(half, torch.full_like(half, 0.5), atol=1e-5)
    model.train()
    with torch.no_grad():
        assert torch.equal(model.mix_new_items(raw), raw)
    # items added after training: the measured share was for the new items of the catalogue;
    # one more item raises the new-item part by one item's share
    calibrated = model.new_items_calibrated
    assert calibrated == int(new.sum())
    fresh = build_experiment("TPAD", "shop-cold", config_dict=common)[2].model.eval()
    fresh.add_items(fresh.item_features[1:2].clone())
    with torch.no_grad():
        mass = torch.softmax(fresh.full_sort_predict(batch)[:, 1:], 1)[:, ~fresh.id_trained[1:]].sum(1)
    expected = fresh.new_item_share * (calibrated + 1) / calibrated
    assert torch.allclose(mass, torch.full_like(mass, expected), atol=1e-5)
    with pytest.raises(ValueError, match="new_item_share=1.5: give a number between 0 and 1"):
        model.set_new_item_share(1.5)
    with pytest.raises(ValueError, match="new_item_share='often': use valid"):
        build_experiment("TPAD", "shop-cold", config_dict=dict(common, new_item_share="often"))
    # the ID-only and features-only ablations build with TPAD's defaults (id_dropout 0.3,
    # cold_item_ids content) and a dataset's item_attributes: they have no ID/content choice to
    # make, and an ID-only model has no content path for attributes
    for ablation in ({"use_features": False}, {"use_id_embedding": False}):
        _, _, other = build_experiment("TPAD", "shop-cold", config_dict=dict(
            common, item_attributes=["category"], **ablation))
        id_only = ablation == {"use_features": False}
        assert other.model.id_dropout == 0.0
        assert (other.model.new_item_share is None) == id_only
        assert (other.model.attributes is None) == id_only


def test_new_item_share_benchmark_trades_warm_for_cold_recall_on_validation(tmp_path, monkeypatch):
    """Raising the share moves every new item up in every list: along the grid, validation cold
    recall never falls and warm recall never rises; the share chosen on validation meets the
    asked cold/warm ratio, and the test split is reported at it."""
    from recbole_tpad.benchmark import new_item_share
    from recbole_tpad.quick_start import run

    result = run("TPAD", "shop-cold", config_dict=dict(cold_run_settings(tmp_path, monkeypatch), epochs=4))
    out = tmp_path / "results"
    assert new_item_share.main([f"--checkpoint={result['saved_model_file']}", "--shares=0.001,0.01,0.1,0.5",
                                "--cold-ratio=0.8", f"--out={out}"]) == 0
    data = json.loads((out / "new-item-share-shop-cold.json").read_text())
    rows = data["valid"]
    assert len(rows) == 5  # the grid and the calibrated prior
    cold = [r["valid"]["cold"]["recall@20"] for r in rows]
    warm = [r["valid"]["warm"]["recall@20"] for r in rows]
    assert cold == sorted(cold) and warm == sorted(warm, reverse=True)
    assert cold[-1] > cold[0]
    chosen = next(r for r in rows if r["share"] == data["chosen_share"])
    if "smallest share" in data["reason"]:
        assert chosen["valid"]["cold"]["recall@20"] >= 0.8 * chosen["valid"]["warm"]["recall@20"]
    assert set(data["test"]) == {"all", "warm", "cold"}
    # without the mixture the model scores its new items below the whole calibrated grid's best
    assert data["valid_plain"]["cold"]["recall@20"] <= cold[-1]
    assert (out / "new-item-share-shop-cold.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        new_item_share.main([f"--checkpoint={result['saved_model_file']}", "--shares=2"])


def test_id_init_features_starts_each_id_vector_beside_items_with_its_content(tmp_path, monkeypatch):
    """``id_init: features``: the ID vectors start as the item features PCA-whitened (the top
    ``embedding_size`` directions, the rest random) at the spread ``weight_init`` gives, so an
    item's nearest ID vector is one of its own category, as its features say (a random start:
    chance); the padding row stays zero; a TPAD without both paths, or another value, is
    refused. RecBole's SASRec gets the same start from its ``feature_source``, or is told to
    name one."""
    from recbole.utils import get_model as recbole_get_model
    from recbole.utils import init_seed

    from dataset_tools.atomic import read_item_table
    from recbole_tpad.config import ConfigError, check_values
    from recbole_tpad.model.layers import FeatureWhitening
    from recbole_tpad.quick_start import build_experiment
    from tests.conftest import nearest_neighbour_agreement

    common = dict(cold_run_settings(tmp_path, monkeypatch), epochs=1)
    (_, (train, _, _), random_start), (feature_config, _, feature_start) = (
        build_experiment("TPAD", "shop-cold", config_dict=dict(common, id_init=value))
        for value in ("random", "features"))
    dataset = train._dataset
    items = read_item_table(tmp_path / "dataset" / "shop-cold", "shop-cold")
    category = [items[token]["category"] for token in dataset.field2id_token["item_id"][1:]]
    category = torch.tensor([sorted(set(category)).index(c) for c in category])
    features = feature_start.model.item_features
    start = feature_start.model.item_embedding.weight.detach()
    assert start.shape[1] == 32 and features.shape[1] == 16
    assert torch.equal(start[0], torch.zeros(32))
    spread = float(random_start.model.item_embedding.weight[1:].detach().std())
    white = FeatureWhitening.fit(features[1:], 16)(features[1:])
    assert torch.allclose(start[1:, :16], white * spread, rtol=0.05, atol=1e-4)
    assert abs(float(start[1:, 16:].std()) / spread - 1) < 0.1  # the rest keeps its random start
    # a TPAD starts itself when it is built, so RecBole's own run_recbole, which builds it with
    # get_model(name)(config, dataset) and nothing of the plugin's around it, gives the same start
    init_seed(feature_config["seed"], feature_config["reproducibility"])
    by_recbole = recbole_get_model("TPAD")(feature_config, dataset)
    assert torch.equal(by_recbole.item_embedding.weight.detach(), start)
    random_agreement = nearest_neighbour_agreement(random_start.model.item_embedding.weight[1:].detach(), category)
    feature_agreement = nearest_neighbour_agreement(start[1:], category)
    assert feature_agreement > 0.9 and random_agreement < 0.5, (feature_agreement, random_agreement)
    with pytest.raises(ValueError, match="id_init=features .* has none .use_id_embedding: False"):
        build_experiment("TPAD", "shop-cold", config_dict=dict(common, id_init="features",
                                                               use_id_embedding=False))
    with pytest.raises(ConfigError, match="id_init='pca': use one of random, features"):
        check_values({"id_init": "pca"})
    # RecBole's ID models take the same start from the table feature_source names
    (_, _, sasrec), (_, _, random_sasrec) = (
        build_experiment("SASRec", "shop-cold", config_dict=dict(common, id_init=value))
        for value in ("features", "random"))
    ids = sasrec.model.item_embedding.weight.detach()
    spread = float(random_sasrec.model.item_embedding.weight[1:].detach().std())
    assert torch.allclose(ids[1:, :16], white * spread, rtol=0.05, atol=1e-4)
    assert nearest_neighbour_agreement(ids[1:], category) > 0.9
    # ... and so do the ID-only TPADs (no table of their own: TPAD-ID, the published SASRec)
    for model, settings in (("TPAD", {"use_features": False}), ("SASRecPub", {"loss_type": "CE"})):
        (_, _, started), (_, _, unstarted) = (
            build_experiment(model, "shop-cold", config_dict=dict(common, id_init=value, **settings))
            for value in ("features", "random"))
        ids = started.model.item_embedding.weight.detach()
        assert not started.model.use_features
        spread = float(unstarted.model.item_embedding.weight[1:].detach().std())
        assert torch.allclose(ids[1:, :16], white * spread, rtol=0.05, atol=1e-4), model
        assert torch.equal(ids[0], torch.zeros(32))
    with pytest.raises(ConfigError, match="id_init=features: SASRec reads no item features .* feature_source"):
        build_experiment("SASRec", "shop-cold", config_dict=dict(common, id_init="features",
                                                                 feature_source=None))


def test_an_id_model_started_from_a_missing_table_gets_it_built_as_tpad_would(tmp_path, monkeypatch):
    """RecBole's SASRec with ``id_init: features`` and no MiniLM table yet: the table is built
    first (``build_missing_features``, unset for RecBole's own models, means the plugin's
    default, on), and the start is made from it; with ``build_missing_features: False`` the run
    is refused with the missing file's name and the command that builds it."""
    from recbole_tpad.data.features import FeatureFileError
    from recbole_tpad.quick_start import build_experiment
    from recbole_tpad.text import encoder

    settings = dict(cold_run_settings(tmp_path, monkeypatch), epochs=1, id_init="features")
    table = tmp_path / "dataset" / "shop-cold" / "shop-cold.text-minilm.npy"
    files = [table, table.with_suffix(".json")]
    (_, _, started) = build_experiment("SASRec", "shop-cold", config_dict=settings)
    for path in files:
        path.rename(path.with_name(path.name + ".away"))
    built = []

    def stand_in(dataset, folder, path, **kwargs):  # MiniLM's encoder, as a file move
        built.append((dataset, Path(path)))
        for original in files:
            original.with_name(original.name + ".away").rename(original)

    monkeypatch.setattr(encoder, "build_text_features", stand_in)
    with pytest.raises(FeatureFileError, match=r"shop-cold.text-minilm.npy does not exist. Make it "
                                               r"with: .*--stage=features --dataset=shop-cold"):
        build_experiment("SASRec", "shop-cold", config_dict=settings)
    assert built == []
    unset = {k: v for k, v in settings.items() if k != "build_missing_features"}
    (_, _, rebuilt) = build_experiment("SASRec", "shop-cold", config_dict=unset)
    assert built == [("shop-cold", table)]
    assert torch.equal(rebuilt.model.item_embedding.weight, started.model.item_embedding.weight)


def test_a_checkpoint_started_from_features_loads_without_its_feature_table(tmp_path, monkeypatch):
    """A RecBole model trained with ``id_init: features`` is rebuilt from its checkpoint alone:
    the start, which the checkpoint's weights replace, is not made again, so the feature table
    it was started from need not be there (nor be built) to rank with it."""
    from recbole_tpad.checkpoints import load_checkpoint
    from recbole_tpad.quick_start import load_experiment, run

    common = dict(cold_run_settings(tmp_path, monkeypatch), epochs=1, id_init="features")
    result = run("SASRec", "shop-cold", config_dict=common)
    table = tmp_path / "dataset" / "shop-cold" / "shop-cold.text-minilm.npy"
    table.rename(table.with_suffix(".away"))
    _, _, trainer = load_experiment(result["saved_model_file"])
    saved = load_checkpoint(result["saved_model_file"])["state_dict"]
    assert torch.equal(trainer.model.item_embedding.weight.detach().cpu(),
                       saved["item_embedding.weight"].cpu())
