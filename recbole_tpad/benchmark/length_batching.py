"""Benchmark: the pretrainer's frozen lower-layer pass in file order against length-sorted
batches (:func:`recbole_tpad.mllm.prompts.length_batches`), sorted by the item text's characters
or by the backbone's token count (what the pretrainer does), side by side, interleaved rounds.

    python -m recbole_tpad.benchmark.length_batching --dataset=amazon-sports --items=512

A batch is padded to its longest item, and item texts vary several-fold, so file-order batches
spend much of the pass on padding. Writes ``results/length-batching-<dataset>.md`` and ``.json``.
Not a test: figures depend on the machine.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch


def padded_tokens(lengths, batches):
    """Token positions a pass computes: each batch as long as its longest item."""
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="amazon-sports")
    parser.add_argument("--items", type=int, default=512, help="the first N items of the catalogue")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lora-top", type=int, default=2, help="the pass runs the layers below these")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)

    import recbole_tpad  # noqa: F401
    from recbole_tpad.data.features import library_versions
    from recbole_tpad.data.locate import ensure_dataset
    from recbole_tpad.mllm.load import load_backbone
    from recbole_tpad.mllm.prompts import ENCODE_PROMPT, dataset_items, length_batches, read_length
    from recbole_tpad.runtime import machine_description

    torch.set_num_threads(args.threads)
    backbone = load_backbone("offline")
    items = dataset_items(ensure_dataset(args.dataset, "dataset"), args.dataset)[: args.items]
    upto = backbone.n_layers - args.lora_top
    orders = {"file order": [list(range(s, min(s + args.batch_size, len(items))))
                             for s in range(0, len(items), args.batch_size)],
              "sorted by characters": length_batches([read_length(item) for item in items], args.batch_size),
              "sorted by tokens (the pretrainer)": length_batches(backbone.read_lengths(items, ENCODE_PROMPT),
                                                                  args.batch_size)}

    def run(batches):
        tic = time.perf_counter()
        states = [None] * len(items)
        with torch.no_grad():
            for batch in batches:
                for i, s in zip(batch, backbone.lower_states([items[i] for i in batch], ENCODE_PROMPT, upto)):
                    states[i] = s
        return time.perf_counter() - tic, states

    seconds = {name: [] for name in orders}
    reference = None
    for _ in range(args.rounds):
        for name, batches in orders.items():
            took, states = run(batches)
            seconds[name].append(took)
            if reference is None:
                reference = states
            else:  # the same states whatever the batching
                assert all(torch.allclose(a, b, atol=1e-3) for a, b in zip(reference, states))
    lengths = [s.shape[0] for s in reference]
    report = {"command": " ".join(["python -m recbole_tpad.benchmark.length_batching", *sys.argv[1:]]),
              "dataset": args.dataset, "items": len(items), "batch_size": args.batch_size,
              "layers": f"0:{upto} of {backbone.n_layers}", "threads": args.threads, "rounds": args.rounds,
              "machine": machine_description("cpu"),
              "mean_tokens": statistics.mean(lengths), "versions": library_versions(), "orders": {}}
    for name, batches in orders.items():
        report["orders"][name] = {"seconds": seconds[name], "median_seconds": statistics.median(seconds[name]),
                                  "padded_share": 1 - sum(lengths) / padded_tokens(lengths, batches)}
    base = report["orders"]["file order"]["median_seconds"]
    lines = ["# Length-sorted batches in the pretrainer's lower-layer pass", "",
             f"Command: `{report['command']}`  ",
             f"{len(items)} items of {args.dataset} ({report['mean_tokens']:.1f} tokens each on average), "
             f"layers {report['layers']}, batches of {args.batch_size}, {args.threads} torch threads, "
             f"{args.rounds} interleaved rounds on {report['machine']}.", "",
             "| batches | median seconds | items/s | padding share of the work | x file order |",
             "|---|---|---|---|---|"]
    for name, row in report["orders"].items():
        lines.append(f"| {name} | {row['median_seconds']:.1f} | {len(items) / row['median_seconds']:.1f} | "
                     f"{row['padded_share']:.0%} | {row['median_seconds'] / base:.2f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"length-batching-{args.dataset}.json").write_text(json.dumps(report, indent=1))
    (out / f"length-batching-{args.dataset}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
