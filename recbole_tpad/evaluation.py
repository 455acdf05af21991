"""Test metrics split by whether the target item was seen in training (warm) or not (cold).

RecBole reports one number per metric over all test cases. The cold-start protocol
(``dataset_tools cold-split``) needs two: an ID-only model has no trained vector for an item
that never occurred in training, so its metrics on those cases say how well it ranks items it
cannot know, while TPAD ranks them from their content features. The scores come from the
trainer's own full-sort step (``_full_sort_batch_eval``), and the metrics are RecBole's
definitions for one positive per case (leave-one-out and session targets), so the ``all``
group equals RecBole's ``test_result``.
"""

import math

import torch


def items_seen_in_training(train_dataset, config):
    """Boolean mask over internal item ids: the item occurs in the training split, as a
    target or in a history (the padding id 0 is never seen)."""
    item_field = config["ITEM_ID_FIELD"]
    list_field = item_field + config["LIST_SUFFIX"]
    inter = train_dataset.inter_feat
    seen = torch.zeros(train_dataset.item_num, dtype=torch.bool)
    seen[inter[item_field].long()] = True
    if list_field in inter.columns:
        seen[inter[list_field].long().flatten()] = True
    seen[0] = False
    return seen


def case_metrics(ranks, topk):
    """``{"recall@k": tensor, "ndcg@k": ..., "mrr@k": ...}`` per case from 0-based ranks of the
    one positive (``ranks >= max(topk)`` means outside the list)."""
    out = {}
    for k in topk:
        inside = ranks < k
        out[f"recall@{k}"] = inside.float()
        out[f"ndcg@{k}"] = torch.where(inside, 1.0 / torch.log2(ranks.float() + 2), 0.0)
        out[f"mrr@{k}"] = torch.where(inside, 1.0 / (ranks.float() + 1), 0.0)
    return out


@torch.no_grad()
def evaluate_by_target(trainer, train_data, test_data, config):
    """``{"all"|"warm"|"cold": {metric: value}, "cases": {...}}`` for the model the trainer
    holds now (call after ``trainer.evaluate``, which loads the best model). ``None`` when the
    run is not a full-ranking evaluation with one target per case."""
    from recbole.data.dataloader import FullSortEvalDataLoader

    if not isinstance(test_data, FullSortEvalDataLoader) or not test_data.is_sequential:
        return None
    seen = items_seen_in_training(train_data._dataset, config).to(trainer.device)
    topk = list(config["topk"])
    trainer.model.eval()
    per_case, cold = [], []
    for batch in test_data:
        _, scores, _, positive_i = trainer._full_sort_batch_eval(batch)
        positive_i = positive_i.to(scores.device)
        # RecBole's own ranking: torch.topk, so tied scores (items with identical content, say)
        # are ordered exactly as in its test_result; a target outside the top k gets rank k
        top = torch.topk(scores, max(topk), dim=-1).indices == positive_i.view(-1, 1)
        ranks = torch.where(top.any(1), top.float().argmax(1), torch.full_like(positive_i, max(topk)))
        per_case.append({k: v.cpu() for k, v in case_metrics(ranks, topk).items()})
        cold.append((~seen[positive_i]).cpu())
    cold = torch.cat(cold)
    metrics = {k: torch.cat([c[k] for c in per_case]) for k in per_case[0]}
    groups = {"all": torch.ones_like(cold), "warm": ~cold, "cold": cold}
    result = {"cases": {name: int(mask.sum()) for name, mask in groups.items()}}
    decimals = config["metric_decimal_place"]
    for name, mask in groups.items():
        result[name] = {k: (round(v[mask].mean().item(), decimals) if mask.any() else math.nan)
                        for k, v in metrics.items()}
    return result
