"""TPAD's building blocks: the adapter over frozen item features, the fusion with ID
embeddings, and the three session encoders (transformer, GRU, gated GNN)."""

import math
import warnings

import torch
from recbole.model.layers import TransformerEncoder
from torch import nn
from torch.nn import functional as F

ADAPTERS = ("linear", "mlp", "moe")
FUSIONS = ("sum", "concat", "gate", "residual")
ENCODERS = ("transformer", "sasrec", "gru", "gnn")
#: feature_dropout_on: where the adapter's dropout acts (FeatureAdapter)
FEATURE_DROPOUT_ON = ("table", "adapter")
#: id_init: where the ID vectors start (start_ids_from_features)
ID_INITS = ("random", "features")


def table_dropout(x, p, training, scaled=True):
    """``F.dropout`` for tables of every item, which every training step drops anew: the frozen
    feature table (18k x 384 on amazon-sports), the adapter's hidden layer and the item vectors
    (``item_dropout``). On the CPU the keep mask is drawn as 15-bit integers (``P(keep) = 1 - p``
    to 1/32768) and multiplied in, instead of per-element Bernoulli floats: 2x faster on one
    thread (69 against 135 ms a step on the 384-d table), and on an 18k x 64 table 3.6 against
    8.8 ms forward and backward on two threads. The integers are the four 16-bit lanes of 63-bit
    random words, top bit cleared (:func:`random_15_bits`): the generator is serial, and one draw
    per four entries takes half the time of one per entry. Elsewhere it is ``F.dropout``.

    ``scaled=False``: the kept entries are not scaled by ``1 / (1 - p)``; the caller folds that
    into what reads them (a layer's weight), which saves a pass over the table."""
    if not training or not p:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True) if scaled else F.dropout(x, p, True) * (1 - p)
    keep = random_15_bits(x.shape, x.device) >= round(p * 32768)
    mask = keep.to(x.dtype)  # a float mask: multiplying by a bool one is twice as slow
    return x * (mask.mul_(1 / (1 - p)) if scaled else mask)


def random_15_bits(shape, device=None):
    """``int16`` tensor of ``shape``, each entry uniform on ``0 .. 32767``: four entries from each
    random 63-bit word (``random_`` on ``int64``), each lane's top bit cleared."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_()
    return words.view(torch.int16)[:n].view(shape) & 0x7FFF


class TableDropout(nn.Dropout):
    """``nn.Dropout`` by :func:`table_dropout`: for a layer whose input is every item's row."""

    def forward(self, x):
        return table_dropout(x, self.p, self.training)


class KeptWhileUnchanged:
    """A value computed from tensors that stay the same between calls (a frozen feature table,
    an id table; in ranking, every weight and buffer of a model), kept while each of them is the
    same object, at the same version, in the same memory: a copy into it (a checkpoint loaded,
    an optimiser step) bumps its version, a new table (items added) is another object, and a
    parameter moved to another device or dtype keeps its object but not its memory; so a kept
    value is never used for changed data. An edit through ``.data`` bumps no version: use
    ``torch.no_grad()`` and an in-place op, as PyTorch does. Not part of any state dict:
    recomputed on demand."""

    def __init__(self):
        self.tensors, self.key, self.value = (), None, None

    def get(self, tensors, compute, also=()):
        """``compute(tensors)`` (one tensor or a sequence of them), or the kept value; ``also``:
        further facts the value depends on (a dtype), compared too."""
        group = [tensors] if torch.is_tensor(tensors) else list(tensors)
        # an inference tensor has no version counter to trust; a value that needs gradients
        # cannot be kept
        if any(t.is_inference() or (t.requires_grad and torch.is_grad_enabled()) for t in group):
            return compute(tensors)
        key = [(t._version, t.data_ptr()) for t in group] + list(also)
        if (self.key != key or len(self.tensors) != len(group)
                or any(a is not b for a, b in zip(group, self.tensors))):
            with torch.no_grad():
                self.value = compute(tensors)
            self.tensors, self.key = group, key
        return self.value


