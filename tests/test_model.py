"""TPAD's layers: the tensor session graph equals SR-GNN's, adapters and fusions keep shapes."""

import pytest
import torch

from recbole_tpad.model.layers import (ADAPTERS, FUSIONS, AttributeEmbedding, FeatureAdapter,
                                       FeatureWhitening, Fusion, GatedGNNSessionEncoder,
                                       GRUSessionEncoder, random_15_bits, table_dropout)
from tests.conftest import nearest_neighbour_agreement


def srgnn_adjacency(session):
    """SR-GNN's merged-node graph of one session, expanded back to positions."""
    nodes = sorted(set(session))
    n = len(nodes)
    out = torch.zeros(n, n)
    for a, b in zip(session, session[1:]):
        out[nodes.index(a), nodes.index(b)] = 1
    return out, out.t(), [nodes.index(i) for i in session]


def test_table_dropout_drops_its_share_and_keeps_the_mean():
    torch.manual_seed(0)
    x = torch.rand(2000, 300) + 0.5
    y = table_dropout(x, 0.1, training=True)
    assert abs((y == 0).float().mean().item() - 0.1) < 0.005
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.9)
    assert abs(y.mean().item() / x.mean().item() - 1) < 0.01
    assert table_dropout(x, 0.1, training=False) is x and table_dropout(x, 0.0, training=True) is x
    # the gradient goes through the kept entries at the same scale; the dtype is kept
    x.requires_grad_()
    y = table_dropout(x, 0.1, training=True)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() / 0.9)
    assert table_dropout(x.detach().bfloat16(), 0.1, training=True).dtype == torch.bfloat16


def test_random_15_bits_are_uniform_in_every_lane_of_a_word():
    """Four entries per 63-bit word: each of the four lanes, the word's top one included, is
    uniform on 0 .. 32767 (every bit set half the time), and the shape is any, odd sizes too."""
    torch.manual_seed(0)
    bits = random_15_bits((100_001, 4))
    assert bits.dtype == torch.int16 and bits.shape == (100_001, 4)
    assert int(bits.min()) >= 0 and int(bits.max()) <= 32767
    for lane in range(4):
        values = bits[:, lane].int()
        ones = torch.stack([(values >> b) & 1 for b in range(15)]).float().mean(1)
        assert ((ones - 0.5).abs() < 0.01).all(), (lane, ones)
    assert random_15_bits((3, 5, 7)).shape == (3, 5, 7)


def test_attribute_embedding_is_the_mean_of_an_items_ids_and_zero_without_any():
    ids = torch.tensor([[0, 0, 0], [3, 0, 0], [1, 2, 0], [2, 2, 4]])
    layer = AttributeEmbedding([ids], [5], dim=4)
    table = layer.embeddings[0].weight
    out = layer()
    assert torch.equal(out[0], torch.zeros(4))
    assert torch.allclose(out[1], table[3])
    assert torch.allclose(out[2], (table[1] + table[2]) / 2)
    assert torch.allclose(out[3], (2 * table[2] + table[4]) / 3)
    out.sum().backward()
    assert torch.equal(layer.embeddings[0].weight.grad[0], torch.zeros(4))  # padding: no gradient


