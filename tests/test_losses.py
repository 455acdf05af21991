"""The plugin's objectives (recbole_tpad.losses) and the evaluation protocol switches."""

import math

import pytest
import torch
from torch.nn import functional as F

from recbole_tpad.losses import ObjectiveConfigError, sampled_softmax_loss
from recbole_tpad.quick_start import build_experiment, run


def test_sampled_softmax_over_the_whole_catalogue_equals_full_softmax_ce():
    torch.manual_seed(0)
    items = torch.randn(50, 8)  # row 0 = padding
    query = torch.randn(30, 8)
    positives = torch.randint(1, 50, (30,))
    full = F.cross_entropy(query @ items[1:].t(), positives - 1)
    for n in (49, 1000):
        assert torch.allclose(sampled_softmax_loss(query, positives, items, n), full, atol=1e-5)
    # fewer negatives: a different (sampled) value
    assert not torch.allclose(sampled_softmax_loss(query, positives, items, 5), full, atol=1e-3)


def test_items_outside_the_candidates_are_never_trained_as_losers():
    """train_negatives: seen passes the seen items as candidates: the others get no gradient, in
    sampled and full softmax alike, and the full softmax over the candidates is exact."""
    torch.manual_seed(0)
    items = torch.randn(40, 8, requires_grad=True)
    query = torch.randn(64, 8)
    candidates = torch.arange(1, 30)  # items 30..39 never occur in training
    positives = candidates[torch.randint(0, len(candidates), (64,))]
    for n in (8, 100):
        items.grad = None
        sampled_softmax_loss(query, positives, items, n, candidates=candidates).backward()
        assert items.grad[30:].abs().sum() == 0 and items.grad[1:30].abs().sum() > 0
    exact = F.cross_entropy(query @ items[1:30].t(), positives - 1)
    assert torch.allclose(sampled_softmax_loss(query, positives, items, 100, candidates=candidates), exact, atol=1e-5)


def test_the_positive_is_never_its_own_negative():
    items = torch.randn(3, 4)  # one real negative candidate besides the positive
    query = torch.randn(6, 4)
    positives = torch.full((6,), 2)
    # only items 1 and 2 can be drawn; every draw of 2 is masked, so the loss is at most
    # the loss against item 1 alone, and exactly 0 when every draw is the positive
    generator = torch.Generator().manual_seed(1)
    loss = sampled_softmax_loss(query, positives, items, 1, generator=generator)
    pos = query @ items[2]
    neg = query @ items[1]
    upper = F.softplus(neg - pos).mean()
    assert 0 <= loss.item() <= upper.item() + 1e-6
    # popularity sampling that draws only item 2 (of 4 real items): every negative is masked
    items = torch.randn(5, 4)
    log_q = torch.tensor([-math.inf, -1e9, 0.0, -1e9, -1e9])
    assert sampled_softmax_loss(query, positives, items, 2, log_q=log_q).item() == pytest.approx(0.0)


def test_popularity_negatives_follow_q_and_skip_padding():
    weights = torch.tensor([0.0, 1.0, 2.0, 7.0])
    log_q = (weights / weights.sum()).log()
    drawn = torch.multinomial(log_q.exp().expand(1, -1), 20000, replacement=True,
                              generator=torch.Generator().manual_seed(0))
    share = torch.bincount(drawn.flatten(), minlength=4).float() / drawn.numel()
    assert share[0] == 0 and abs(share[3].item() - 0.7) < 0.02


def popularity_recall(train_dataset, test_data, config, k=10):
    from recbole_tpad.evaluation import training_item_counts

    top = training_item_counts(train_dataset, config).topk(k).indices
    targets = test_data._dataset.inter_feat[config["ITEM_ID_FIELD"]]
    return torch.isin(targets, top).float().mean().item()


def test_sasrec_trained_with_sampled_softmax_beats_popularity_widely(run_config):
    settings = dict(run_config, epochs=12, n_negatives=32, embedding_size=32, inner_size=32,
                    train_batch_size=64, learning_rate=0.005)
    config, (train, _, test), _ = build_experiment("SASRecPub", "demo", config_dict=settings)
    assert config["loss_type"] == "SS" and config["sequence_loss"] == "all"
    # one training row per session: the loss is taken at every position of it
    assert len(train._dataset) < len(train.source_dataset)
    pop = popularity_recall(train.source_dataset, test, config)
    result = run("SASRecPub", "demo", config_dict=settings, saved=False)
    assert result["test_result"]["recall@10"] > 2 * pop + 0.05, (result["test_result"], pop)


