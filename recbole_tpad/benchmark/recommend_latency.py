"""Load time and per-session latency of :class:`recbole_tpad.recommend.Recommender` on the CPU,
for one checkpoint or several side by side (``--checkpoint=A.pth,B.pth``: the same sessions,
each one scored by every model in turn, so drift on a shared machine hits them alike).

    python -m recbole_tpad.benchmark.recommend_latency --checkpoint=saved/X.pth --sessions=1000

Sessions are the prefixes of the first checkpoint's own test split (its last ``--sessions``
cases), scored one at a time (the latency a caller of ``recommend`` sees) and in batches of
``--batch`` (``recommend_batch``). Every checkpoint must be of the same dataset. Prints and
writes ``results/recommend-<dataset>.md/.json``.
"""

import argparse
import statistics
import sys
import time

from recbole_tpad.benchmark import write_results


def load(checkpoint):
    """A :class:`Recommender` of ``checkpoint``, its test data and its load time."""
    from recbole_tpad.evaluation import training_prefixes
    from recbole_tpad.quick_start import load_data_and_model
    from recbole_tpad.recommend import Recommender

    tic = time.perf_counter()
    config, model, dataset, train_data, _, test_data = load_data_and_model(checkpoint)
    return Recommender(config, model, dataset, training_prefixes(train_data), time.perf_counter() - tic), test_data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a .pth, or several separated by commas")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)
    import torch

    import recbole_tpad  # noqa: F401
    from recbole_tpad.quick_start import machine_description

    paths = [p for p in args.checkpoint.split(",") if p]
    loaded = [load(path) for path in paths]
    recs = [rec for rec, _ in loaded]
    datasets = {rec.config["dataset"] for rec in recs}
    if len(datasets) > 1:
        parser.error(f"--checkpoint: the checkpoints are of different datasets ({', '.join(sorted(datasets))}); "
                     "compare models of one dataset, on the same sessions")
    inter = loaded[0][1]._dataset.inter_feat
    first = recs[0]
    seqs, lengths = inter[first.seq_field][-args.sessions:], inter[first.len_field][-args.sessions:]
    sessions = [[first.id_to_token[i] for i in s[:n].tolist()] for s, n in zip(seqs, lengths)]
    single = [[] for _ in recs]
    for rec in recs:
        rec.recommend(sessions[0], args.topk)  # warm-up
    for session in sessions:
        for k, rec in enumerate(recs):
            start = time.perf_counter()
            rec.recommend(session, args.topk)
            single[k].append(time.perf_counter() - start)
    batched = []
    for rec in recs:
        start = time.perf_counter()
        for k in range(0, len(sessions), args.batch):
            rec.recommend_batch(sessions[k:k + args.batch], args.topk)
        batched.append(time.perf_counter() - start)
    rows = [{
        "checkpoint": path, "model": rec.config["model"], "load_seconds": rec.load_seconds,
        "single_median_ms": 1000 * statistics.median(times),
        "single_p95_ms": 1000 * sorted(times)[int(0.95 * len(times)) - 1],
        "batched_sessions_per_s": len(sessions) / seconds,
    } for path, rec, times, seconds in zip(paths, recs, single, batched)]
    figures = {
        "models": rows, "dataset": first.config["dataset"], "items": len(first.id_to_token) - 1,
        "sessions": len(sessions), "batch": args.batch, "machine": machine_description("cpu"),
        "threads": torch.get_num_threads(),
        "command": "python -m recbole_tpad.benchmark.recommend_latency " + " ".join(
            argv if argv is not None else sys.argv[1:]),
    }
    base = rows[0]
    lines = [
        f"# Recommend latency on {figures['dataset']} ({figures['items']} items)", "",
        f"Command: `{figures['command']}`", "",
        f"Machine: {figures['machine']}, {figures['threads']} torch threads; {len(sessions)} test "
        "sessions, each scored by every model in turn.", "",
        "| model | checkpoint | load (checkpoint + dataset) | one session: median | p95 | "
        f"x {base['model']} | batches of {args.batch}: sessions/s |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['model']} | `{row['checkpoint']}` | {row['load_seconds']:.1f} s | "
                     f"{row['single_median_ms']:.1f} ms | {row['single_p95_ms']:.1f} ms | "
                     f"{row['single_median_ms'] / base['single_median_ms']:.2f} | "
                     f"{row['batched_sessions_per_s']:.0f} |")
    table = "\n".join(lines + [""])
    print(table)
    write_results(args.out, f"recommend-{figures['dataset']}", table, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
