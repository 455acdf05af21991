"""TPAD's downstream recommender, a RecBole ``SequentialRecommender``.

Item representation = ID embedding fused with an adapter over a frozen, precomputed item-feature
table (from the MLLM pretrainer, or a text encoder); a session encoder (transformer, GRU or
gated GNN) turns the prefix into a vector; trained with the plugin's objective
(:mod:`recbole_tpad.losses`: full-softmax CE or sampled softmax). It only reads the
table its dataset holds (``dataset.item_features``, :mod:`recbole_tpad.data.dataset`); it never
opens a file or computes features, so it trains and
evaluates with RecBole's own trainer exactly like the built-in baselines.

Config (``properties/model/TPAD.yaml``): ``embedding_size``, ``use_id_embedding``,
``use_features``, ``feature_file``, ``feature_dim``, ``missing_feature``,
``feature_whitening``, ``adapter``, ``frequency_gate``, ``id_init``,
``fusion``, ``encoder`` and the encoders' own sizes, ``time_gaps`` (``time_gap_unit``,
``time_gap_buckets``); ranking: ``new_item_share``,
``content_prior``, ``content_prior_rarity``; scoring in training and ranking:
``content_prior_training`` (``properties/overall.yaml``).
"""

import math

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType
from torch import nn
from torch.nn import functional as F

from recbole_tpad.evaluation import items_seen_in_training, training_item_counts
from recbole_tpad.losses import TrainingObjective, check_objective_settings
from recbole_tpad.model.layers import (ID_INITS, AttributeEmbedding, FeatureAdapter, Fusion,
                                       KeptWhileUnchanged, build_session_encoder,
                                       features_as_read, start_ids_from_features,
                                       table_dropout, whitened_features)
from recbole_tpad.model.prior import ContentPrior, check_prior_settings, trained_prior
from recbole_tpad.model.time_gaps import TimeGapEmbedding


#: cold_item_ids: how an item with no training interaction is represented
COLD_ITEM_IDS = ("learned", "zero", "content")
#: content_head_training: how the content head learns
CONTENT_HEAD_TRAININGS = ("dropout", "auxiliary")
#: content_head_negatives: the auxiliary loss's sampled negatives
CONTENT_HEAD_NEGATIVES = ("same", "shared")


def named_setting(config, key, choices, default):
    """``config[key]`` (``~``: ``default``), refused unless it is one of ``choices``: the check
    :func:`recbole_tpad.config.check_values` makes for yaml and CLI input, for Python callers."""
    value = config[key] or default
    if value not in choices:
        raise ValueError(f"{key}={value!r}: use one of {choices}")
    return value


def describe_new_item_scoring(use_features, use_id_embedding, cold_item_ids, attribute_fields=(),
                              seen_negatives=False, new_item_share=None):
    """How a TPAD scores an item with no training interaction, in words (the reports' warm/cold
    table; :meth:`TPAD.new_item_scoring`, and the report for runs that predate it)."""
    if not use_features:
        return "untrained ID vector: cannot rank cold items"
    if not use_id_embedding:
        text = "content features"
    else:
        text = {"zero": "features (zero ID vector, cold_item_ids: zero)",
                "content": "content head over its features (cold_item_ids: content)"}.get(
            cold_item_ids, "features + untrained ID vector")
    if attribute_fields:
        text += f" + {'/'.join(attribute_fields)} embeddings"
    if seen_negatives:
        text += "; not a training negative"
    if new_item_share is not None:
        text += f"; ranked with new_item_share {new_item_share:.3g}"
    return text


def resolve_new_item_share(config, dataset, cold_item_ids):
    """``new_item_share`` as a number: the prior that the next item is one with no training
    interaction; ``None``: no mixing (``~``, or ``cold_item_ids: learned``, where such
    an item keeps its untrained ID vector and RecBole's plain scores)."""
    value = config["new_item_share"]
    if value is None or cold_item_ids == "learned":
        return None
    if value == "valid":
        share = getattr(dataset, "new_item_share", None)
        if share is None:
            raise ValueError("new_item_share=valid reads the validation split's share of new "
                             "items, which recbole_tpad.data.dataset.TPADDataset.build() sets: "
                             "build the data with recbole_tpad.data.dataset.create_dataset, or "
                             "give a number (e.g. new_item_share=0.01), or ~ for plain scores")
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1:
        share = float(value)
    else:
        raise ValueError(f"new_item_share={value!r}: use valid (measured on the validation "
                         "split), a number between 0 and 1 (exclusive), or ~ (plain scores)")
    return share