def test_attribute_embedding_on_the_cpu_equals_embedding_bag_and_follows_its_id_tables():
    """The CPU path (sparse pooling matrices made once) gives EmbeddingBag's values and
    gradients, and its kept matrices follow the id tables: a checkpoint copied into them, rows
    appended, another dtype."""
    torch.manual_seed(0)
    ids = [torch.randint(0, 6, (40, 1)), torch.randint(0, 9, (40, 5))]
    ids[1][3] = 0  # an item with no category
    layer = AttributeEmbedding(ids, [6, 9], dim=4)
    weights = torch.randn(40, 4)

    def reference():
        return sum(embedding(table) for embedding, table in zip(layer.embeddings, layer.id_tables()))

    def grads(out):
        layer.zero_grad()
        (out * weights[:len(out)]).sum().backward()
        return [embedding.weight.grad.clone() for embedding in layer.embeddings]

    assert torch.allclose(layer(), reference(), atol=1e-6)
    for got, want in zip(grads(layer()), grads(reference())):
        assert torch.allclose(got, want, atol=1e-5)
    assert torch.equal(layer()[3], layer.embeddings[0](ids[0][3:4])[0])  # no category: brand only
    # added onto another table (the adapted features): its sum, and the gradient reaches both
    onto = torch.randn(40, 4, requires_grad=True)
    assert torch.allclose(layer(onto=onto), onto + reference(), atol=1e-6)
    for got, want in zip(grads(layer(onto=onto)), grads(reference())):
        assert torch.allclose(got, want, atol=1e-5)
    assert torch.equal(onto.grad, weights)
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    state["ids1"] = torch.randint(0, 9, (40, 5))
    layer.load_state_dict(state)  # copied into the same buffers
    assert torch.allclose(layer(), reference(), atol=1e-6)
    layer.append([torch.tensor([[2]]), torch.tensor([[1, 3]])])
    assert layer().shape == (41, 4) and torch.allclose(layer(), reference(), atol=1e-6)
    layer.double()
    assert layer().dtype == torch.float64 and torch.allclose(layer(), reference(), atol=1e-6)


