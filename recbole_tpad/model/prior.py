"""The content prior: at ranking time an item's score gains ``weight x r x cos(session's last
item, item)`` over whitened content vectors (the similarity ContentKNN ranks by), ``r`` shrinking
with the item's training count (``content_prior_rarity``).

One module for both of its users, so that a content-aware model and an ID model plus content
similarity are compared under one formula and one validation search: TPAD's own
``content_prior`` (:meth:`recbole_tpad.model.tpad.TPAD.set_content_prior`), and
:class:`WithContentPrior`, which gives any trained sequential model (RecBole's SASRec, GRU4Rec,
...) the same prior: the hybrid baseline (:mod:`recbole_tpad.benchmark.content_prior`).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from recbole_tpad.model.layers import FeatureWhitening

def check_prior_settings(weight, rarity):
    """Refuse a weight or rarity that is not a number of at least 0 (``None``: off)."""
    for name, value in (("content_prior", weight), ("content_prior_rarity", rarity)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or value < 0):
            raise ValueError(f"{name}={value!r}: give a number of at least 0 (e.g. "
                             f"{4 if name == 'content_prior' else 0.25}), or ~")


class ContentPrior(nn.Module):
    """The content table the prior ranks by and the items' training counts. Nothing in it is
    saved in checkpoints: both are recomputed from the dataset, so a checkpoint made without the
    prior loads with it and the other way round."""

    def __init__(self, table, item_counts):
        """``table``: the raw item-feature table (row 0 padding); ``item_counts``: training
        interactions per item (:func:`recbole_tpad.evaluation.training_item_counts`)."""
        super().__init__()
        # whitened (every direction) and unit length: the similarity ContentKNN ranks by
        self.whitening = FeatureWhitening.fit(table[1:], "all", persistent=False)
        vectors = self.vectors_of(table)
        vectors[0] = 0
        self.register_buffer("vectors", vectors, persistent=False)
        self.register_buffer("log_counts", torch.log1p(item_counts.float().to(vectors.device)),
                             persistent=False)
        trained = item_counts[item_counts > 0]
        self.log_median = math.log1p(trained.median().item()) if len(trained) else 0.0

    def vectors_of(self, features):
        return F.normalize(self.whitening(features.to(self.whitening.mean)), dim=-1)

    @torch.no_grad()
    def add_items(self, features):
        """Items added after training (their raw features): whitened as the catalogue's, with
        no training interaction."""
        self.vectors = torch.cat([self.vectors, self.vectors_of(features)])
        self.log_counts = torch.cat([self.log_counts, self.log_counts.new_zeros(len(features))])

    def forward(self, item_seq, lengths, weight, rarity=0.0, items=None):
        """``[B, n_items]`` (or ``[B]`` for ``items [B]``): ``weight`` times the cosine similarity
        of each candidate's content to the session's last item, 0 for the session's own items (a
        repeat is the model's call, not its content's), scaled down for items with many training
        interactions by ``rarity``."""
        last = self.vectors[item_seq.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)]
        if rarity:
            weight = weight * torch.exp(-rarity * (self.log_counts - self.log_median))
        if items is not None:
            prior = (last * self.vectors[items]).sum(-1)
            weight = weight[items] if rarity else weight
            return weight * prior.masked_fill((item_seq == items.unsqueeze(1)).any(1), 0)
        return weight * (last @ self.vectors.t()).scatter(1, item_seq, 0.0)

    def of_sessions(self, model, interaction, weight, rarity=0.0, items=None):
        """:meth:`forward` for the sessions of a RecBole ``interaction`` (``model`` names its
        fields)."""
        return self(interaction[model.ITEM_SEQ], interaction[model.ITEM_SEQ_LEN], weight, rarity, items)


class WithContentPrior(nn.Module):
    """A trained sequential model that ranks with the content prior: ``model``'s own scores plus
    :class:`ContentPrior`'s, set by :meth:`set_content_prior` as TPAD's is. What RecBole's
    trainer evaluates (``full_sort_predict``, ``predict``) goes through it; the model is not
    changed. The hybrid baseline a content-aware model must beat, for any ID model."""

    def __init__(self, model, table, item_counts):
        super().__init__()
        self.model = model
        self.prior_table = ContentPrior(table, item_counts).to(model.device)
        self.ITEM_SEQ, self.ITEM_SEQ_LEN, self.ITEM_ID = model.ITEM_SEQ, model.ITEM_SEQ_LEN, model.ITEM_ID
        self.n_items, self.device = model.n_items, model.device
        self.content_prior, self.content_prior_rarity = None, 0.0

    def set_content_prior(self, weight, rarity=0.0):
        check_prior_settings(weight, rarity)
        self.content_prior = float(weight) if weight else None
        self.content_prior_rarity = float(rarity or 0.0)

    def _prior(self, interaction, items=None):
        return self.prior_table.of_sessions(self, interaction, self.content_prior,
                                            self.content_prior_rarity, items)

    def full_sort_predict(self, interaction):
        scores = self.model.full_sort_predict(interaction)
        return scores + self._prior(interaction) if self.content_prior else scores

    def predict(self, interaction):
        scores = self.model.predict(interaction)
        return scores + self._prior(interaction, interaction[self.ITEM_ID]) if self.content_prior else scores


class TrainedPrior(nn.Module):
    """``content_prior_training``: the content prior at a fixed weight as part of the model's
    own score, in training (added to the logits of the softmax) and in ranking. The model then
    learns what the content similarity misses, not what it already gives; a prior added only
    after training (``content_prior``) is scored against ID vectors that learned the same
    similarity as best they could. ``content_prior`` may still add more on top."""

    def __init__(self, table, item_counts, weight):
        super().__init__()
        check_prior_settings(weight, 0.0)
        self.table = ContentPrior(table, item_counts)
        self.weight = float(weight)

    def forward(self, model, interaction, items=None):
        """``[B, n_items]`` (``[B]`` for ``items [B]``): the prior of ``interaction``'s sessions."""
        return self.table.of_sessions(model, interaction, self.weight, 0.0, items)


def trained_prior(config, dataset, model_name):
    """:class:`TrainedPrior` of a run with ``content_prior_training`` set (else ``None``), over
    the table the run's ``feature_source`` names (TPAD's own input; for an ID model, e.g.
    RecBole's SASRec, the table it is given for the prior) and ``dataset``'s training counts."""
    weight = config["content_prior_training"]
    if not weight:
        return None
    table = getattr(dataset, "item_features", None)
    if table is None and not config["feature_source"]:
        raise ValueError(f"content_prior_training={weight}: {model_name} names no content table "
                         "for the prior: set feature_source (e.g. tpad-zU or text-minilm)")
    from recbole_tpad.evaluation import training_item_counts

    if table is None:
        from recbole_tpad.data.dataset import load_item_features

        table = load_item_features(config, dataset)[0]
    return TrainedPrior(table, training_item_counts(dataset, config), weight)
