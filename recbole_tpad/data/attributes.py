"""Categorical item attributes (``item_attributes``: brand, sub-categories) as id tables aligned to
RecBole's internal item ids.

Anonymous brand and category ids are categories, not words: they enter TPAD's item encoder as
learned embeddings instead of through a prompt, so an item never seen in training (a cold item,
or one added after training) still has its brand's and categories' vectors, which the warm items
that share them trained. Read from the dataset's ``.item`` atomic file once, like the feature
table (:class:`recbole_tpad.data.dataset.TPADDataset`).
"""

from dataclasses import dataclass
from pathlib import Path

import torch

from dataset_tools.atomic import read_atomic

#: atomic field types an attribute can have: one category, or a list of them
CATEGORICAL_TYPES = ("token", "token_seq")


def id_rows(token_lists, vocab, width):
    """``LongTensor [len(token_lists), width]``: each list's tokens as vocabulary ids, left-aligned,
    0-padded; tokens the vocabulary lacks are dropped, lists longer than ``width`` cut."""
    rows = torch.zeros(len(token_lists), width, dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        ids = [vocab[t] for t in tokens if t in vocab][:width]
        rows[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
    return rows


class ItemAttributeError(ValueError):
    """An ``item_attributes`` setting the dataset's ``.item`` file cannot satisfy."""


@dataclass
class ItemAttributes:
    """Per field: ``ids[field]``, ``LongTensor [n_items, width]`` (0 = none / padding, row 0 is the
    padding item), and ``vocab[field]``, token -> id (1..), in sorted token order so the ids do
    not depend on the file's row order."""

    ids: dict
    vocab: dict

    @property
    def fields(self):
        return tuple(self.ids)

    def sizes(self):
        """``{field: number of ids}`` (the embedding table sizes, padding included)."""
        return {field: len(tokens) + 1 for field, tokens in self.vocab.items()}

    def encode(self, records):
        """The id rows of items given as ``{field: cell}`` records (items added after training):
        a token the training catalogue never had gets 0, as an empty cell does; a list longer
        than the table's width keeps its first ``width`` tokens."""
        return {field: id_rows([str(record.get(field, "")).split() for record in records],
                               self.vocab[field], table.size(1))
                for field, table in self.ids.items()}


def load_item_attributes(dataset_dir, dataset, item_tokens, fields):
    """The ``fields`` of ``<dataset>.item`` as :class:`ItemAttributes` aligned to ``item_tokens``
    (``dataset.field2id_token[item_field]``: token of internal id ``k`` at ``k``, ``[PAD]`` at 0).
    An item without a row, or with an empty cell, has no attribute (all zeros). Refuses, naming
    the file and the field: a missing ``.item`` file, a field it does not have, a field that is
    not categorical."""
    path = Path(dataset_dir) / f"{dataset}.item"
    if not path.is_file():
        raise ItemAttributeError(f"item_attributes={list(fields)} reads {path}, which does not "
                                 "exist: add the .item file or set item_attributes: ~")
    try:
        header, rows = read_atomic(path)
    except ValueError as error:
        raise ItemAttributeError(str(error)) from None
    types = dict(header)
    names = [name for name, _ in header]
    for field in fields:
        if field not in types:
            raise ItemAttributeError(f"{path}: item_attributes names {field!r}, which this file "
                                     f"does not have (its fields: {names[1:]})")
        if types[field] not in CATEGORICAL_TYPES:
            raise ItemAttributeError(
                f"{path}: item attribute {field!r} has type {types[field]}; item_attributes "
                f"takes categorical fields ({' or '.join(CATEGORICAL_TYPES)}): text belongs in "
                "the feature file, numbers in a feature of their own")
    cells = {row[0]: row for row in rows if row and row[0]}
    ids, vocab = {}, {}
    for field in fields:
        column = names.index(field)
        # row k: the tokens of internal item k (none for the padding item or an item without a row)
        token_lists = [cells[token][column].split() if k and token in cells else []
                       for k, token in enumerate(item_tokens)]
        vocab[field] = {t: i + 1 for i, t in enumerate(sorted({t for ts in token_lists for t in ts}))}
        ids[field] = id_rows(token_lists, vocab[field], max([len(ts) for ts in token_lists] + [1]))
    return ItemAttributes(ids, vocab)
