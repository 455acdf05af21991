"""Benchmark of the offline MLLM backbone: item-encoding throughput, cold and cached, with and
without images, the speed-up of cached lower layers for LoRA training, peak memory, and two
sanity checks (a factual answer; items sharing a sport are closer than items that do not).

    python -m recbole_tpad.benchmark.encoding_speed --dataset=amazon-sports --image-dataset=demo

Writes ``results/mllm_encoding.md`` and ``.json``. Not a test: figures depend on the machine.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from recbole_tpad.runtime import machine_description, peak_rss_mb

#: Sports that name an item's category in amazon-sports' keyword text (it has no category field).
SPORT_GROUPS = {
    "golf": {"golf"}, "fishing": {"fishing", "fly", "lure", "reel"},
    "cycling": {"bike", "bicycle", "cycling"}, "camping": {"camping", "tent"},
    "hunting": {"hunting", "rifle", "scope", "gun"}, "yoga": {"yoga"},
    "swimming": {"swim", "swimming"}, "tennis": {"tennis"}, "boxing": {"boxing"},
    "basketball": {"basketball"}, "football": {"football"}, "baseball": {"baseball"},
    "skateboard": {"skateboard", "skate"}, "climbing": {"climbing"},
}


def sport_of(text):
    """The one sport group an item's words name, else ``None`` (none or several)."""
    words = set(text.replace("|", " ").replace(":", " ").split())
    found = [g for g, keys in SPORT_GROUPS.items() if words & keys]
    return found[0] if len(found) == 1 else None


def category_separation(vectors, labels, seed=0, pairs=200000):
    """Mean centred cosine similarity of random same-label pairs and different-label pairs."""
    rng = np.random.default_rng(seed)
    keep = np.array([label is not None for label in labels])
    x = vectors[keep] - vectors[keep].mean(0)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-9
    y = np.array([label for label in labels if label is not None])
    a, b = rng.integers(0, len(x), pairs), rng.integers(0, len(x), pairs)
    a, b = a[a != b], b[a != b]
    sims = (x[a] * x[b]).sum(1)
    same = y[a] == y[b]
    return {"items_with_a_sport": int(keep.sum()), "groups": int(len(set(y))),
            "same_sport_cosine": float(sims[same].mean()),
            "different_sport_cosine": float(sims[~same].mean()),
            "pairs_same": int(same.sum()), "pairs_different": int((~same).sum())}


def strip_sport_words(item):
    from recbole_tpad.mllm.prompts import ItemContent

    words = [w for w in item.text.split() if not any(w in keys for keys in SPORT_GROUPS.values())]
    return ItemContent(item.item_id, " ".join(words), item.image)


def timed_encode(backbone, items, cache, batch_size, label):
    from recbole_tpad.mllm.item_encoding import encode_items

    tic = time.perf_counter()
    out = encode_items(backbone, items, cache_dir=cache, batch_size=batch_size, description=label)
    return out, time.perf_counter() - tic


