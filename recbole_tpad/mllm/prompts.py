"""What an item is to the MLLM (its text and image) and the prompt it is read in.

A prompt template holds ``{text}`` (the item's text) and ``<image>`` (where the image's tokens
go). TPAD reads an item's representation from the last token's hidden state, so the encode
prompt ends by asking for a summary: the last token has to carry the whole item.
"""

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

IMAGE_MARK = "<image>"
#: Encode prompt: the last token's hidden state is the item vector.
ENCODE_PROMPT = "Item: <image>{text}\nThe item in one word:"
#: Generation prompt: what stage 1 continues with the held-out text.
GENERATE_PROMPT = "Item: <image>{text}\nMore about it:"
#: Text used when an item has none (its image, if any, still speaks for it).
NO_TEXT = "no description"


@dataclass(frozen=True)
class ItemContent:
    """One item as the MLLM sees it: text (may be empty) and an image file (may be ``None``)."""

    item_id: str
    text: str = ""
    image: str = None

    def has_image(self):
        return bool(self.image) and Path(self.image).is_file()

    def content_key(self):
        """A checksum of what the model reads: the text and the image file's bytes."""
        digest = hashlib.sha256(self.text.encode("utf-8"))
        if self.has_image():
            digest.update(b"\0image\0" + Path(self.image).read_bytes())
        return digest.hexdigest()[:32]


def length_batches(lengths, size):
    """Index batches of at most ``size``, shortest first (a stable order): a batch is padded to
    its longest member, so batching similar lengths spends little on padding (item texts vary
    several-fold). Callers put each result back at its index."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[start:start + size] for start in range(0, len(order), size)]


def read_length(item):
    """About how long ``item`` is to read, in characters, an image counting as 200: the sort
    key of :func:`length_batches` and of the catalogue encoder."""
    return len(item.text) + (200 if item.has_image() else 0)


class PromptTemplate:
    """Renders an item into (text before the image, text after it)."""

    def __init__(self, template=ENCODE_PROMPT):
        if "{text}" not in template:
            raise ValueError(f"prompt template {template!r} has no {{text}} field for the item text")
        if template.count(IMAGE_MARK) > 1:
            raise ValueError(f"prompt template {template!r} has more than one {IMAGE_MARK}")
        self.template = template

    def split(self, item):
        """``(before, after)``: the image tokens go between them (nothing if no image)."""
        text = " ".join(item.text.split()) or NO_TEXT
        rendered = self.template.replace("{text}", text)
        if IMAGE_MARK not in rendered:
            return rendered, ""
        before, after = rendered.split(IMAGE_MARK)
        return before, after

    def __repr__(self):
        return f"PromptTemplate({self.template!r})"


def dataset_items(dataset_dir, name, text_fields=None, images=True):
    """The items of ``<name>.item`` in file order, as the MLLM reads them.

    Text is the item's text fields (``title``, ``keywords``, ``category``, ...); the image is
    the ``image`` field's file, relative to the dataset folder (``None`` when absent or when
    ``images`` is off).
    """
    from dataset_tools.atomic import IMAGE_FIELD, item_text, read_item_table

    from dataset_tools.atomic import image_problem

    dataset_dir = Path(dataset_dir)
    items, unusable = [], []
    for item_id, record in read_item_table(dataset_dir, name).items():
        image = record.get(IMAGE_FIELD, "").strip() if images else ""
        path = str(dataset_dir / image) if image else None
        problem = image_problem(path) if path else None
        if problem:  # missing or unreadable: the item is read as text only
            unusable.append((item_id, image, problem))
            path = None
        items.append(ItemContent(item_id, item_text(record, text_fields), path))
    if unusable:
        logger.warning("%d item(s) of %s have an image that cannot be used; they are read as text "
                       "only (e.g. %s)", len(unusable), name,
                       "; ".join(f"{i}: {f} {p}" for i, f, p in unusable[:3]))
    return items
