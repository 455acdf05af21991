"""ContentKNN: rank items by the similarity of their content vectors to the session, no training.

The content-based family the TPAD paper compares against, and the floor any content-aware model
must clear: an item's vector is its row of the dataset's feature table (MiniLM text by default,
the same ``dataset.item_features`` TPAD reads), the session is its last item's vector (``content_session: last``) or a
recency-weighted mean of its items' vectors (``recency``: weight ``recency_decay ** age``, age 0
for the last item), and an item scores by cosine similarity. Items already in the session are
excluded (their score is ``-inf``): otherwise the last item, identical to itself, would top
every list. It has no trainable weights: :func:`recbole_tpad.quick_start.run` evaluates it
without fitting (``training_free``).
"""

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType
from torch.nn import functional as F

from recbole_tpad.model.layers import KeptWhileUnchanged, features_as_read, whitened_features
from recbole_tpad.model.tpad import dataset_item_features

SESSION_VECTORS = ("last", "recency")


class ContentKNN(SequentialRecommender):
    input_type = InputType.POINTWISE
    training_free = True
    reads_item_features = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.session_vector = config["content_session"]
        if self.session_vector not in SESSION_VECTORS:
            raise ValueError(f"content_session={self.session_vector!r}: use one of {SESSION_VECTORS}")
        self.decay = float(config["recency_decay"])
        table = whitened_features(self, dataset_item_features(dataset, type(self).__name__),
                                  config["feature_whitening"])
        self.register_buffer("item_features", table.clone())
        self._unit_vectors = KeptWhileUnchanged()

    @property
    def item_vectors(self):
        """Unit-length item vectors (cosine similarity = dot product), normalised once per
        table (a new table when items are added, a new version when a checkpoint is loaded)."""
        return self._unit_vectors.get(self.item_features, lambda table: F.normalize(table, dim=-1))

    @torch.no_grad()
    def add_items(self, features, attributes=None):
        """Append items added after training (:mod:`recbole_tpad.new_items`); it reads no
        attributes."""
        features = features_as_read(self, features.to(self.item_features))
        self.item_features = torch.cat([self.item_features, features])
        self.n_items += len(features)

    def forward(self, item_seq, item_seq_len):
        vectors = F.embedding(item_seq, self.item_vectors)  # [B, L, d]; padding row is 0
        if self.session_vector == "last":
            return self.gather_indexes(vectors, item_seq_len - 1)
        positions = torch.arange(item_seq.size(1), device=item_seq.device)
        age = (item_seq_len.unsqueeze(1) - 1 - positions).clamp(min=0).float()
        weights = self.decay ** age * (item_seq != 0)
        return F.normalize((weights.unsqueeze(-1) * vectors).sum(1), dim=-1)

    def calculate_loss(self, interaction):
        raise RuntimeError("ContentKNN has nothing to train (training_free)")

    def full_sort_predict(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        scores = self.forward(item_seq, interaction[self.ITEM_SEQ_LEN]) @ self.item_vectors.t()
        scores = scores.scatter(1, item_seq, -torch.inf)  # the session's own items (and padding)
        return scores

    def predict(self, interaction):
        scores = self.full_sort_predict(interaction)
        return scores.gather(1, interaction[self.ITEM_ID].unsqueeze(1)).squeeze(1)
