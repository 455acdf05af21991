"""Training objectives the plugin adds to RecBole's sequential models, without editing RecBole.

Two settings, read from the config:

``loss_type: SS`` (sampled softmax): the positive competes with ``n_negatives`` sampled items
instead of the whole catalogue. ``negative_sampling: uniform`` draws them uniformly from the real
items (never the padding id); ``popularity`` draws them in proportion to
``train count ** popularity_alpha`` and subtracts ``log q(j)`` from every logit (logQ
correction, Yi et al. 2019), so the loss still estimates the full softmax. A negative equal to
the positive is masked out (its logit is ``-inf``): the positive is never its own negative.
``shared_negatives: False`` (default) draws fresh negatives for every training position, as
the published sampled-softmax SASRec (RecTools, used by the eSASRec benchmark) does: a shared
set lets a few items carry the whole batch's gradient, and a first try with 256 shared
negatives on last positions only fell below full CE. ``True`` draws one set per batch (one
``[N, d] x [d, K]`` product, cheaper on the CPU). With ``n_negatives`` at or above the number of
real items, every real item but the positive is a negative, and the loss equals full-softmax CE
over the real items (tested).

``sequence_loss: all``: every training sequence appears once (its longest prefix, the last row
RecBole's augmentation makes per user or session) and the loss is taken at every position, the
target of position t being the item at t + 1: the way SASRec was trained originally and in the
eSASRec benchmark. ``last`` (RecBole's way) trains on every prefix, loss at the last position.
``all`` needs a causal encoder whose forward ends in ``gather_indexes`` (SASRec, GRU4Rec, TPAD
with the transformer or GRU encoder); other models are refused with that reason.

Both work with ``loss_type: CE`` too (full softmax at every position).

``train_negatives: seen`` (TPAD's default): only items that occur in the training split compete
with the positive, in the full softmax and as sampled negatives; ``all``: every item of the
catalogue (RecBole's way). An item with no training interaction (a cold item of the cold-start
split) is then never trained as a loser: training knows nothing of it, as it would know nothing
of an item added after training.
"""

import contextlib
import math

import torch
from torch.nn import functional as F

SAMPLINGS = ("uniform", "popularity")
SEQUENCE_LOSSES = ("last", "all")
#: train_negatives: which items compete with the positive in training
TRAIN_NEGATIVES = ("all", "seen")
#: RecBole models whose item scores are ``seq_output @ item_embedding.weight.T`` (checked in
#: RecBole 1.2.1; models that normalise or transform the table, such as CORE, are not listed).
_EMBEDDING_TABLE_MODELS = ("SASRec", "GRU4Rec", "NARM", "STAMP", "SRGNN", "GCSAN", "NextItNet",
                           "Caser", "LightSANs")
#: Causal models whose forward ends in ``gather_indexes(output, len - 1)``: with that step
#: skipped, ``forward`` gives the output at every position (position t sees items <= t only).
_CAUSAL_MODELS = ("SASRec", "GRU4Rec")


class ObjectiveConfigError(ValueError):
    """A loss setting that cannot work with this model or data; the message says what to change."""


def uses_plugin_objective(config):
    return (config["loss_type"] == "SS" or (config["sequence_loss"] or "last") == "all"
            or bool(config["content_prior_training"]))


