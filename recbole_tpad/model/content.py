"""ContentKNN: rank items by the similarity of their content vectors to the session, no training.

The content-based family the TPAD paper compares against, and the floor any content-aware model
must clear: an item's vector is its row of a feature file (MiniLM text by default, through the
same contract TPAD reads), the session is its last item's vector (``content_session: last``) or a
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

from recbole_tpad.data.features import load_feature_table
from recbole_tpad.data.sources import feature_file

SESSION_VECTORS = ("last", "recency")


class ContentKNN(SequentialRecommender):
    input_type = InputType.POINTWISE
    training_free = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.session_vector = config["content_session"]
        if self.session_vector not in SESSION_VECTORS:
            raise ValueError(f"content_session={self.session_vector!r}: use one of {SESSION_VECTORS}")
        self.decay = float(config["recency_decay"])
        table, self.feature_report = load_feature_table(
            feature_file(config), config["dataset"], config["data_path"],
            dataset.field2id_token[self.ITEM_ID], expected_dim=config["feature_dim"],
            missing_feature=config["missing_feature"])
        self.register_buffer("item_vectors", F.normalize(torch.from_numpy(table), dim=-1))

    def forward(self, item_seq, item_seq_len):
        vectors = F.embedding(item_seq, self.item_vectors)  # [B, L, d]; padding rows are 0
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