def anisotropic_features(n_per_category=60, n_categories=5, dim=24, seed=0):
    """Items whose category shows in many small directions, under a few dominant directions
    along which items differ at random (as frozen language-model vectors share a few directions
    that carry most of the variance and little meaning)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_categories, dim, generator=g)
    category = torch.arange(n_categories).repeat_interleave(n_per_category)
    dominant = torch.randn(4, dim, generator=g)
    x = (centres[category] + 0.5 * torch.randn(len(category), dim, generator=g)
         + 40 * torch.randn(len(category), 4, generator=g) @ dominant + 5.0)
    return x, category


def test_feature_whitening_gives_unit_covariance_and_recovers_what_a_dominant_direction_hides():
    x, category = anisotropic_features()
    whitening = FeatureWhitening.fit(x, "all")
    white = whitening(x)
    assert torch.allclose(white.mean(0), torch.zeros(x.size(1)), atol=1e-4)
    assert torch.allclose(torch.cov(white.t()), torch.eye(x.size(1)), atol=1e-3)
    top = FeatureWhitening.fit(x, 6)(x)
    assert top.shape == (len(x), 6) and torch.allclose(top, white[:, :6], atol=1e-4)
    # the same table gives the same transform, whatever the order of its rows
    again = FeatureWhitening.fit(x[torch.randperm(len(x))], "all")
    assert torch.allclose(again.projection, whitening.projection, atol=1e-5)
    raw, whitened = nearest_neighbour_agreement(x, category), nearest_neighbour_agreement(white, category)
    assert raw < 0.5 and whitened > 0.8, (raw, whitened)


def test_feature_whitening_refuses_a_size_it_cannot_give():
    x = torch.randn(50, 8)
    for dims in (0, 9, True, "64", 2.5):
        with pytest.raises(ValueError, match="feature_whitening=.*from 1 to the feature size 8"):
            FeatureWhitening.fit(x, dims)


def test_tensor_graph_matches_srgnn_messages():
    session = [5, 7, 5, 9, 7]
    item_seq = torch.tensor([session + [0, 0]])
    a_in, a_out = GatedGNNSessionEncoder.adjacency(item_seq)
    out, inn, idx = srgnn_adjacency(session)
    h_nodes = torch.randn(out.size(0), 3)
    h_pos = torch.cat([h_nodes[idx], torch.zeros(2, 3)])
    for adj_pos, adj_node in ((a_out[0], out), (a_in[0], inn)):
        expected = (adj_node / adj_node.sum(-1, keepdim=True).clamp(min=1)) @ h_nodes
        got = adj_pos @ h_pos
        assert torch.allclose(got[:len(session)], expected[idx], atol=1e-6)
        assert torch.equal(got[len(session):], torch.zeros(2, 3))


@pytest.mark.parametrize("kind", ADAPTERS)
def test_adapters_map_features_to_model_space(kind):
    adapter = FeatureAdapter(12, 8, kind)
    assert adapter(torch.randn(5, 12)).shape == (5, 8)


def _plain_mlp(adapter, table):
    """The mlp adapter as its layers read, unfolded: LayerNorm, then the two layers."""
    return adapter.proj(adapter.norm(table))


@pytest.mark.parametrize("dropout_on", ["table", "adapter"])
def test_the_mlp_adapter_folds_its_layernorm_into_the_first_layer(dropout_on):
    """The mlp's LayerNorm scale and shift folded into its first layer, the frozen table's
    normalisation computed without a gradient (``table``) or once and kept (``adapter``): the
    same outputs and gradients as the plain layers; the kept table follows the features (a copy
    into them, a new table)."""
    torch.manual_seed(0)
    adapter = FeatureAdapter(12, 8, "mlp", dropout_on=dropout_on)
    with torch.no_grad():  # a LayerNorm that is not the identity, so the folding is exercised
        adapter.norm.weight.copy_(torch.linspace(0.5, 2.0, 12))
        adapter.norm.bias.copy_(torch.linspace(-1.0, 1.0, 12))
    adapter.eval()
    table = torch.randn(30, 12) * 3 + 1

    def gradients(loss):
        adapter.zero_grad()
        loss.backward()
        return {name: p.grad.clone() for name, p in adapter.named_parameters()}

    assert torch.allclose(adapter(table), _plain_mlp(adapter, table), atol=1e-5)
    folded = gradients(adapter(table).square().sum())
    plain = gradients(_plain_mlp(adapter, table).square().sum())
    for name in plain:
        assert torch.allclose(folded[name], plain[name], atol=1e-4), name
    with torch.no_grad():
        table.copy_(torch.randn(30, 12))  # a checkpoint loaded into the same buffer
    assert torch.allclose(adapter(table), _plain_mlp(adapter, table), atol=1e-5)
    longer = torch.cat([table, torch.randn(2, 12)])  # items added after training
    assert torch.allclose(adapter(longer), _plain_mlp(adapter, longer), atol=1e-5)
    with torch.inference_mode():  # a table made there has no version counter: never kept
        made = torch.randn(30, 12)
    with torch.no_grad():
        assert torch.allclose(adapter(made), _plain_mlp(adapter, made), atol=1e-5)
    adapter.train()

    def plain_in_training():  # table: the table dropped, then the hidden layer; adapter: the latter
        dropped = table_dropout(table, 0.1, True) if dropout_on == "table" else table
        return _plain_mlp(adapter, dropped)

    # the same draws in the same order give the same function, values and gradients
    torch.manual_seed(1)
    out = adapter(table)
    torch.manual_seed(1)
    assert torch.allclose(out, plain_in_training(), atol=1e-5)
    torch.manual_seed(2)
    folded = gradients(adapter(table).square().sum())
    torch.manual_seed(2)
    plain = gradients(plain_in_training().square().sum())
    for name in plain:
        assert torch.allclose(folded[name], plain[name], atol=1e-4), name
    if dropout_on == "adapter":
        kept = adapter.normalised(table)
        assert adapter.normalised(table) is kept  # computed once
    # the dropout acts in training: two calls differ
    assert not torch.equal(adapter(table), adapter(table))
    # a table that needs a gradient gets one, through the normalisation
    wanting = table.clone().requires_grad_()
    adapter.eval()
    adapter(wanting).sum().backward()
    reference = table.clone().requires_grad_()
    _plain_mlp(adapter, reference).sum().backward()
    assert torch.allclose(wanting.grad, reference.grad, atol=1e-5)
    with pytest.raises(ValueError, match="feature_dropout_on='x'"):
        FeatureAdapter(4, 4, "mlp", dropout_on="x")


def test_the_dropped_tables_scale_goes_into_layernorms_eps():
    """Rows whose variance is near LayerNorm's eps: the unscaled dropped table normalised with
    ``eps (1 - p)^2`` is the scaled one normalised with ``eps``, so the folding holds there too."""
    adapter = FeatureAdapter(12, 8, "mlp", dropout=0.5).train()
    table = torch.randn(30, 12) * 3e-3
    torch.manual_seed(3)
    out = adapter(table)
    torch.manual_seed(3)
    assert torch.allclose(out, _plain_mlp(adapter, table_dropout(table, 0.5, True)), atol=1e-5)


@pytest.mark.parametrize("kind", ADAPTERS)
def test_adapter_dropout_on_the_adapter_drops_outputs_not_the_table(kind):
    torch.manual_seed(0)
    adapter = FeatureAdapter(12, 8, kind, dropout=0.5, dropout_on="adapter").train()
    out = adapter(torch.randn(40, 12))
    assert out.shape == (40, 8)
    if kind != "mlp":  # dropped output entries are exactly 0
        assert (out == 0).float().mean() > 0.3
    else:  # the hidden layer's (about half of them at p = 0.5)
        hidden = adapter.proj[:3](torch.ones(400, 12))
        assert 0.45 < (hidden == 0).float().mean() < 0.55
        assert torch.equal(adapter.eval().proj[:3](torch.ones(400, 12)), adapter.proj[:2](torch.ones(400, 12)))


@pytest.mark.parametrize("kind", FUSIONS)
def test_fusions_keep_shape(kind):
    assert Fusion(8, kind)(torch.randn(5, 8), torch.randn(5, 8)).shape == (5, 8)


def test_residual_fusion_starts_as_the_id_model_and_learns_to_use_features():
    fusion = Fusion(8)  # the default, as its docstring says
    assert fusion.kind == "residual"
    ids, feats = torch.randn(5, 8), torch.randn(5, 8)
    assert torch.equal(fusion(ids, feats), ids)  # at initialisation: exactly the ID embedding
    loss = (fusion(ids, feats) - (ids + feats)).pow(2).sum()
    loss.backward()
    assert fusion.scale.grad.abs().sum() > 0  # the features get a way in


def test_gate_fusion_stays_between_its_inputs():
    torch.manual_seed(0)
    fusion = Fusion(8, "gate")
    ids, feats = torch.zeros(50, 8), torch.ones(50, 8)
    out = fusion(ids, feats)  # g * 0 + (1 - g) * 1 with g in (0, 1)
    assert (out > 0).all() and (out < 1).all()


def test_unknown_choices_are_refused():
    with pytest.raises(ValueError, match="adapter='x'"):
        FeatureAdapter(4, 4, "x")
    with pytest.raises(ValueError, match="fusion='x'"):
        Fusion(4, "x")


def test_encoders_read_only_the_real_prefix():
    from recbole_tpad.model.layers import SASRecSessionEncoder, gather_last

    torch.manual_seed(0)
    encoders = (GRUSessionEncoder(6, dropout=0.0), GatedGNNSessionEncoder(6, dropout=0.0),
                SASRecSessionEncoder(6, 4, n_layers=2, n_heads=2, inner_size=6, dropout=0.0))
    for encoder in encoders:
        encoder.eval()
        seq = torch.tensor([[3, 4, 0, 0]])
        emb = torch.randn(1, 4, 6)
        other = emb.clone()
        other[:, 2:] = torch.randn(1, 2, 6)  # padding positions hold anything
        length = torch.tensor([2])

        def session(x):  # causal encoders give a vector per position: the session is the last
            out = encoder(x, seq, length)
            return gather_last(out, length) if encoder.causal else out

        assert torch.allclose(session(emb), session(other), atol=1e-6)
        if encoder.causal:  # position 0 never sees position 1
            changed = emb.clone()
            changed[:, 1] = torch.randn(1, 6)
            assert torch.allclose(encoder(emb, seq, length)[:, 0], encoder(changed, seq, length)[:, 0],
                                  atol=1e-6)