def check_objective_settings(config, model_class):
    """Refuse settings the objective cannot honour, before any data is loaded."""
    model_name = config["model"]
    # TPAD and the models built on it (SASRecPub) score with their own item table
    plugin = hasattr(model_class, "item_representations")
    loss, seq = config["loss_type"], config["sequence_loss"] or "last"
    if seq not in SEQUENCE_LOSSES:
        raise ObjectiveConfigError(f"sequence_loss={seq!r}: use one of {SEQUENCE_LOSSES}")
    if loss == "SS":
        n = config["n_negatives"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ObjectiveConfigError(f"n_negatives={n!r}: give a positive whole number (e.g. 256)")
        if config["negative_sampling"] not in SAMPLINGS:
            raise ObjectiveConfigError(
                f"negative_sampling={config['negative_sampling']!r}: use one of {SAMPLINGS}")
    if not uses_plugin_objective(config):
        return
    if config["content_prior_training"] and (loss != "CE" or seq != "last"):
        raise ObjectiveConfigError(
            f"content_prior_training={config['content_prior_training']}: the prior is the session's "
            f"last item's, so it trains with loss_type: CE and sequence_loss: last (given "
            f"{loss}, {seq}); set those, or content_prior_training: ~")
    if model_name == "BERT4Rec":
        raise ObjectiveConfigError(
            "BERT4Rec trains by masked-item prediction, not next-item prediction: keep "
            "loss_type: CE and sequence_loss: last for it")
    if model_name not in _EMBEDDING_TABLE_MODELS and not plugin:
        raise ObjectiveConfigError(
            f"{model_name}: loss_type SS / sequence_loss all are available for "
            f"{', '.join(_EMBEDDING_TABLE_MODELS)} and the plugin's models")
    if seq == "all" and model_name not in _CAUSAL_MODELS and not plugin:
        raise ObjectiveConfigError(
            f"sequence_loss: all needs a causal encoder with an output per position "
            f"({', '.join(_CAUSAL_MODELS)}, TPAD); {model_name} encodes the whole session at once: "
            "use sequence_loss: last")
    if seq == "all" and plugin and config["encoder"] == "gnn":
        raise ObjectiveConfigError("sequence_loss: all needs TPAD's transformer or gru encoder; "
                                   "the gnn encoder encodes the whole session at once")


def item_table(model):
    """``[n_items, d]``: the vectors the model scores items with (row 0 is padding)."""
    if hasattr(model, "item_representations"):
        return model.item_representations()
    return model.item_embedding.weight


@contextlib.contextmanager
def outputs_at_every_position(model):
    """Inside this block ``model.forward`` returns ``[B, L, d]`` (its output at every position)
    instead of the last position's: ``gather_indexes`` lets the sequence through."""
    model.gather_indexes = lambda output, index: output
    try:
        yield
    finally:
        del model.gather_indexes


def last_row_per_sequence(train_dataset, config):
    """Row indices of the last (longest) training prefix of each user or session."""
    owner = train_dataset.inter_feat[config["USER_ID_FIELD"]].long()
    rows = torch.arange(len(owner))
    last = torch.full((int(owner.max()) + 1,), -1, dtype=torch.long)
    last.scatter_reduce_(0, owner, rows, reduce="amax")
    return last[last >= 0].sort().values


def sampled_softmax_loss(query, positives, items, n_negatives, generator=None, shared=False,
                         log_q=None, candidates=None):
    """Mean sampled-softmax loss of ``query [N, d]`` against ``positives [N]``.

    ``items [n_items, d]`` holds every item's vector, row 0 padding. Negatives come from
    ``1..n_items-1`` (``candidates``: from these ids only): uniformly, or from ``exp(log_q)``
    when ``log_q [n_items]`` (log sampling probabilities, ``-inf`` at 0) is given, in which case
    every logit is corrected by ``- log_q``. A negative equal to the row's positive is masked out.
    """
    n_items = items.size(0)
    n_real = n_items - 1 if candidates is None else len(candidates)
    pos_logit = (query * items[positives]).sum(-1, keepdim=True)
    if n_negatives >= n_real:  # every candidate: exactly the full softmax over them
        if candidates is None:
            candidates = torch.arange(1, n_items, device=query.device)
        neg_logits = query @ items[candidates].t()
        negatives = candidates.expand(query.size(0), -1)
        log_q_neg = log_q[candidates].expand_as(neg_logits) if log_q is not None else None
    else:
        rows = 1 if shared else query.size(0)
        if log_q is None and candidates is None:
            negatives = torch.randint(1, n_items, (rows, n_negatives), device=query.device,
                                      generator=generator)
        elif log_q is None:
            negatives = candidates[torch.randint(0, n_real, (rows, n_negatives),
                                                 device=query.device, generator=generator)]
        else:
            negatives = torch.multinomial(log_q.exp().expand(rows, -1), n_negatives,
                                          replacement=True, generator=generator)
        if shared:
            neg_logits = query @ items[negatives[0]].t()
            negatives = negatives.expand(query.size(0), -1)
        else:
            neg_logits = torch.einsum("nd,nkd->nk", query, F.embedding(negatives, items))
        log_q_neg = log_q[negatives] if log_q is not None else None
    if log_q is not None:
        pos_logit = pos_logit - log_q[positives].unsqueeze(-1)
        neg_logits = neg_logits - log_q_neg
    neg_logits = neg_logits.masked_fill(negatives == positives.unsqueeze(-1), -math.inf)
    logits = torch.cat([pos_logit, neg_logits], dim=-1)
    return F.cross_entropy(logits, torch.zeros_like(positives))


class TrainingObjective:
    """The loss of one model under ``loss_type`` / ``sequence_loss`` (see the module doc)."""

    def __init__(self, config, dataset):
        self.sampled = config["loss_type"] == "SS"
        self.all_positions = (config["sequence_loss"] or "last") == "all"
        self.n_negatives = config["n_negatives"]
        self.shared = bool(config["shared_negatives"])
        self.log_q = None
        # train_negatives: seen: an item with no training interaction is never a negative (nor
        # in the full softmax): it exists in the catalogue, but training knows nothing of it, and
        # pushing its content down as a never-chosen item taught the model never to rank it
        self.candidates, self.unseen = None, None
        if (config["train_negatives"] or "all") == "seen":
            from recbole_tpad.evaluation import items_seen_in_training

            seen = items_seen_in_training(dataset, config)
            self.candidates, self.unseen = seen.nonzero().squeeze(1), ~seen
        if self.sampled and config["negative_sampling"] == "popularity":
            counts = torch.bincount(dataset.inter_feat[dataset.iid_field].long(),
                                    minlength=dataset.item_num).double()
            weights = (counts + 1).pow(config["popularity_alpha"])  # +1: every item can be drawn
            weights[0] = 0
            if self.unseen is not None:
                weights[self.unseen] = 0
            self.log_q = (weights / weights.sum()).log().float()

    def targets_and_queries(self, model, interaction, items):
        item_seq = interaction[model.ITEM_SEQ]
        lengths = interaction[model.ITEM_SEQ_LEN]
        positives = interaction[model.POS_ITEM_ID]
        # TPAD computes its fused item table once per step and passes it on (and the sequences'
        # times when it reads time gaps)
        extra = {"items": items, "times": model.sequence_times(interaction)} \
            if hasattr(model, "item_representations") else {}
        if not self.all_positions:
            return model.forward(item_seq, lengths, **extra), positives
        with outputs_at_every_position(model):
            output = model.forward(item_seq, lengths, **extra)  # [B, L, d]
        # target of position t: the item at t + 1; of the last position: the training target
        targets = torch.roll(item_seq, -1, dims=1)
        targets[:, -1] = 0
        targets.scatter_(1, (lengths - 1).unsqueeze(1), positives.unsqueeze(1))
        valid = targets > 0
        return output[valid], targets[valid]

    def __call__(self, model, interaction, items=None, also=(), also_shared=None):
        """The loss; ``items``: the table the model encodes and scores with (default: its
        own); ``also``: further tables scored with the same session vectors, their losses added
        (TPAD's content heads, ``content_head_training: auxiliary``); ``also_shared``: their
        sampled negatives one set per batch (True) or as ``shared_negatives`` says (None)."""
        items = item_table(model) if items is None else items
        query, positives = self.targets_and_queries(model, interaction, items)
        prior = getattr(model, "trained_prior", None)  # content_prior_training
        bias = prior(model, interaction) if prior is not None else None
        return self.loss(query, positives, items, bias=bias) + sum(
            self.loss(query, positives, table, shared=also_shared, bias=bias) for table in also)

    def loss(self, query, positives, items, shared=None, bias=None):
        """The loss of session vectors ``query [N, d]`` with targets ``positives [N]`` scored
        against ``items [n_items, d]``; ``shared``: one negative set per batch (default:
        ``shared_negatives``); ``bias [N, n_items]``: added to the logits (full softmax only)."""
        if not self.sampled:
            logits = query @ items.t()
            if bias is not None:
                logits = logits + bias
            if self.unseen is not None:
                logits = logits.masked_fill(self.unseen.to(query.device), -math.inf)
            return F.cross_entropy(logits, positives)
        candidates = self.candidates.to(query.device) if self.candidates is not None else None
        log_q = self.log_q.to(query.device) if self.log_q is not None else None
        return sampled_softmax_loss(query, positives, items, self.n_negatives,
                                    shared=self.shared if shared is None else shared,
                                    log_q=log_q, candidates=candidates)


@contextlib.contextmanager
def _loss_type_as_ce(config):
    """RecBole's models accept loss_type BPR or CE only; they are built as CE (the layers are
    the same) and their ``calculate_loss`` is replaced by the plugin's objective."""
    given = config["loss_type"]
    config["loss_type"] = "CE"
    try:
        yield
    finally:
        config["loss_type"] = given


_CLASSES = {}


def model_class_for(config, model_class):
    """``model_class``, or a subclass of it (same name) that trains with the plugin's objective
    when ``loss_type: SS`` or ``sequence_loss: all`` is set. The plugin's models
    (``native_objective``: TPAD, SASRecPub) train with it themselves."""
    check_objective_settings(config, model_class)
    if not uses_plugin_objective(config) or getattr(model_class, "native_objective", False):
        return model_class
    if model_class not in _CLASSES:
        def __init__(self, config, dataset):
            with _loss_type_as_ce(config):
                model_class.__init__(self, config, dataset)
            self.training_objective = TrainingObjective(config, dataset)
            from recbole_tpad.model.prior import trained_prior

            self.trained_prior = trained_prior(config, dataset, model_class.__name__)

        def calculate_loss(self, interaction):
            return self.training_objective(self, interaction)

        def predict(self, interaction):
            scores = model_class.predict(self, interaction)
            if self.trained_prior is None:
                return scores
            return scores + self.trained_prior(self, interaction, interaction[self.ITEM_ID])

        def full_sort_predict(self, interaction):
            scores = model_class.full_sort_predict(self, interaction)
            return scores if self.trained_prior is None else scores + self.trained_prior(self, interaction)

        _CLASSES[model_class] = type(model_class.__name__, (model_class,), {
            "__init__": __init__, "calculate_loss": calculate_loss, "predict": predict,
            "full_sort_predict": full_sort_predict,
            "__module__": model_class.__module__,
            "__doc__": f"{model_class.__name__} trained with recbole_tpad.losses.TrainingObjective"})
    return _CLASSES[model_class]
