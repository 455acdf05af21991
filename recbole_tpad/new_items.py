"""Items added after training: read them, encode them as the checkpoint's feature table was
encoded, and cache the vectors.

A trained TPAD (or ContentKNN) scores an item from its row of the feature table. A new item has
no row; this module makes one with the producer named in the feature file's metadata: the
MiniLM text encoder (same encoder, fields, length and pooling), or the TPAD pretrainer (the same
frozen backbone, adapters, projector and heads, restored from the pretraining run's work folder,
which the metadata names). :class:`recbole_tpad.recommend.Recommender` then appends the rows
(``Recommender.add_items``), so new items can be recommended and can appear in sessions.

The vectors are cached under ``<checkpoint_dir>/new-items/`` by a checksum of the producer and
of the items' content (text and image bytes): changed content is re-encoded, never served stale.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataset_tools.atomic import IMAGE_FIELD, image_problem, item_text, read_atomic

logger = logging.getLogger(__name__)


class NewItemsError(ValueError):
    """A new-items file or request that cannot be used; the message names the line and the fix."""


@dataclass
class NewItem:
    item_id: str
    record: dict            # field -> value, as in the .item file
    text: str               # what a text producer reads (item_text of the record)
    image: str = None       # a usable image file (absolute), or None

    def content_key(self):
        digest = hashlib.sha256(json.dumps([self.item_id, self.text]).encode())
        if self.image:
            digest.update(Path(self.image).read_bytes())
        return digest.hexdigest()


def read_new_items(path, item_field, known_ids):
    """The items of an atomic ``.item`` file (``item_field`` first, text fields, an optional
    ``image`` path relative to the file), refusing what would corrupt the catalogue: an id the
    dataset already has, a repeated id, an item with neither text nor a usable image."""
    path = Path(path)
    if not path.is_file():
        raise NewItemsError(f"--new-items {path}: no such file (give an atomic .item file: "
                            f"{item_field}:token, then text fields such as title:token_seq)")
    try:
        fields, rows = read_atomic(path)
    except (ValueError, UnicodeDecodeError) as error:
        raise NewItemsError(f"--new-items {error}") from None
    names = [name for name, _ in fields]
    if not names or names[0] != item_field:
        raise NewItemsError(f"{path}:1: the first column must be the item id {item_field}:token "
                            f"(the dataset's item field), not {names[0] if names else 'nothing'}")
    if not rows:
        raise NewItemsError(f"{path}: holds a header but no item; add one item a line")
    known = set(known_ids)
    items, seen, collisions = [], {}, []
    for lineno, row in enumerate(rows, start=2):
        item_id = row[0].strip()
        record = dict(zip(names[1:], row[1:]))
        if not item_id:
            raise NewItemsError(f"{path}:{lineno}: empty item id")
        if item_id in seen:
            raise NewItemsError(f"{path}:{lineno}: item id {item_id!r} repeats line {seen[item_id]}")
        seen[item_id] = lineno
        if item_id in known:
            collisions.append(f"{item_id!r} (line {lineno})")
            continue
        image = record.get(IMAGE_FIELD, "").strip()
        image_path = str((path.parent / image).resolve()) if image else None
        problem = image_problem(image_path) if image_path else None
        if problem:
            logger.warning("%s:%d: image %s is %s; item %s is read as text only",
                           path, lineno, image, problem, item_id)
            image_path = None
        text = item_text({k: v for k, v in record.items() if k != IMAGE_FIELD})
        if not text and not image_path:
            raise NewItemsError(f"{path}:{lineno}: item {item_id!r} has no text and no usable image, "
                                "so there is nothing to encode; give it a title (or an image)")
        items.append(NewItem(item_id, record, text, image_path))
    if collisions:
        raise NewItemsError(
            f"{path}: {len(collisions)} id(s) are already items of the dataset: "
            f"{', '.join(collisions[:10])}. New items need new ids; an item the model knows is "
            "recommended as it is (drop those lines)")
    return items


def encode_new_items(items, feature_meta, cache_dir, backbone=None):
    """``float32 [len(items), dim]``: each new item encoded by the producer of the feature file
    whose metadata is ``feature_meta`` (cached; see the module doc). ``backbone``: a loaded
    backbone to use instead of loading the one the pretrainer recorded (tests)."""
    producer = feature_meta.get("producer") or {}
    name = producer.get("name")
    key = hashlib.sha256(json.dumps(
        [feature_meta.get("array_sha256"), producer, [i.content_key() for i in items]],
        sort_keys=True, default=str).encode()).hexdigest()[:20]
    cache = Path(cache_dir) / "new-items" / f"{key}.npy"
    if cache.is_file():
        array = np.load(cache, allow_pickle=False)
        if array.shape == (len(items), feature_meta.get("dim")):
            logger.info("new items: %d vectors from the cache %s", len(items), cache)
            return array
    if name == "text-encoder":
        from recbole_tpad.text.encoder import encode_like_producer
    elif name == "tpad-pretrainer":
        from recbole_tpad.distill.runs import encode_like_producer
    else:
        raise NewItemsError(
            f"the feature table was made by {name!r}, which this plugin cannot run again, so new "
            "items cannot get vectors of the same kind; make the features with --stage=features "
            "or --stage=pretrain to add items later")
    array = np.asarray(encode_like_producer(producer, items, backbone=backbone), dtype=np.float32)
    if array.shape != (len(items), feature_meta.get("dim")):
        raise NewItemsError(f"the producer gave vectors of shape {array.shape}, the feature table "
                            f"has dimension {feature_meta.get('dim')}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".part.npy")
    np.save(partial, array)
    partial.replace(cache)
    return array
