"""Side-by-side cost of models on one dataset: one training epoch and one full-ranking pass over
the test cases each, in one process, models interleaved over ``--repeats`` rounds so that drift
on a shared machine hits every model alike. Prints and writes ``results/epoch_time-<D>.md/.json``.

    python -m recbole_tpad.benchmark.epoch_time --dataset=amazon-sports --models=SASRec,TPAD
"""

import argparse
import statistics
import sys
import time

from recbole_tpad.benchmark import write_results


def measure(label, dataset, config_dict):
    """Seconds for one training epoch and for full-ranking evaluation of the test split of a
    model or a variant of ``properties/variants.yaml`` (``TPAD-zU``)."""
    from recbole_tpad.quick_start import build_experiment
    from recbole_tpad.variants import prepare_variant

    model_name, settings = prepare_variant(label, dataset, config_dict, variant_wins=True)
    _, (train, _, test), trainer = build_experiment(model_name, dataset, config_dict=settings)
    epoch = trainer.train_one_epoch(train)
    tic = time.perf_counter()
    trainer.evaluate(test, load_best_model=False, show_progress=False)
    evaluate = time.perf_counter() - tic
    return {"epoch_seconds": epoch, "test_seconds": evaluate, "test_cases": len(test.dataset),
            "train_cases": len(train.dataset), "device": str(trainer.device)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--models", default="SASRec,TPAD")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", default="results")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's; the comparison's CPU units run 1)")
    args, extra = parser.parse_known_args(argv)
    args.argv = argv if argv is not None else sys.argv[1:]
    import torch

    before = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return measure_all(args, extra)
    finally:  # a caller in the same process (a test) keeps its own setting
        torch.set_num_threads(before)


def measure_all(args, extra):
    """:func:`main` after its arguments: measure, print, write."""
    import torch

    import recbole_tpad  # noqa: F401
    from recbole_tpad.config import parse_cli_values
    from recbole_tpad.quick_start import machine_description

    config_dict = dict({"show_progress": False, "state": "WARNING"}, **parse_cli_values(extra))
    models = args.models.split(",")
    runs = {m: [] for m in models}
    for round_ in range(args.repeats):
        for model in models:
            runs[model].append(measure(model, args.dataset, config_dict))
            print(f"round {round_ + 1} {model}: {runs[model][-1]}", flush=True)
    base = models[0]
    median = {m: {k: statistics.median(r[k] for r in runs[m]) for k in ("epoch_seconds", "test_seconds")}
              for m in models}
    lines = [f"# Cost on {args.dataset}", "",
             f"Command: `python -m recbole_tpad.benchmark.epoch_time {' '.join(args.argv)}`",
             f"Machine: {machine_description(runs[base][0]['device'])}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads; "
             f"{args.repeats} round(s), models interleaved, medians.", "",
             f"| model | train epoch (s) | x {base} | full ranking of {runs[base][0]['test_cases']} test cases (s) "
             f"| per 1,000 cases (s) | x {base} |", "|---|---|---|---|---|---|"]
    for m in models:
        e, t = median[m]["epoch_seconds"], median[m]["test_seconds"]
        per_k = 1000 * t / runs[m][0]["test_cases"]
        lines.append(f"| {m} | {e:.1f} | {e / median[base]['epoch_seconds']:.2f} | {t:.1f} | {per_k:.2f} | "
                     f"{t / median[base]['test_seconds']:.2f} |")
    table = "\n".join(lines)
    print(table)
    write_results(args.out, f"epoch_time-{args.dataset}", table,
                  {"runs": runs, "median": median, "config": config_dict})
    return 0


if __name__ == "__main__":
    sys.exit(main())