class FeatureWhitening(nn.Module):
    """PCA whitening of a frozen feature table, fit once on the table itself: ``(x - mean) @ P``
    with ``P``'s columns the top ``dims`` principal directions, each scaled to unit variance.

    Why: frozen language-model vectors are anisotropic (a few directions carry most of the
    variance, and every pair of items looks alike along them); whitening evens them out, as
    BERT-whitening does for sentence vectors. With ``dims`` below the feature size the table the
    model reads every step is narrower too, which is what a TPAD step spends its extra time on
    over an ID model (dropout, LayerNorm and projection of the whole 18k x 384 table). Fit on the
    items' content only (no interaction), so it sees nothing of the validation or test split.
    The mean and projection are buffers: a checkpoint keeps them, and items added after training
    are whitened with the same transform (:meth:`TPAD.add_items`)."""

    def __init__(self, in_dim, dims, persistent=True):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim), persistent=persistent)
        self.register_buffer("projection", torch.zeros(in_dim, dims), persistent=persistent)

    @classmethod
    def fit(cls, table, dims, eps=1e-6, persistent=True):
        """``dims``: how many principal directions to keep (``"all"``: every one);
        ``persistent=False``: a transform recomputed from the data, not saved in checkpoints."""
        in_dim = table.size(1)
        if dims == "all":
            dims = in_dim
        if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= in_dim:
            raise ValueError(f"feature_whitening={dims!r}: give a whole number of dimensions "
                             f"from 1 to the feature size {in_dim}, all, or ~ (no whitening)")
        whitening = cls(in_dim, dims, persistent)
        x = table.double()
        mean = x.mean(0)
        covariance = torch.cov((x - mean).t())
        values, vectors = torch.linalg.eigh(covariance)  # ascending
        values, vectors = values.flip(0)[:dims], vectors.flip(1)[:, :dims]
        # an eigenvector's sign is arbitrary: fix it (largest entry positive) so that the
        # same table always gives the same whitened table
        signs = torch.sign(vectors.gather(0, vectors.abs().argmax(0, keepdim=True)))
        vectors = vectors * signs
        # directions without variance stay small instead of being blown up to unit variance
        scale = values.clamp(min=eps * float(values[0].clamp(min=eps))).rsqrt()
        whitening.mean.copy_(mean.to(table.dtype))
        whitening.projection.copy_((vectors * scale).to(table.dtype))
        return whitening

    def forward(self, features):
        return (features - self.mean) @ self.projection


@torch.no_grad()
def start_ids_from_features(weight, table):
    """``id_init: features``: each item's ID vector (``weight``, ``[n_items, d]``, row 0 the
    padding id) starts as its frozen features (``table``, the same rows), PCA-whitened to the
    top ``d`` directions (:class:`FeatureWhitening`, fit on the item table alone) and scaled to
    the spread the random initialisation gave the vectors. Why: an item with few training
    interactions gets few updates, and from a random start it stays near a random vector; from
    its content it starts beside items like it. Directions beyond the feature size keep their
    random start; the padding row stays zero. For TPAD and RecBole's ID models alike."""
    if table.shape[0] != weight.shape[0]:
        raise ValueError(f"id_init=features: the feature table has {table.shape[0]} rows for "
                         f"{weight.shape[0]} item ids; build it for this dataset's items")
    scale = float(weight[1:].std())
    dims = min(weight.shape[1], table.shape[1])
    rows = table[1:].to(weight)
    weight[1:, :dims] = FeatureWhitening.fit(rows, dims)(rows) * scale
    weight[0] = 0.0


def whitened_features(module, table, dims):
    """``table`` (row 0: the padding id) as the model reads it: whitened to ``dims``
    (``feature_whitening``) with the transform, fit on the real items' rows, stored on
    ``module.whitening`` (``None``: the table as it is)."""
    module.whitening = None if dims is None else FeatureWhitening.fit(table[1:], dims)
    return features_as_read(module, table)


def features_as_read(module, features):
    """Raw feature rows (as the feature file holds them) as ``module`` reads them: through the
    transform :func:`whitened_features` fit on its training catalogue, never a new fit (new
    items and a checkpoint's file check must land in the space the model was trained in)."""
    whitening = getattr(module, "whitening", None)
    return features if whitening is None else whitening(features.to(whitening.mean))


