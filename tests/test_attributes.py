"""Categorical item attributes (``item_attributes``): read from the ``.item`` file, aligned to
RecBole's item ids, refused with the file and field named when they cannot be read."""

import pytest
import torch

from dataset_tools.atomic import write_atomic
from recbole_tpad.data.attributes import ItemAttributeError, load_item_attributes

HEADER = [("item_id", "token"), ("title", "token_seq"), ("brand_id", "token"),
          ("category_ids", "token_seq"), ("price", "float")]
ROWS = [["i1", "red ball", "b2", "c1 c3", "1.5"],
        ["i2", "blue ball", "", "c2", "2.0"],
        ["i3", "green bat", "b1", "c3 c2 c1", "3.0"]]


@pytest.fixture
def folder(tmp_path):
    write_atomic(tmp_path / "toy.item", HEADER, ROWS)
    return tmp_path


def test_attributes_are_aligned_to_recboles_item_ids(folder):
    tokens = ["[PAD]", "i3", "i1", "i9", "i2"]  # RecBole's order, not the file's; i9 has no row
    attrs = load_item_attributes(folder, "toy", tokens, ["brand_id", "category_ids"])
    assert attrs.fields == ("brand_id", "category_ids")
    assert attrs.vocab["brand_id"] == {"b1": 1, "b2": 2}  # sorted tokens: not the row order
    assert attrs.vocab["category_ids"] == {"c1": 1, "c2": 2, "c3": 3}
    assert attrs.ids["brand_id"].tolist() == [[0], [1], [2], [0], [0]]  # i2: empty cell
    assert attrs.ids["category_ids"].tolist() == [[0, 0, 0], [3, 2, 1], [1, 3, 0], [0, 0, 0], [2, 0, 0]]
    assert attrs.sizes() == {"brand_id": 3, "category_ids": 4}
    # items added after training: known tokens keep their ids, unknown ones are none
    new = attrs.encode([{"brand_id": "b2", "category_ids": "c9 c2"}, {"brand_id": "b7"}])
    assert new["brand_id"].tolist() == [[2], [0]]
    assert new["category_ids"].tolist() == [[2, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize("fields, message", [
    (["brand"], r"toy.item: item_attributes names 'brand', which this file does not have \(its fields: \['title', 'brand_id'"),
    (["price"], r"toy.item: item attribute 'price' has type float; item_attributes takes categorical fields"),
])
def test_unusable_attributes_are_refused_with_the_file_and_field(folder, fields, message):
    with pytest.raises(ItemAttributeError, match=message):
        load_item_attributes(folder, "toy", ["[PAD]", "i1"], fields)


def test_a_dataset_without_an_item_file_is_refused(tmp_path):
    with pytest.raises(ItemAttributeError, match=r"toy.item, which does not exist: add the .item file or set item_attributes: ~"):
        load_item_attributes(tmp_path, "toy", ["[PAD]", "i1"], ["brand_id"])


def test_an_attribute_embedding_is_the_mean_of_an_items_categories():
    from recbole_tpad.model.layers import AttributeEmbedding

    layer = AttributeEmbedding([torch.tensor([[0, 0], [1, 2], [2, 0]])], [3], dim=4)
    weight = layer.embeddings[0].weight
    out = layer()
    assert torch.allclose(out[0], torch.zeros(4))  # no attribute: zero
    assert torch.allclose(out[1], (weight[1] + weight[2]) / 2) and torch.allclose(out[2], weight[2])
    layer.append([torch.tensor([[2, 1, 1]])])  # longer rows are cut to the table's width
    assert layer.ids0.tolist()[-1] == [2, 1]