def dataset_item_features(dataset, model_name):
    """The item-feature table :class:`recbole_tpad.data.dataset.TPADDataset` loaded, or an error
    saying how to get it (a plain ``SequentialDataset`` has none)."""
    table = getattr(dataset, "item_features", None)
    if table is None:
        raise ValueError(
            f"{model_name} reads dataset.item_features, which this {type(dataset).__name__} does "
            "not hold: build the dataset with recbole_tpad.data.dataset.create_dataset(config) "
            "(or RecBole's create_dataset after `import recbole_tpad`), which loads the feature "
            "file once; or set use_features=False")
    return table


def dataset_item_attributes(dataset, model_name):
    """The categorical item attributes :class:`recbole_tpad.data.dataset.TPADDataset` loaded for
    ``item_attributes``."""
    attributes = getattr(dataset, "item_attributes", None)
    if attributes is None:
        raise ValueError(f"{model_name} with item_attributes reads dataset.item_attributes, which "
                         f"this {type(dataset).__name__} does not hold: build the dataset with "
                         "recbole_tpad.data.dataset.create_dataset(config)")
    return attributes


def sequence_time_field(config, dataset, model_name):
    """The field of each sequence's times (``TIME_FIELD`` + ``LIST_SUFFIX``) that
    ``time_gaps`` reads, refused by name when the dataset has none."""
    time_field = config["TIME_FIELD"]
    field = f"{time_field}{config['LIST_SUFFIX']}" if time_field else None
    if field is None or field not in dataset.field2type:
        raise ValueError(
            f"{model_name} with time_gaps reads each sequence's times "
            f"({field or 'TIME_FIELD + LIST_SUFFIX'}), which dataset {config['dataset']} does not "
            "hold: set TIME_FIELD and load it (load_col), or set time_gaps: False (a session "
            "split's benchmark files, such as amazon-sports-session's, hold no times)")
    return field


