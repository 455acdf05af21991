"""Encode a whole catalogue with a backbone: batched by length, cached, resumable.

The cache is keyed by (backbone fingerprint, adapter weights, prompt, pooling) for a folder and by each
item's content checksum (text + image bytes) within it, so an unchanged item is never encoded
twice and a changed item, backbone, adapter or prompt is never served a stale vector. Vectors
are written in shards as they are made (temporary file + rename): an interrupted run keeps
every finished shard and the next run encodes only the rest.

:func:`encode_items_on_ray` spreads the items still to encode over Ray workers (processes on
this machine, or the nodes of a cluster), each loading the backbone from its name and writing
its shards into the same cache folder; the driver then reads every vector from the cache.
"""

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from recbole_tpad.mllm.prompts import read_length
from recbole_tpad.tune.cluster import connect_to_cluster


@dataclass
class EncodedItems:
    """Vectors in the order the items were given, and what it took to get them."""

    vectors: np.ndarray
    encoded: int
    cached: int
    seconds: float
    cache_folder: Path = None

    @property
    def items_per_second(self):
        return self.encoded / self.seconds if self.encoded and self.seconds else None


def context_key(backbone, adapter, prompt, pooling="last"):
    """The cache folder's name: what every vector in it depends on besides the item (the
    pooling only when it is not ``last``, so caches written before it existed stay valid)."""
    template = backbone.template(prompt).template
    parts = [backbone.fingerprint(), backbone.adapter_fingerprint(adapter), template]
    raw = json.dumps(parts if pooling == "last" else parts + [pooling])
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def _read_shards(folder):
    known = {}
    for shard in sorted(folder.glob("shard-*.npz")):
        with np.load(shard) as data:
            for key, vector in zip(data["keys"].tolist(), data["vectors"]):
                known[key] = vector
    return known


def _write_shard(folder, keys, vectors):
    # the writer's pid in the name: Ray workers write shards into one folder at once
    index = len(list(folder.glob("shard-*.npz")))
    final = folder / f"shard-{index:05d}-{os.getpid()}.npz"
    partial = folder / f".shard-{index:05d}.{os.getpid()}.tmp.npz"
    np.savez(partial, keys=np.array(keys), vectors=np.stack(vectors).astype(np.float32))
    os.replace(partial, final)


def encode_items(backbone, items, prompt=None, adapter=None, cache_dir=None, batch_size=32,
                 shard_size=2048, threads=None, progress=True, description="encoding items",
                 pooling="last"):
    """Vectors ``[len(items), hidden]`` (float32) for ``items`` (:class:`ItemContent`).

    Args:
        cache_dir: keep vectors here (one sub-folder per backbone/adapter/prompt); ``None``
            encodes everything and keeps nothing.
        batch_size: items per forward pass; items are sorted by length so a batch pads little.
        shard_size: vectors per cache shard (what an interruption can lose at most).
        threads: torch threads while encoding (restored afterwards).
        pooling: ``last`` or ``mean`` (:data:`~recbole_tpad.mllm.backbone.POOLINGS`).
    """
    started = time.perf_counter()
    keys = [item.content_key() for item in items]
    folder, known = None, {}
    if cache_dir is not None:
        folder = Path(cache_dir) / context_key(backbone, adapter, prompt, pooling)
        folder.mkdir(parents=True, exist_ok=True)
        meta = folder / "context.json"
        if not meta.is_file():
            meta.write_text(json.dumps({"backbone": backbone.identity(), "adapter": adapter,
                                        "adapter_sha": backbone.adapter_fingerprint(adapter),
                                        "prompt": backbone.template(prompt).template,
                                        "pooling": pooling}, indent=1))
        known = _read_shards(folder)
    todo, seen = [], set()
    for item, key in zip(items, keys):
        if key not in known and key not in seen:
            seen.add(key)
            todo.append((item, key))
    lengths = backbone.read_lengths([item for item, _ in todo], prompt)
    todo = [todo[k] for k in sorted(range(len(todo)), key=lengths.__getitem__)]
    cached = len(items) - len(todo)

    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    pending_keys, pending_vectors = [], []
    try:
        with torch.inference_mode(), tqdm(total=len(todo), desc=description, unit="item",
                                          disable=not progress) as bar:
            for start in range(0, len(todo), batch_size):
                chunk = todo[start:start + batch_size]
                vectors = backbone.encode([item for item, _ in chunk], prompt, adapter, pooling)
                for (_, key), vector in zip(chunk, vectors.float().cpu().numpy()):
                    known[key] = vector
                    pending_keys.append(key)
                    pending_vectors.append(vector)
                if folder is not None and len(pending_keys) >= shard_size:
                    _write_shard(folder, pending_keys, pending_vectors)
                    pending_keys, pending_vectors = [], []
                bar.update(len(chunk))
    finally:
        if folder is not None and pending_keys:
            _write_shard(folder, pending_keys, pending_vectors)
        torch.set_num_threads(previous_threads)
    vectors = np.stack([known[key] for key in keys]).astype(np.float32) if items else \
        np.zeros((0, backbone.hidden_size), np.float32)
    return EncodedItems(vectors, len(todo), cached, time.perf_counter() - started, folder)


def _encode_shard(backbone_spec, items, prompt, cache_dir, batch_size, threads):
    """One Ray task: load the backbone by name, encode ``items`` into the shared cache."""
    import recbole_tpad  # noqa: F401  (the worker's shims, as in the driver)
    from recbole_tpad.mllm.load import load_backbone

    backbone = load_backbone(backbone_spec)
    result = encode_items(backbone, items, prompt, cache_dir=cache_dir, batch_size=batch_size,
                          threads=threads, progress=False)
    return result.encoded, result.seconds


def encode_items_on_ray(backbone_spec, items, prompt=None, cache_dir="saved/item-encoding",
                        workers=2, batch_size=32, threads_per_worker=1, ray_address=None):
    """:func:`encode_items` over ``workers`` Ray tasks (no adapters: the frozen backbone's
    vectors, what the lower-layer pass and the plain encoders need). The items not in the cache
    are dealt round-robin by length, so every task gets a like share of long and short items;
    each task loads ``backbone_spec`` (:func:`recbole_tpad.mllm.load.load_backbone`) once.
    Returns :class:`EncodedItems` with the whole wall time (Ray start and model loads
    included)."""
    import ray

    from recbole_tpad.mllm.load import load_backbone

    started = time.perf_counter()
    backbone = load_backbone(backbone_spec)  # for the cache key and the final read
    folder = Path(cache_dir) / context_key(backbone, None, prompt)
    folder.mkdir(parents=True, exist_ok=True)
    known = _read_shards(folder)
    todo = sorted({item.content_key(): item for item in items
                   if item.content_key() not in known}.values(), key=read_length)
    if todo:
        if not ray.is_initialized():
            if ray_address:
                connect_to_cluster(ray_address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(include_dashboard=False, log_to_driver=False,
                         num_cpus=max(workers * threads_per_worker, 1))
        task = ray.remote(num_cpus=threads_per_worker)(_encode_shard)
        shares = [todo[w::workers] for w in range(workers)]
        ray.get([task.remote(backbone_spec, share, prompt, str(Path(cache_dir).resolve()),
                             batch_size, threads_per_worker) for share in shares if share])
    # every vector now comes from the cache, as a single-process run's would
    vectors = encode_items(backbone, items, prompt, cache_dir=cache_dir, progress=False).vectors
    return EncodedItems(vectors, len(todo), len(items) - len(todo),
                        time.perf_counter() - started, folder)
