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

#: Share of the test cases the tail (and the head) slice holds, about.
TAIL_SHARE = 0.2
#: Popularity buckets of the NDCG@10-by-popularity chart (equal numbers of test cases).
N_BUCKETS = 5


def training_prefixes(train_data):
    """The training loader's dataset with every prefix, as RecBole built it (under
    ``sequence_loss: all`` the loader keeps only the longest one and records the full set)."""
    return getattr(train_data, "source_dataset", train_data._dataset)


def training_item_counts(train_dataset, config):
    """Training interactions per internal item id: each training row's target, plus the first
    item of each sequence (the history of its one-item prefix, which is never a target).
    ``train_dataset``: every prefix (a dataset reduced to one row per sequence for
    ``sequence_loss: all`` is counted through the prefixes it came from)."""
    train_dataset = getattr(train_dataset, "source_dataset", train_dataset)
    item_field = config["ITEM_ID_FIELD"]
    list_field = item_field + config["LIST_SUFFIX"]
    inter = train_dataset.inter_feat
    counts = torch.bincount(inter[item_field].long(), minlength=train_dataset.item_num)
    if list_field in inter.columns:
        first = inter[list_field][inter[config["ITEM_LIST_LENGTH_FIELD"]] == 1][:, 0].long()
        counts += torch.bincount(first, minlength=train_dataset.item_num)
    counts[0] = 0
    return counts


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


def share_threshold(counts, share=TAIL_SHARE, largest=False):
    """The smallest count K with at least ``share`` of the cases at or below K (``largest``:
    the largest K with at least ``share`` at or above it)."""
    ordered = counts.sort(descending=largest).values
    return int(ordered[max(0, math.ceil(share * len(ordered)) - 1)])


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
    source = training_prefixes(train_data)
    seen = items_seen_in_training(source, config).to(trainer.device)
    item_counts = training_item_counts(source, config).to(trainer.device)
    topk = list(config["topk"])
    trainer.model.eval()
    per_case, cold, target_counts = [], [], []
    for batch in test_data:
        _, scores, _, positive_i = trainer.full_ranking_batch(batch)
        positive_i = positive_i.to(scores.device)
        # RecBole's own ranking: torch.topk, so tied scores (items with identical content, say)
        # are ordered exactly as in its test_result; a target outside the top k gets rank k
        top = torch.topk(scores, max(topk), dim=-1).indices == positive_i.view(-1, 1)
        ranks = torch.where(top.any(1), top.float().argmax(1), torch.full_like(positive_i, max(topk)))
        per_case.append({k: v.cpu() for k, v in case_metrics(ranks, topk).items()})
        cold.append((~seen[positive_i]).cpu())
        target_counts.append(item_counts[positive_i].cpu())
    cold = torch.cat(cold)
    target_counts = torch.cat(target_counts)
    metrics = {k: torch.cat([c[k] for c in per_case]) for k in per_case[0]}
    tail_k = share_threshold(target_counts)
    head_k = share_threshold(target_counts, largest=True)
    groups = {"all": torch.ones_like(cold), "warm": ~cold, "cold": cold,
              "tail": target_counts <= tail_k, "head": target_counts >= head_k}
    result = {"cases": {name: int(mask.sum()) for name, mask in groups.items()},
              "tail_max_train_count": tail_k, "head_min_train_count": head_k,
              "buckets": popularity_buckets(target_counts, metrics["ndcg@10"] if "ndcg@10" in metrics
                                            else None)}
    decimals = config["metric_decimal_place"]
    for name, mask in groups.items():
        result[name] = {k: (round(v[mask].mean().item(), decimals) if mask.any() else math.nan)
                        for k, v in metrics.items()}
    return result


def popularity_buckets(target_counts, ndcg):
    """Test cases in ``N_BUCKETS`` equal-sized groups by their target's training count:
    ``[{"min_count", "max_count", "cases", "ndcg@10"}]`` (the popularity chart's data)."""
    if ndcg is None or not len(target_counts):
        return []
    order = target_counts.argsort(stable=True)
    out = []
    for part in order.tensor_split(N_BUCKETS):
        if len(part):
            out.append({"min_count": int(target_counts[part].min()),
                        "max_count": int(target_counts[part].max()), "cases": len(part),
                        "ndcg@10": round(ndcg[part].mean().item(), 4)})
    return out