class TPAD(SequentialRecommender):
    input_type = InputType.POINTWISE
    #: the dataset must be a TPADDataset (recbole_tpad.registry.dataset_class)
    reads_item_features = True
    #: calculate_loss is recbole_tpad.losses.TrainingObjective (no subclass needed)
    native_objective = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.dim = config["embedding_size"]
        self.use_id_embedding = config["use_id_embedding"]
        self.use_features = config["use_features"]
        if not (self.use_id_embedding or self.use_features):
            raise ValueError("TPAD needs use_id_embedding or use_features (or both) set to True")
        check_objective_settings(config, type(self))  # loss_type CE | SS, sequence_loss

        if self.use_id_embedding:
            self.item_embedding = nn.Embedding(self.n_items, self.dim, padding_idx=0)
        self.cold_item_ids = named_setting(config, "cold_item_ids", COLD_ITEM_IDS, "learned")
        # id_dropout and cold_item_ids choose between an item's ID vector and its content: a
        # model with one of the two paths has nothing to choose (the ablations TPAD-ID, -content)
        fused = self.use_id_embedding and self.use_features
        self.id_dropout = (config["id_dropout"] or 0.0) if fused else 0.0
        if not fused:
            # features only: every item is scored from its content, as a new one would be;
            # ID only: a new item has nothing to be scored by
            self.cold_item_ids = "zero" if self.use_features else "learned"
        # content_head_training: how the content head (cold_item_ids: content) learns. dropout:
        # from the items whose ID vector id_dropout zeroes in each step, inside the one loss (on
        # the demo that costs warm items 6% NDCG@10: 30% of the ID vectors learn nothing per
        # step). auxiliary: from a second loss of the same objective in which every item is its
        # content head's vector, so id_dropout may be 0 and the ID path trains undisturbed.
        content_head_training = named_setting(config, "content_head_training",
                                              CONTENT_HEAD_TRAININGS, "dropout")
        self.content_head_loss = (self.cold_item_ids == "content"
                                  and content_head_training == "auxiliary")
        # content_head_negatives: the auxiliary loss's sampled negatives as the main loss's
        # (same: a set per position under the SS recipe, which doubles the loss's cost) or one
        # set per batch (shared: one [N, d] x [d, K] product, little more than the main loss)
        self.content_head_negatives = named_setting(config, "content_head_negatives",
                                                    CONTENT_HEAD_NEGATIVES, "same")
        if (self.cold_item_ids == "content" and not self.id_dropout
                and not self.content_head_loss):
            raise ValueError("cold_item_ids=content learns its content head from the items whose "
                             "ID vector id_dropout drops in training: set id_dropout > 0 (0.3 is "
                             "a start), content_head_training=auxiliary, or cold_item_ids=zero")
        if self.use_features:
            table = whitened_features(self, dataset_item_features(dataset, type(self).__name__),
                                      config["feature_whitening"])
            # A buffer: frozen, moves with .to(device), and saved in checkpoints so a trained
            # model keeps the exact vectors it was trained on. A copy: loading a checkpoint
            # must not overwrite the dataset's own table.
            self.register_buffer("item_features", table.clone())
            self.adapter = FeatureAdapter(table.shape[1], self.dim, config["adapter"],
                                          config["feature_dropout"], config["n_experts"],
                                          config["feature_dropout_on"] or "table")
        self.attributes = None
        # item_attributes are part of the content path: an ID-only model (use_features: False,
        # SASRecPub) ignores them, as RecBole's ID models ignore a dataset's attribute fields
        if config["item_attributes"] and self.use_features:
            attributes = dataset_item_attributes(dataset, type(self).__name__)
            self.attribute_fields = attributes.fields
            sizes = attributes.sizes()
            self.attributes = AttributeEmbedding([attributes.ids[f] for f in self.attribute_fields],
                                                 [sizes[f] for f in self.attribute_fields], self.dim)
        if self.use_id_embedding and self.use_features:
            self.fusion = Fusion(self.dim, config["fusion"])
        if self.cold_item_ids == "content":
            # the vector of an item without an ID vector, from its adapted features at full
            # weight: the residual fusion's feature share stays small (|scale| ~0.03 on
            # amazon-sports-cold), so zeroing the ID alone leaves a cold item a vector half the
            # norm of a warm one, which never reaches a top 20
            self.content_head = nn.Linear(self.dim, self.dim)
        self.frequency_gate = bool(config["frequency_gate"]) and fused
        if self.frequency_gate:
            if self.cold_item_ids != "content":
                raise ValueError("frequency_gate blends an item's fused vector with its content "
                                 "head's: set cold_item_ids=content (and id_dropout > 0)")
            # g = sigmoid(w log(1 + count) + b): an item with few training interactions leans
            # on its content, whose similarity ranks rare items twice as well as any trained ID
            # model does on amazon-sports (ContentKNN's tail slice); starts at g = 0.5 for an
            # item seen 4 times (amazon-sports' tail bound), g = 0.95 at 40 (its head bound)
            self.gate_weight = nn.Parameter(torch.tensor(1.36))
            self.gate_bias = nn.Parameter(torch.tensor(-1.36 * math.log(5)))
            self._count_items(dataset)
        # not saved in checkpoints: a fact about the training data, recomputed from it
        self.register_buffer("id_trained", items_seen_in_training(dataset, config), persistent=False)
        # new_item_share: ranking as a mixture of a softmax over the trained items and one over
        # the items without training interactions (DropoutNet-style content vectors score far
        # below popular warm items, so without it a new item almost never reaches a top 20)
        self.new_item_share = resolve_new_item_share(config, dataset, self.cold_item_ids)
        # valid: the share was measured with this many new items in the catalogue; items added
        # after training (add_items) raise it in proportion, so one added item gets one item's
        # share, not the whole new-item part
        self.new_item_share_per_item = config["new_item_share"] == "valid"
        self.new_items_calibrated = int((~self.id_trained[1:]).sum())
        # content_prior_training: the prior at a fixed weight is part of the score, in training too
        self.trained_prior = trained_prior(config, dataset, type(self).__name__)
        self.content_prior, self.content_prior_rarity = None, 0.0
        prior, rarity = config["content_prior"], config["content_prior_rarity"]
        # valid: the weight is chosen on the validation split after training (choose_content_prior);
        # it is the default of models that read features; an ID-only model gets a prior only
        # from an explicit weight (the hybrid baseline), since it names no feature table of its own
        self.content_prior_to_choose = prior == "valid" and self.use_features
        has_prior = self.content_prior_to_choose or (prior not in (None, "valid") and prior > 0)
        self.content_prior_rarity_to_choose = rarity == "valid" and has_prior
        if has_prior:
            self.set_content_prior(0.0 if self.content_prior_to_choose else prior,
                                   0.0 if rarity in (None, "valid") else rarity, dataset, build=True)
        self.encoder = build_session_encoder(config["encoder"], self.dim, config)
        # time_gaps: each position's gap to the item before it, an encoder input
        # (recbole_tpad.model.time_gaps); created only when on, so other runs draw as before
        self.time_gaps, self.time_list_field = None, None
        if config["time_gaps"]:
            self.time_list_field = sequence_time_field(config, dataset, type(self).__name__)
            # an unset key takes the module's default; a set one, 0 included, is checked there
            given = {"unit": config["time_gap_unit"], "n_buckets": config["time_gap_buckets"]}
            self.time_gaps = TimeGapEmbedding(self.dim, **{key: value for key, value in
                                                           given.items() if value is not None})
        # the plugin's objective (full or sampled softmax, last or every position), natively:
        # so RecBole's own run_recbole trains TPAD as the plugin's run does
        self.training_objective = TrainingObjective(config, dataset)
        self.item_dropout = config["item_dropout"] or 0.0
        self._ranking_items = KeptWhileUnchanged()
        self.initializer_range = config["initializer_range"]
        self.apply(self._init_weights)
        if config["weight_init"] == "xavier":  # RecTools' SASRec: every matrix xavier-normal
            for parameter in self.parameters():
                if parameter.dim() > 1:
                    nn.init.xavier_normal_(parameter)
        elif config["weight_init"] not in (None, "normal"):
            raise ValueError(f"weight_init={config['weight_init']!r}: use normal or xavier")
        if self.time_gaps is not None:
            self.time_gaps.reset_padding()
        self.id_init = named_setting(config, "id_init", ID_INITS, "random")
        if self.id_init == "features":
            if not self.use_id_embedding:
                raise ValueError("id_init=features starts the ID vectors from the item features: "
                                 "this model has none (use_id_embedding: False); use id_init: random")
            if self.use_features:
                # here, not in the plugin's builder: RecBole's run_recbole builds TPAD with its
                # constructor alone and must get the start too
                start_ids_from_features(self.item_embedding.weight, self.item_features)
            # an ID-only TPAD (SASRecPub, TPAD-ID) reads no table of its own: it is started as
            # RecBole's ID models are, from the table feature_source names, when the run builds
            # it fresh (quick_start.start_id_vectors), not when rebuilt from a checkpoint

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding, nn.EmbeddingBag)):
            module.weight.data.normal_(mean=0.0, std=self.initializer_range)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def item_representations(self, with_content=False):
        """``[n_items, dim]``: every item's fused representation (row 0 is padding);
        ``with_content``: also every item's content-head vector (``None`` without a head).

        In ranking (evaluation mode, no gradient) the table is the same for every batch until
        a weight or a buffer changes, so it is computed once and kept
        (:class:`KeptWhileUnchanged` over its weights and buffers): the adapter over every item's features is most of
        a one-session recommendation's cost, and of each validation pass's after the first batch."""
        if not (self.training or with_content or torch.is_grad_enabled()):
            return self._ranking_items.get([*self.parameters(), *self.buffers()],
                                           lambda _: self._item_representations())
        return self._item_representations(with_content)

    def _item_representations(self, with_content=False):
        content = None
        if not self.use_features:
            items = self.item_embedding.weight
        else:
            features = self.adapter(self.item_features)
            if self.attributes is not None:
                features = self.attributes(onto=features)
            items = features
            if self.use_id_embedding:
                keep = self.id_kept()
                if self.cold_item_ids == "content":
                    # the rows without an ID vector are replaced by their content head's below,
                    # so their ID vectors need no zeroing first (the same table, one pass less)
                    items = self.fusion(self.item_embedding.weight, features)
                    if with_content or self.frequency_gate:  # every row's content vector
                        content = self.content_head(features)
                        if self.frequency_gate:
                            gate = self.item_frequency_gate().unsqueeze(1)
                            items = gate * items + (1 - gate) * content
                        items = torch.where(keep.unsqueeze(1), items, content)
                    else:  # the head on the rows it replaces only: a third of them in training
                        dropped = (~keep).nonzero().squeeze(1)
                        # in place: the fusion's output is new and its backward does not read
                        # it, so no copy of every item's row
                        items.index_copy_(0, dropped, self.content_head(features[dropped]))
                else:
                    items = self.fusion(self._masked(self.item_embedding.weight, keep), features)
        # item_dropout: dropout on the item table in training, for inputs and scores alike
        if self.item_dropout:
            items = table_dropout(items, self.item_dropout, self.training)
            if with_content and content is not None:
                content = table_dropout(content, self.item_dropout, self.training)
        return (items, content) if with_content else items

    def item_frequency_gate(self):
        """``[n_items]``: each item's weight on its fused vector (the rest on its content head's),
        from its number of training interactions (``frequency_gate``)."""
        return torch.sigmoid(self.gate_weight * self.log_item_counts + self.gate_bias)

    def id_kept(self):
        """Which items' ID vectors count (``None``: all). Not an item with no training
        interaction under ``cold_item_ids: zero | content`` (it is scored from its features, as
        an item added after training is), and, in training, not a random ``id_dropout`` share of
        the items (so the features must carry the ranking alone often enough to be trusted with
        the items that have no ID vector: DropoutNet's idea)."""
        keep = None
        if self.cold_item_ids != "learned":
            keep = self.id_trained
        if self.training and self.id_dropout:
            kept = torch.rand(len(self.id_trained), device=self.id_trained.device) >= self.id_dropout
            keep = kept if keep is None else keep & kept
        return keep

    @staticmethod
    def _masked(ids, keep):
        return ids if keep is None else ids * keep.unsqueeze(1).to(ids.dtype)

    def id_vectors(self):
        """The ID part of each item: its learned vector, or zero where :meth:`id_kept` says."""
        return self._masked(self.item_embedding.weight, self.id_kept())

    @torch.no_grad()
    def add_items(self, features, attributes=None):
        """Append items known by their content alone (added after training, see
        :mod:`recbole_tpad.new_items`): new ids ``n_items ..``; ``attributes``: their id rows
        per ``item_attributes`` field (``{field: ids}``, :meth:`ItemAttributes.encode`), needed when the model
        reads attributes. Their ID vector is zero (the model has learnt nothing about them), so
        they are scored from their content."""
        if not self.use_features:
            raise ValueError(f"{type(self).__name__} has no feature path (use_features=False): "
                             "it can score only the items it was trained with")
        if self.attributes is not None:
            if attributes is None:
                raise ValueError("this TPAD reads item_attributes: pass the new items' attribute "
                                 "ids (ItemAttributes.encode) with their features")
            self.attributes.append([attributes[field] for field in self.attribute_fields])
        raw = features.to(self.item_features)
        features = features_as_read(self, raw)
        self.item_features = torch.cat([self.item_features, features])
        tables = [self.prior_table] if hasattr(self, "prior_table") else []
        if self.trained_prior is not None and self.trained_prior.table not in tables:
            tables.append(self.trained_prior.table)
        for table in tables:  # the prior's and the trained prior's, once if they are one
            table.add_items(raw)
        self.id_trained = torch.cat([self.id_trained, self.id_trained.new_zeros(len(features))])
        if hasattr(self, "log_item_counts"):  # no training interaction
            self.log_item_counts = torch.cat([self.log_item_counts,
                                              self.log_item_counts.new_zeros(len(features))])
        if self.use_id_embedding:
            weight = self.item_embedding.weight
            self.item_embedding = nn.Embedding.from_pretrained(
                torch.cat([weight, weight.new_zeros(len(features), weight.size(1))]),
                freeze=True, padding_idx=0)
        self.n_items += len(features)

    def sequence_times(self, interaction):
        """The sequences' times ``[B, L]`` when the model reads ``time_gaps``, else ``None``:
        what :meth:`forward` takes as ``times``."""
        return None if self.time_gaps is None else interaction[self.time_list_field]

    def forward(self, item_seq, item_seq_len, items=None, times=None):
        items = self.item_representations() if items is None else items
        # F.embedding, not items[item_seq]: the same lookup, but its backward is the embedding
        # kernel; indexing's backward (index_put with accumulate) took 84% of a GPU step,
        # since most positions are the padding id. Padding rows get no gradient, as in SASRec.
        inputs = F.embedding(item_seq, items, padding_idx=0)
        if self.time_gaps is not None:
            if times is None:
                raise ValueError(f"this {type(self).__name__} reads time gaps (time_gaps: True): "
                                 f"give forward the sequences' times ({self.time_list_field})")
            inputs = inputs + self.time_gaps(times, item_seq_len)
        output = self.encoder(inputs, item_seq, item_seq_len)
        if not self.encoder.causal:
            return output  # one vector per session already
        # through gather_indexes, as RecBole's models, so recbole_tpad.losses can train on
        # every position (sequence_loss: all)
        return self.gather_indexes(output, item_seq_len - 1)

    def calculate_loss(self, interaction):
        if not self.content_head_loss:
            return self.training_objective(self, interaction)
        # content_head_training: auxiliary: the same session vectors, targets and objective,
        # scored once against the fused table and once against the content heads'
        items, content = self.item_representations(with_content=True)
        shared = True if self.content_head_negatives == "shared" else None
        return self.training_objective(self, interaction, items, also=(content,), also_shared=shared)

    def new_item_scoring(self):
        """How this model scores an item with no training interaction, in words."""
        return describe_new_item_scoring(
            self.use_features, self.use_id_embedding, self.cold_item_ids,
            self.attribute_fields if self.attributes is not None else (),
            self.training_objective.unseen is not None, self.new_item_share)

    def set_new_item_share(self, share):
        """Rank with prior ``share`` (0 < share < 1) for the items without training interactions;
        ``None``: plain scores. What :mod:`recbole_tpad.benchmark.new_item_share` varies."""
        if share is not None and self.cold_item_ids == "learned":
            raise ValueError("cold_item_ids=learned gives new items an untrained ID vector, not a "
                             "content vector: there is no new-item ranking to mix in")
        if share is not None and not 0 < share < 1:
            raise ValueError(f"new_item_share={share!r}: give a number between 0 and 1 (exclusive)")
        self.new_item_share, self.new_item_share_per_item = share, False

    def _count_items(self, dataset):
        """``log_item_counts``: log(1 + training interactions) per item, and ``log_median_count``
        over the trained items (the frequency gate's input). Not saved
        in checkpoints: a fact about the training data, recomputed from it."""
        if not hasattr(self, "log_item_counts"):
            counts = training_item_counts(dataset, dataset.config)
            self.register_buffer("log_item_counts", torch.log1p(counts.float()), persistent=False)
            trained = counts[counts > 0]
            self.log_median_count = math.log1p(trained.median().item()) if len(trained) else 0.0

    def set_content_prior(self, weight, rarity=0.0, dataset=None, build=False):
        """Rank with ``score + weight * r * cos(last item, item)`` over whitened content vectors
        (``content_prior``), where ``r = ((1 + item's training count) / (1 + the median
        count)) ** -rarity`` (``content_prior_rarity``: an item the ID model knows little about
        leans more on its content; 0: the same weight for every item); ``None`` or 0: the
        model's own scores. ``dataset``: where the content table and the counts come from the
        first time (the dataset's raw feature table; an ID-only model such as SASRecPub gets
        one too, which makes it a hybrid baseline)."""
        check_prior_settings(weight, rarity)
        if (weight or build) and not hasattr(self, "prior_table"):
            if dataset is None:
                raise ValueError("content_prior: this model was built without a content table "
                                 "(content_prior ~): rebuild it with content_prior set")
            if self.trained_prior is not None:
                # content_prior_training's table: the same features and counts of the same
                # dataset, whitened once and held once
                self.prior_table = self.trained_prior.table
            else:
                self.prior_table = ContentPrior(dataset_item_features(dataset, type(self).__name__),
                                                training_item_counts(dataset, dataset.config)).to(self.device)
        self.content_prior = float(weight) if weight else None
        self.content_prior_rarity = float(rarity or 0.0)

    def content_prior_scores(self, interaction, items=None):
        """:class:`recbole_tpad.model.prior.ContentPrior`'s scores at this model's weight and
        rarity: ``[B, n_items]``, or ``[B]`` for ``items [B]``."""
        return self.prior_table.of_sessions(self, interaction, self.content_prior,
                                            self.content_prior_rarity, items)

    def current_new_item_share(self, n_new):
        """The prior of the new-item part with ``n_new`` new items in the catalogue."""
        if not self.new_item_share_per_item:
            return self.new_item_share
        return min(self.new_item_share * n_new / max(1, self.new_items_calibrated), 0.99)

    def mixes_new_items(self):
        return self.new_item_share is not None and not self.training

    def mix_new_items(self, scores):
        """Scores ``[B, n_items]`` as log-probabilities of a two-part mixture: with probability
        ``1 - p`` the next item is a trained one (softmax of the scores over the trained items),
        with ``p`` (``new_item_share``) a new one (softmax over the items without a training
        interaction: cold items, items added after training). Within each part the order is the
        model's own; the parts are put on one scale. Training scores are left alone. Under
        ``new_item_share: valid``, p grows with the items added after training
        (:meth:`current_new_item_share`)."""
        if not self.mixes_new_items():
            return scores
        new = (~self.id_trained[1:]).nonzero().squeeze(1) + 1  # the padding id 0 is neither
        if not len(new) or not self.id_trained.any():
            return scores
        share = self.current_new_item_share(len(new))
        # log-sum-exp of the trained part from the whole and the (small) new part: no copy of
        # the trained items' columns (half the cost of a full-ranking batch's mixing on the CPU)
        whole = scores[:, 1:].logsumexp(1)
        new_part = scores.index_select(1, new).logsumexp(1)
        trained_part = whole + torch.log1p(-torch.exp((new_part - whole).clamp(max=-1e-7)))
        mixed = scores.clone()
        mixed[:, new] += (trained_part - new_part + math.log(share / (1 - share))).unsqueeze(1)
        return mixed

    def predict(self, interaction):
        if self.mixes_new_items():  # the mixture needs every item's score
            scores = self.full_sort_predict(interaction)
            return scores.gather(1, interaction[self.ITEM_ID].unsqueeze(1)).squeeze(1)
        items = self.item_representations()
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], items,
                                  self.sequence_times(interaction))
        scores = (seq_output * items[interaction[self.ITEM_ID]]).sum(-1)
        if self.trained_prior is not None:
            scores = scores + self.trained_prior(self, interaction, interaction[self.ITEM_ID])
        if self.content_prior and not self.training:
            scores = scores + self.content_prior_scores(interaction, interaction[self.ITEM_ID])
        return scores

    def full_sort_predict(self, interaction):
        items = self.item_representations()
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], items,
                                  self.sequence_times(interaction))
        scores = seq_output @ items.t()
        if self.trained_prior is not None:
            scores = scores + self.trained_prior(self, interaction)
        if self.content_prior and not self.training:  # before the mixture: it keeps p exactly
            scores = scores + self.content_prior_scores(interaction)
        return self.mix_new_items(scores)