@pytest.mark.parametrize("model,settings", [
    ("GRU4Rec", {"loss_type": "SS", "sequence_loss": "all", "n_negatives": 16}),
    ("NARM", {"loss_type": "SS", "negative_sampling": "popularity", "n_negatives": 16}),
    ("TPAD", {"loss_type": "SS", "sequence_loss": "all", "n_negatives": 16, "shared_negatives": True}),
])
def test_recbole_models_and_tpad_train_with_the_plugin_objective(model, settings, run_config):
    result = run(model, "demo", config_dict=dict(run_config, epochs=1, **settings), saved=False)
    assert all(math.isfinite(v) for v in result["test_result"].values())


@pytest.mark.parametrize("model,settings,says", [
    ("NARM", {"sequence_loss": "all"}, "causal encoder"),
    ("BERT4Rec", {"loss_type": "SS"}, "masked-item"),
    ("SASRec", {"loss_type": "SS", "n_negatives": 0}, "n_negatives=0"),
    ("SASRec", {"loss_type": "SS", "negative_sampling": "hard"}, "negative_sampling='hard'"),
    ("TPAD", {"sequence_loss": "all", "encoder": "gnn"}, "gnn"),
])
def test_impossible_objective_settings_are_refused_before_loading(model, settings, says, run_config):
    from recbole_tpad.config import ConfigError

    # named choices are refused by the Config itself, the rest by the objective's own check
    with pytest.raises((ObjectiveConfigError, ConfigError), match=says):
        build_experiment(model, "demo", config_dict=dict(run_config, **settings))


def test_content_knn_needs_no_training_and_ranks_by_content(run_config):
    result = run("ContentKNN", "demo", config_dict=run_config)
    assert result["stopped_by"] == "no training" and result["epochs_run"] == 0
    # the test features encode each item's category, which the demo's sessions follow in part
    assert result["test_result"]["recall@20"] > 1.5 * 20 / 320, result["test_result"]


def test_content_knn_normalises_its_table_once_and_again_when_it_changes(run_config):
    from torch.nn import functional as F

    _, _, trainer = build_experiment("ContentKNN", "demo", config_dict=run_config)
    model = trainer.model
    kept = model.item_vectors
    assert model.item_vectors is kept
    assert torch.allclose(kept, F.normalize(model.item_features, dim=-1))
    state = model.state_dict()
    model.load_state_dict({**state, "item_features": 2 * state["item_features"] - 1})  # a checkpoint loaded
    assert torch.allclose(model.item_vectors, F.normalize(model.item_features, dim=-1))
    assert not torch.allclose(model.item_vectors, kept)
    model.add_items(model.item_features[1:3].clone())
    assert len(model.item_vectors) == len(model.item_features) == len(kept) + 2


def test_exclude_history_never_ranks_history_items_and_drops_what_it_cannot_rank(run_config):
    from recbole_tpad.evaluation import items_seen_in_training

    settings = dict(run_config, epochs=1, exclude_history=True, drop_cold_targets=True)
    config, (train, valid, test), trainer = build_experiment("GRU4Rec", "demo", config_dict=settings)
    inter = test._dataset.inter_feat
    history = inter["item_id_list"]
    assert not (history == inter["item_id"].unsqueeze(1)).any()
    assert items_seen_in_training(train._dataset, config)[inter["item_id"]].all()
    trainer.tot_item_num = test._dataset.item_num  # as RecBole's evaluate sets it
    trainer.model.eval()
    for batch in test:
        interaction, scores, _, _ = trainer._full_sort_batch_eval(batch)
        top = scores.topk(20).indices
        seen = interaction["item_id_list"].to(top.device)
        assert not ((top.unsqueeze(2) == seen.unsqueeze(1)) & (seen.unsqueeze(1) > 0)).any()