class FeatureAdapter(nn.Module):
    """Maps frozen item features (any producer's dimension) into the model's space.

    ``linear``: one projection. ``mlp``: LayerNorm, two layers. ``moe``: a softmax-gated mixture
    of parametric-whitening experts ``(x - b_k) W_k``, as UniSRec adapts frozen text vectors.

    ``dropout_on`` (``feature_dropout_on``): ``table``: dropout on the frozen feature table itself
    (and on the mlp's hidden layer), redrawn every step over all of it (18k x 384 on
    amazon-sports); ``adapter``: on the adapter's own output layers only (the mlp's hidden layer,
    the linear and moe outputs), 6x narrower. Without dropout on the table the mlp's LayerNorm
    sees the same frozen rows every step, so their normalisation is computed once and kept
    (:meth:`normalised`). In both, its scale and shift are folded into the first layer, so the
    frozen table's normalisation needs no backward (:meth:`_mlp`): the same function at the cost
    of one ``[n, in] x [in, out]`` product and its weight gradient.
    """

    def __init__(self, in_dim, out_dim, kind="mlp", dropout=0.1, n_experts=4, dropout_on="table"):
        super().__init__()
        if kind not in ADAPTERS:
            raise ValueError(f"adapter={kind!r}: use one of {ADAPTERS}")
        if dropout_on not in FEATURE_DROPOUT_ON:
            raise ValueError(f"feature_dropout_on={dropout_on!r}: use one of {FEATURE_DROPOUT_ON}")
        self.kind, self.dropout_on = kind, dropout_on
        self.dropout = TableDropout(dropout)  # every layer here holds one row per item
        if kind == "linear":
            self.proj = nn.Linear(in_dim, out_dim)
        elif kind == "mlp":
            self.norm = nn.LayerNorm(in_dim)
            self.proj = nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), TableDropout(dropout),
                                      nn.Linear(out_dim, out_dim))
        else:
            self.bias = nn.Parameter(torch.zeros(n_experts, in_dim))
            self.experts = nn.Parameter(torch.randn(n_experts, in_dim, out_dim) / in_dim ** 0.5)
            self.gate = nn.Linear(in_dim, n_experts)
        self._normalised = KeptWhileUnchanged()

    def forward(self, features):
        if self.kind == "mlp":
            return self._mlp(features)
        if self.dropout_on == "adapter":
            return self.dropout(self._adapt(features))
        return self._adapt(table_dropout(features, self.dropout.p, self.training))

    def _mlp(self, features):
        """``proj(norm(features))`` with the dropout where ``dropout_on`` says, computed with
        fewer passes over every item's row: LayerNorm's scale and shift folded into the first
        layer; the frozen table's normalisation computed without a gradient (``table``; no
        LayerNorm backward over every item) or once and kept (``adapter``); each dropout's
        ``1 / (1 - p)`` folded into what reads it (LayerNorm's ``eps``, since LayerNorm is blind
        to a common scale, and the second layer's weight). The same function, tested."""
        p = self.dropout.p if self.training else 0.0
        if self.dropout_on == "adapter":
            normalised = self.normalised(features)  # the same rows every step: kept
        else:
            with torch.set_grad_enabled(torch.is_grad_enabled() and features.requires_grad):
                normalised = self._normalise(table_dropout(features, p, True, scaled=False), p)
        first, second = self.proj[0], self.proj[3]
        weight = first.weight * self.norm.weight
        bias = first.bias + first.weight @ self.norm.bias
        # proj[2], the hidden layer's dropout, acts here with its scale in proj[3]'s weight
        hidden = table_dropout(self.proj[1](F.linear(normalised, weight, bias)), p, True,
                               scaled=False)
        return F.linear(hidden, second.weight * (1 / (1 - p)), second.bias)

    def _adapt(self, x):
        if self.kind == "linear":
            return self.proj(x)
        expert_out = torch.einsum("nki,kio->nko", x.unsqueeze(1) - self.bias, self.experts)
        weights = F.softmax(self.gate(x), dim=-1).unsqueeze(-1)
        return (weights * expert_out).sum(1)

    def normalised(self, features):
        """``features`` normalised row by row (LayerNorm without its scale and shift), computed
        once per table (:class:`KeptWhileUnchanged`)."""
        return self._normalised.get(features, self._normalise)

    def _normalise(self, table, dropped=0.0):
        """LayerNorm without its scale and shift; ``dropped``: the share of ``table`` dropped
        without the ``1 / (1 - dropped)`` scale, which goes into ``eps`` instead."""
        return F.layer_norm(table, table.shape[-1:], eps=self.norm.eps * (1 - dropped) ** 2)


