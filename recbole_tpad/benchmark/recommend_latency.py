"""Load time and per-session latency of :class:`recbole_tpad.recommend.Recommender` on the CPU.

    python -m recbole_tpad.benchmark.recommend_latency --checkpoint=saved/X.pth --sessions=1000

Sessions are the prefixes of the checkpoint's own test split (its last ``--sessions`` cases),
scored one at a time (the latency a caller of ``recommend`` sees) and in batches of
``--batch`` (``recommend_batch``). Prints and writes ``results/recommend-<dataset>.md/.json``.
"""

import argparse
import statistics
import sys
import time

from recbole_tpad.benchmark import write_results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)
    import torch

    import recbole_tpad  # noqa: F401
    from recbole_tpad.evaluation import training_prefixes
    from recbole_tpad.quick_start import load_data_and_model, machine_description
    from recbole_tpad.recommend import Recommender

    tic = time.perf_counter()
    config, model, dataset, train_data, _, test_data = load_data_and_model(args.checkpoint)
    rec = Recommender(config, model, dataset, training_prefixes(train_data), time.perf_counter() - tic)
    inter = test_data._dataset.inter_feat
    seqs, lengths = inter[rec.seq_field][-args.sessions:], inter[rec.len_field][-args.sessions:]
    sessions = [[rec.id_to_token[i] for i in s[:n].tolist()] for s, n in zip(seqs, lengths)]
    rec.recommend(sessions[0], args.topk)  # warm-up
    single = []
    for session in sessions:
        start = time.perf_counter()
        rec.recommend(session, args.topk)
        single.append(time.perf_counter() - start)
    start = time.perf_counter()
    for k in range(0, len(sessions), args.batch):
        rec.recommend_batch(sessions[k:k + args.batch], args.topk)
    batched = time.perf_counter() - start
    figures = {
        "model": config["model"], "dataset": config["dataset"], "items": len(rec.id_to_token) - 1,
        "load_seconds": rec.load_seconds, "sessions": len(sessions),
        "single_median_ms": 1000 * statistics.median(single),
        "single_p95_ms": 1000 * sorted(single)[int(0.95 * len(single)) - 1],
        "batch": args.batch, "batched_sessions_per_s": len(sessions) / batched,
        "machine": machine_description("cpu"), "threads": torch.get_num_threads(),
        "command": "python -m recbole_tpad.benchmark.recommend_latency " + " ".join(
            argv if argv is not None else sys.argv[1:]),
    }
    table = "\n".join([
        f"# Recommend latency: {figures['model']} on {figures['dataset']} ({figures['items']} items)", "",
        f"Command: `{figures['command']}`", "",
        f"Machine: {figures['machine']}, {figures['threads']} torch threads.", "",
        "| load (checkpoint + dataset) | one session: median | p95 | batches of "
        f"{args.batch}: sessions/s |", "|---|---|---|---|",
        f"| {figures['load_seconds']:.1f} s | {figures['single_median_ms']:.1f} ms | "
        f"{figures['single_p95_ms']:.1f} ms | {figures['batched_sessions_per_s']:.0f} |", ""])
    print(table)
    write_results(args.out, f"recommend-{config['dataset']}", table, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
