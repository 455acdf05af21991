"""Catalogue encoding over Ray workers against one process, side by side on one machine.

    python -m recbole_tpad.benchmark.ray_encoding --dataset=amazon-sports --limit=1000 --workers=1,2

Encodes the same items (text only, the offline backbone's frozen vectors, each run with an
empty cache) in one process with all threads, then over 1, 2, ... Ray workers with
``--threads`` split between them. Items/s counts the whole wall time, Ray's start and each
worker's model load included, which is what a user waits for. Writes
``results/ray-encoding-<D>.md`` and ``.json``.
"""

import argparse
import sys
import tempfile
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="amazon-sports")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--threads", type=int, default=2, help="threads in all (split between workers)")
    parser.add_argument("--backbone", default="offline-text")
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)
    import ray
    import torch

    import recbole_tpad  # noqa: F401
    from recbole_tpad.benchmark import write_results
    from recbole_tpad.data.locate import ensure_dataset
    from recbole_tpad.mllm.item_encoding import encode_items, encode_items_on_ray
    from recbole_tpad.mllm.load import load_backbone
    from recbole_tpad.mllm.prompts import dataset_items
    from recbole_tpad.quick_start import machine_description

    items = dataset_items(ensure_dataset(args.dataset, "dataset"), args.dataset, images=False)[: args.limit]
    rows = []
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as cache:
        tic = time.perf_counter()
        single = encode_items(load_backbone(args.backbone), items, cache_dir=f"{cache}/single",
                              progress=False, threads=args.threads)
        rows.append({"how": f"one process, {args.threads} threads", "seconds": time.perf_counter() - tic})
        for workers in [int(w) for w in args.workers.split(",")]:
            threads = max(1, args.threads // workers)
            result = encode_items_on_ray(args.backbone, items, cache_dir=f"{cache}/ray{workers}",
                                         workers=workers, threads_per_worker=threads)
            ray.shutdown()
            same = bool(abs(result.vectors - single.vectors).max() < 1e-4)
            rows.append({"how": f"Ray, {workers} worker(s) x {threads} thread(s)",
                         "seconds": result.seconds, "same_vectors": same})
    for row in rows:
        row["items_per_second"] = len(items) / row["seconds"]
    base = rows[0]["items_per_second"]
    command = "python -m recbole_tpad.benchmark.ray_encoding " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"# Catalogue encoding over Ray workers: {args.dataset}", "", f"Command: `{command}`  ",
             f"Machine: {machine_description('cpu')}; {len(items)} items, backbone {args.backbone}, "
             "empty cache each time; wall time including Ray's start and the workers' model loads.", "",
             "| run | seconds | items/s | x one process | vectors equal |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['how']} | {row['seconds']:.1f} | {row['items_per_second']:.1f} | "
                     f"{row['items_per_second'] / base:.2f} | {'yes' if row.get('same_vectors', True) else 'NO'} |")
    table = "\n".join(lines)
    print(table)
    write_results(args.out, f"ray-encoding-{args.dataset}", table, {"command": command, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