class _MeanPooling(torch.autograd.Function):
    """``onto + pooling @ table`` with the gradient ``pooling_t @ grad``: both sparse matrices
    made once, so the backward is one sparse product (EmbeddingBag's sorts every index each
    step); the sum is one ``addmm``, not a product and a pass over every item to add it."""

    @staticmethod
    def forward(ctx, pooling, pooling_t, table, onto):
        ctx.pooling_t = pooling_t
        return pooling @ table if onto is None else torch.addmm(onto, pooling, table)

    @staticmethod
    def backward(ctx, grad):
        return None, None, ctx.pooling_t @ grad, grad if ctx.needs_input_grad[3] else None


def mean_pooling_matrices(ids, size, dtype=torch.float32):
    """``[rows, size]`` sparse (CSR) matrix whose row i averages the embeddings of the ids in
    ``ids[i]`` (the padding id 0 left out; none: a zero row), and its transpose."""
    present = ids > 0
    rows, slots = present.nonzero(as_tuple=True)
    weights = (1.0 / present.sum(1).clamp(min=1)).to(dtype)[rows]
    with warnings.catch_warnings():  # torch: "sparse ... in beta", "invariant checks disabled"
        warnings.simplefilter("ignore", UserWarning)
        pooling = torch.sparse_coo_tensor(torch.stack([rows, ids[rows, slots]]), weights,
                                          (ids.size(0), size)).coalesce()
        return pooling.to_sparse_csr(), pooling.t().coalesce().to_sparse_csr()


class AttributeEmbedding(nn.Module):
    """Categorical item attributes (``item_attributes``) as one vector per item: for each field
    the mean of the item's category embeddings (none: zero), summed over the fields. The id
    tables are buffers, so a checkpoint keeps the exact attributes it was trained with.

    On the CPU the means are one sparse product per field with the pooling matrix made once per
    id table (:func:`mean_pooling_matrices`, kept while the table is unchanged): 3x faster per
    training step than ``EmbeddingBag`` on amazon-sports (5 against 16 ms on one thread), the same values.
    Elsewhere ``EmbeddingBag``, whose GPU kernel needs no such help."""

    def __init__(self, id_tables, sizes, dim):
        super().__init__()
        # EmbeddingBag's mean leaves the padding id out and gives an empty bag zero, as the
        # definition above, without the [items, ids, dim] intermediate
        self.embeddings = nn.ModuleList(nn.EmbeddingBag(size, dim, mode="mean", padding_idx=0)
                                        for size in sizes)
        for k, table in enumerate(id_tables):
            self.register_buffer(f"ids{k}", table.clone())
        self._pooling = [KeptWhileUnchanged() for _ in sizes]

    def id_tables(self):
        return [getattr(self, f"ids{k}") for k in range(len(self.embeddings))]

    def forward(self, onto=None):
        """``[n_items, dim]``: each item's attribute vector, added to ``onto`` (the same shape)
        when given."""
        total = onto
        for embedding, ids, pooling in zip(self.embeddings, self.id_tables(), self._pooling):
            table = embedding.weight
            if table.device.type != "cpu":
                vectors = embedding(ids)
                total = vectors if total is None else total + vectors
                continue
            matrices = pooling.get(ids, lambda i: mean_pooling_matrices(i, table.size(0), table.dtype),
                                   also=(table.dtype, table.size(0)))
            total = _MeanPooling.apply(*matrices, table, total)
        return total

    @torch.no_grad()
    def append(self, id_tables):
        """Rows for items added after training (ids from the training vocabulary; 0: none)."""
        for k, (old, new) in enumerate(zip(self.id_tables(), id_tables)):
            new = new.to(old)[:, :old.size(1)]
            padded = new.new_zeros(len(new), old.size(1))
            padded[:, :new.size(1)] = new
            setattr(self, f"ids{k}", torch.cat([old, padded]))


