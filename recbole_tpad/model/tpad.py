"""TPAD's downstream recommender, a RecBole ``SequentialRecommender``.

Item representation = ID embedding fused with an adapter over a frozen, precomputed item-feature
table (from the MLLM pretrainer, or a text encoder); a session encoder (transformer, GRU or
gated GNN) turns the prefix into a vector; cross-entropy over all items. It only *reads* the
feature file (``recbole_tpad.data.features``); it never computes features, so it trains and
evaluates with RecBole's own trainer exactly like the built-in baselines.

Config (``properties/model/TPAD.yaml``): ``embedding_size``, ``use_id_embedding``,
``use_features``, ``feature_file``, ``feature_dim``, ``missing_feature``, ``adapter``,
``fusion``, ``encoder`` and the encoders' own sizes.
"""

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType
from torch import nn
from torch.nn import functional as F

from recbole_tpad.data.features import load_feature_table
from recbole_tpad.data.sources import feature_file
from recbole_tpad.model.layers import FeatureAdapter, Fusion, build_session_encoder


class TPAD(SequentialRecommender):
    input_type = InputType.POINTWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.dim = config["embedding_size"]
        self.use_id_embedding = config["use_id_embedding"]
        self.use_features = config["use_features"]
        if not (self.use_id_embedding or self.use_features):
            raise ValueError("TPAD needs use_id_embedding or use_features (or both) set to True")
        if config["loss_type"] != "CE":  # loss_type SS is recbole_tpad.losses' subclass
            raise ValueError(f"TPAD trains with loss_type CE or SS, not {config['loss_type']!r}")

        if self.use_id_embedding:
            self.item_embedding = nn.Embedding(self.n_items, self.dim, padding_idx=0)
        if self.use_features:
            table, self.feature_report = load_feature_table(
                feature_file(config), config["dataset"], config["data_path"],
                dataset.field2id_token[self.ITEM_ID], expected_dim=config["feature_dim"],
                missing_feature=config["missing_feature"])
            # A buffer: frozen, moves with .to(device), and saved in checkpoints so a trained
            # model keeps the exact vectors it was trained on.
            self.register_buffer("item_features", torch.from_numpy(table))
            self.adapter = FeatureAdapter(table.shape[1], self.dim, config["adapter"],
                                          config["feature_dropout"], config["n_experts"])
        if self.use_id_embedding and self.use_features:
            self.fusion = Fusion(self.dim, config["fusion"])
        self.encoder = build_session_encoder(config["encoder"], self.dim, config)
        self.loss_fct = nn.CrossEntropyLoss()
        self.item_dropout = config["item_dropout"] or 0.0
        self.initializer_range = config["initializer_range"]
        self.apply(self._init_weights)
        if config["weight_init"] == "xavier":  # RecTools' SASRec: every matrix xavier-normal
            for parameter in self.parameters():
                if parameter.dim() > 1:
                    nn.init.xavier_normal_(parameter)
        elif config["weight_init"] not in (None, "normal"):
            raise ValueError(f"weight_init={config['weight_init']!r}: use normal or xavier")

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.initializer_range)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def item_representations(self):
        """``[n_items, dim]``: every item's fused representation (row 0 is padding)."""
        if not self.use_features:
            items = self.item_embedding.weight
        else:
            items = self.adapter(self.item_features)
            if self.use_id_embedding:
                items = self.fusion(self.item_embedding.weight, items)
        # item_dropout: dropout on the item table in training, for inputs and scores alike
        return F.dropout(items, self.item_dropout, self.training) if self.item_dropout else items

    def forward(self, item_seq, item_seq_len, items=None):
        items = self.item_representations() if items is None else items
        # F.embedding, not items[item_seq]: the same lookup, but its backward is the embedding
        # kernel; indexing's backward (index_put with accumulate) took 84% of a GPU step,
        # since most positions are the padding id. Padding rows get no gradient, as in SASRec.
        output = self.encoder(F.embedding(item_seq, items, padding_idx=0), item_seq, item_seq_len)
        if not self.encoder.causal:
            return output  # one vector per session already
        # through gather_indexes, as RecBole's models, so recbole_tpad.losses can train on
        # every position (sequence_loss: all)
        return self.gather_indexes(output, item_seq_len - 1)

    def calculate_loss(self, interaction):
        items = self.item_representations()
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], items)
        logits = seq_output @ items.t()
        return self.loss_fct(logits, interaction[self.POS_ITEM_ID])

    def predict(self, interaction):
        items = self.item_representations()
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], items)
        return (seq_output * items[interaction[self.ITEM_ID]]).sum(-1)

    def full_sort_predict(self, interaction):
        items = self.item_representations()
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], items)
        return seq_output @ items.t()