def lower_layer_speedup(backbone, items, lora_top, steps=3, batch=16):
    """Seconds per LoRA training step (forward + backward) with the full stack vs with the
    frozen lower layers' states computed once."""
    from recbole_tpad.mllm.backbone import LoraSettings

    n_layers = len(backbone.decoder()[0].layers)
    upto = n_layers - lora_top
    backbone.add_adapters(LoraSettings(lora_layers=list(range(upto, n_layers)), init_weights=False))
    batch_items = items[:batch]
    params = backbone.adapter_parameters("transfer")

    def step(fn):
        tic = time.perf_counter()
        for _ in range(steps):
            for p in params:
                p.grad = None
            fn().pow(2).mean().backward()
        return (time.perf_counter() - tic) / steps

    full = step(lambda: backbone.encode(batch_items, adapter="transfer"))
    tic = time.perf_counter()
    with torch.no_grad():
        lower = backbone.lower_states(batch_items, upto=upto)
    precompute = time.perf_counter() - tic
    cached = step(lambda: backbone.encode_from_lower(lower, upto, adapter="transfer"))
    return {"layers": n_layers, "lora_layers": lora_top, "batch": batch,
            "full_step_s": full, "cached_step_s": cached, "speedup": full / cached,
            "lower_states_once_s_per_batch": precompute}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="amazon-sports")
    parser.add_argument("--image-dataset", default="demo")
    parser.add_argument("--limit", type=int, default=None, help="items of --dataset (default all)")
    parser.add_argument("--image-limit", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lora-top", type=int, default=2)
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)

    import recbole_tpad  # noqa: F401
    from recbole_tpad.data.features import library_versions
    from recbole_tpad.data.locate import ensure_dataset
    from recbole_tpad.mllm.load import load_backbone
    from recbole_tpad.mllm.prompts import dataset_items

    torch.set_num_threads(args.threads)
    report = {"command": " ".join(["python -m recbole_tpad.benchmark.encoding_speed", *sys.argv[1:]]),
              "threads": args.threads, "machine": machine_description("cpu"),
              "versions": library_versions()}
    tic = time.perf_counter()
    backbone = load_backbone("offline")
    report["load_seconds"] = time.perf_counter() - tic
    report["factual_answer"] = backbone.answer("What is the capital of France?")
    print("answer:", report["factual_answer"])

    data_dir = ensure_dataset(args.dataset, "dataset")
    items = dataset_items(data_dir, args.dataset, images=False)[: args.limit]
    with tempfile.TemporaryDirectory() as cache:
        cold, cold_s = timed_encode(backbone, items, cache, args.batch_size, "cold")
        warm, warm_s = timed_encode(backbone, items, cache, args.batch_size, "cached")
    report["text"] = {"dataset": args.dataset, "items": len(items), "cold_seconds": cold_s,
                      "cold_items_per_second": len(items) / cold_s, "cached_seconds": warm_s,
                      "cached_items_per_second": len(items) / warm_s, "encoded_when_cached": warm.encoded}
    labels = [sport_of(item.text) for item in items]
    report["separation_with_sport_words"] = category_separation(cold.vectors, labels)
    stripped = [strip_sport_words(items[i]) for i, label in enumerate(labels) if label is not None][:3000]
    stripped_out, _ = timed_encode(backbone, stripped, None, args.batch_size, "sport words removed")
    report["separation_without_sport_words"] = category_separation(
        stripped_out.vectors, [sport_of(items[i].text) for i, label in enumerate(labels) if label][:3000])
    print(json.dumps(report["text"], indent=1))

    image_dir = ensure_dataset(args.image_dataset, "dataset")
    with_images = dataset_items(image_dir, args.image_dataset)[: args.image_limit]
    without = dataset_items(image_dir, args.image_dataset, images=False)[: args.image_limit]
    _, img_s = timed_encode(backbone, with_images, None, args.batch_size, "with images")
    _, txt_s = timed_encode(backbone, without, None, args.batch_size, "same items, no images")
    report["images"] = {"dataset": args.image_dataset, "items": len(with_images),
                        "with_images_items_per_second": len(with_images) / img_s,
                        "text_only_items_per_second": len(without) / txt_s}
    report["lower_layer_cache"] = lower_layer_speedup(backbone, items, args.lora_top)
    report["peak_rss_mb"] = peak_rss_mb()
    write_report(report, Path(args.out))
    return 0


def write_report(report, out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "mllm_encoding.json").write_text(json.dumps(report, indent=1, default=str))
    t, i, l = report["text"], report["images"], report["lower_layer_cache"]
    s1, s2 = report["separation_with_sport_words"], report["separation_without_sport_words"]
    lines = [
        "# Offline MLLM backbone: encoding cost and sanity checks", "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']}, torch threads {report['threads']}; peak RSS {report['peak_rss_mb']:.0f} MB; "
        f"backbone load {report['load_seconds']:.1f} s.", "",
        f"SmolLM2 answers 'What is the capital of France?' with: **{report['factual_answer'].strip()}**", "",
        "| what | items | seconds | items/s |", "|---|---|---|---|",
        f"| {t['dataset']} text, cold | {t['items']} | {t['cold_seconds']:.1f} | {t['cold_items_per_second']:.1f} |",
        f"| {t['dataset']} text, cached | {t['items']} | {t['cached_seconds']:.2f} | {t['cached_items_per_second']:.0f} |",
        f"| {i['dataset']} text + image | {i['items']} | {i['items'] / i['with_images_items_per_second']:.1f} | {i['with_images_items_per_second']:.1f} |",
        f"| {i['dataset']} same items, text only | {i['items']} | {i['items'] / i['text_only_items_per_second']:.1f} | {i['text_only_items_per_second']:.1f} |",
        "", f"LoRA on the top {l['lora_layers']} of {l['layers']} layers, batch {l['batch']}: a training "
        f"step (forward + backward) takes {l['full_step_s']:.2f} s through the whole stack and "
        f"{l['cached_step_s']:.3f} s from cached layer-{l['layers'] - l['lora_layers']} states: "
        f"**{l['speedup']:.1f}x** (the states cost {l['lower_states_once_s_per_batch']:.2f} s per batch, once).", "",
        "Items of the same sport are closer (mean centred cosine of last-token states, random pairs):", "",
        "| text | items | same sport | different sport |", "|---|---|---|---|",
        f"| keywords as they are | {s1['items_with_a_sport']} | {s1['same_sport_cosine']:.3f} | {s1['different_sport_cosine']:.3f} |",
        f"| the sport's own words removed | {s2['items_with_a_sport']} | {s2['same_sport_cosine']:.3f} | {s2['different_sport_cosine']:.3f} |",
    ]
    (out / "mllm_encoding.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