class Fusion(nn.Module):
    """Combines the ID embedding and the adapted feature vector of each item.

    ``residual`` (default): ``id + s * feat`` with a per-dimension scale ``s`` that starts at 0,
    so training starts from the ID model and lets the features in as far as they help. On the
    demo data, plain ``sum`` and ``gate`` trained worse than ID-only embeddings (the shared
    content vector dominated early and slowed item-level learning); ``residual`` beats both.
    """

    def __init__(self, dim, kind="residual"):
        super().__init__()
        if kind not in FUSIONS:
            raise ValueError(f"fusion={kind!r}: use one of {FUSIONS}")
        self.kind = kind
        if kind == "concat":
            self.proj = nn.Linear(2 * dim, dim)
        elif kind == "gate":
            self.gate = nn.Linear(2 * dim, dim)
        elif kind == "residual":
            self.scale = nn.Parameter(torch.zeros(dim))

    def forward(self, id_emb, feat_emb):
        if self.kind == "sum":
            return id_emb + feat_emb
        if self.kind == "residual":
            return torch.addcmul(id_emb, self.scale, feat_emb)  # one pass over every item
        both = torch.cat([id_emb, feat_emb], dim=-1)
        if self.kind == "concat":
            return self.proj(both)
        g = torch.sigmoid(self.gate(both))
        return g * id_emb + (1 - g) * feat_emb


def gather_last(output, lengths):
    """The vector at position ``lengths - 1`` of each sequence."""
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, output.size(-1))
    return output.gather(1, index).squeeze(1)


class TransformerSessionEncoder(nn.Module):
    """SASRec-style causal self-attention; an output per position (position t sees items <= t)."""

    causal = True

    def __init__(self, dim, max_len, n_layers=2, n_heads=2, inner_size=256, dropout=0.2,
                 attn_dropout=0.2, hidden_act="gelu", layer_norm_eps=1e-12):
        super().__init__()
        self.position = nn.Embedding(max_len, dim)
        self.norm = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)
        self.encoder = TransformerEncoder(n_layers=n_layers, n_heads=n_heads, hidden_size=dim,
                                          inner_size=inner_size, hidden_dropout_prob=dropout,
                                          attn_dropout_prob=attn_dropout, hidden_act=hidden_act,
                                          layer_norm_eps=layer_norm_eps)

    def forward(self, item_emb, item_seq, lengths):
        positions = torch.arange(item_seq.size(1), device=item_seq.device)
        x = self.dropout(self.norm(item_emb + self.position(positions).unsqueeze(0)))
        mask = (item_seq != 0).unsqueeze(1).unsqueeze(2)
        mask = torch.tril(mask.expand(-1, -1, item_seq.size(1), -1))
        mask = torch.where(mask, 0.0, -10000.0)
        return self.encoder(x, mask, output_all_encoded_layers=False)[-1]


class SASRecBlock(nn.Module):
    """The SASRec author's block (pre-LN; the normalised query is the residual), with PyTorch's
    multi-head attention, as RecTools' SASRec used by the eSASRec benchmark."""

    def __init__(self, dim, n_heads, inner_size, dropout):
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, n_heads, dropout, batch_first=True)
        self.q_norm = nn.LayerNorm(dim)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, inner_size), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(inner_size, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, causal_mask):
        q = self.q_norm(x)
        x = q + self.attention(q, x, x, attn_mask=causal_mask, need_weights=False)[0]
        ff_input = self.ff_norm(x)
        return ff_input + self.dropout(self.ff(ff_input))


class SASRecSessionEncoder(nn.Module):
    """SASRec as published and benchmarked (Kang & McAuley 2018; RecTools / eSASRec): pre-LN
    blocks, a final LayerNorm, padding zeroed before every block, and learnable positions counted
    back from the last item (the last item is always position 0, whatever the length).
    An output per position (position t sees items <= t)."""

    causal = True

    def __init__(self, dim, max_len, n_layers=1, n_heads=1, inner_size=64, dropout=0.2):
        super().__init__()
        self.position = nn.Embedding(max_len, dim)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(SASRecBlock(dim, n_heads, inner_size, dropout)
                                    for _ in range(n_layers))
        self.last_norm = nn.LayerNorm(dim, eps=1e-8)

    def forward(self, item_emb, item_seq, lengths):
        length = item_seq.size(1)
        steps = torch.arange(length, device=item_seq.device)
        back = (lengths.unsqueeze(1) - 1 - steps).clamp(min=0)  # 0 at the last item
        x = self.dropout(item_emb + self.position(back))
        keep = (item_seq != 0).unsqueeze(-1).to(x.dtype)
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        for block in self.blocks:
            x = block(x * keep, causal)
        return self.last_norm(x * keep)


class GRUSessionEncoder(nn.Module):
    """GRU4Rec-style recurrent encoder; an output per step (step t sees items <= t)."""

    causal = True

    def __init__(self, dim, n_layers=1, dropout=0.2):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(dim, dim, num_layers=n_layers, batch_first=True, bias=False)
        self.dense = nn.Linear(dim, dim)

    def forward(self, item_emb, item_seq, lengths):
        output, _ = self.gru(self.dropout(item_emb))
        return self.dense(output)


class GatedGNNSessionEncoder(nn.Module):
    """SR-GNN's gated graph network over the session graph, built on tensors.

    Positions holding the same item are one node of SR-GNN's graph: the adjacency
    ``S T S^T`` (S: same-item matrix, T: next-position transitions) gives every copy of an item
    the merged in/out edges, so the result equals SR-GNN's without its per-batch numpy loop.
    The session is SR-GNN's: soft attention over positions, concatenated with the last item,
    one vector per session (not causal).
    """

    causal = False

    def __init__(self, dim, steps=1, dropout=0.2):
        super().__init__()
        self.steps = steps
        self.dropout = nn.Dropout(dropout)
        self.edge_in = nn.Linear(dim, dim)
        self.edge_out = nn.Linear(dim, dim)
        self.cell = nn.GRUCell(2 * dim, dim)
        self.att_last = nn.Linear(dim, dim)
        self.att_all = nn.Linear(dim, dim)
        self.att_score = nn.Linear(dim, 1, bias=False)
        self.out = nn.Linear(2 * dim, dim)

    @staticmethod
    def adjacency(item_seq):
        valid = item_seq != 0
        same = (item_seq.unsqueeze(2) == item_seq.unsqueeze(1)) & valid.unsqueeze(2) & valid.unsqueeze(1)
        same = same.float()
        step = (valid[:, :-1] & valid[:, 1:]).float()
        trans = torch.diag_embed(F.pad(step, (0, 1)), offset=1)[:, :-1, :-1]
        edges = (same @ trans @ same).clamp(max=1)  # [i, j] = 1: item(i) -> item(j) occurs
        copies = same.sum(1, keepdim=True).clamp(min=1)  # positions holding item(j), per column j

        def per_node(a):  # each neighbour node counts once, however many positions hold it
            a = a / copies
            return a / a.sum(-1, keepdim=True).clamp(min=1e-12) * (a.sum(-1, keepdim=True) > 0)

        return per_node(edges.transpose(1, 2)), per_node(edges)

    def forward(self, item_emb, item_seq, lengths):
        a_in, a_out = self.adjacency(item_seq)
        h = self.dropout(item_emb)
        batch, length, dim = h.shape
        for _ in range(self.steps):
            message = torch.cat([a_in @ self.edge_in(h), a_out @ self.edge_out(h)], dim=-1)
            h = self.cell(message.reshape(-1, 2 * dim), h.reshape(-1, dim)).view(batch, length, dim)
        last = gather_last(h, lengths)
        alpha = self.att_score(torch.sigmoid(self.att_last(last).unsqueeze(1) + self.att_all(h)))
        global_pref = (alpha * h * (item_seq != 0).unsqueeze(-1)).sum(1)
        return self.out(torch.cat([global_pref, last], dim=-1))


def build_session_encoder(kind, dim, config):
    """The encoder named by ``encoder`` in the config, with its hyper-parameters."""
    if kind == "transformer":
        return TransformerSessionEncoder(
            dim, config["MAX_ITEM_LIST_LENGTH"], config["n_layers"], config["n_heads"],
            config["inner_size"], config["hidden_dropout_prob"], config["attn_dropout_prob"],
            config["hidden_act"], config["layer_norm_eps"])
    if kind == "sasrec":
        return SASRecSessionEncoder(
            dim, config["MAX_ITEM_LIST_LENGTH"], config["n_layers"], config["n_heads"],
            config["inner_size"], config["hidden_dropout_prob"])
    if kind == "gru":
        return GRUSessionEncoder(dim, config["gru_layers"], config["hidden_dropout_prob"])
    if kind == "gnn":
        return GatedGNNSessionEncoder(dim, config["gnn_steps"], config["hidden_dropout_prob"])
    raise ValueError(f"encoder={kind!r}: use one of {ENCODERS}")
