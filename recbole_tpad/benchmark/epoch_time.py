"""Side-by-side cost of models on one dataset: one training epoch and one full-ranking pass over
the test cases each, in one process, models interleaved over ``--repeats`` rounds so that drift
on a shared machine hits every model alike. Prints and writes ``results/epoch_time-<D>.md/.json``.

    python -m recbole_tpad.benchmark.epoch_time --dataset=amazon-sports --models=SASRec,TPAD

``--breakdown N``: also the median training step over N batches, and the part of it that is the
item table's forward and backward alone (every item's vector, which a step under sampled
softmax with negatives per position needs whole: for TPAD the adapter over all the features,
for an ID model a lookup), so a ratio says where the extra time goes.
"""

import argparse
import itertools
import statistics
import sys
import time

from recbole_tpad.benchmark import write_results


def measure(label, dataset, config_dict, breakdown=0):
    """Seconds for one training epoch and for full-ranking evaluation of the test split of a
    model or a variant of ``properties/variants.yaml`` (``TPAD-zU``); ``breakdown``: then
    :func:`step_breakdown` over that many batches."""
    from recbole_tpad.quick_start import build_experiment
    from recbole_tpad.variants import prepare_variant

    model_name, settings = prepare_variant(label, dataset, config_dict, variant_wins=True)
    _, (train, _, test), trainer = build_experiment(model_name, dataset, config_dict=settings)
    epoch = trainer.train_one_epoch(train)
    tic = time.perf_counter()
    trainer.evaluate(test, load_best_model=False, show_progress=False)
    evaluate = time.perf_counter() - tic
    result = {"epoch_seconds": epoch, "test_seconds": evaluate, "test_cases": len(test.dataset),
              "train_cases": len(train.dataset), "device": str(trainer.device)}
    if breakdown:
        result.update(step_breakdown(trainer, train, breakdown))
    return result


def step_breakdown(trainer, train, steps):
    """Median seconds of a whole training step (loss, backward, optimiser step) over ``steps``
    batches, and of the item table's forward and backward alone on the same model (``None``
    for a model that builds no item table, as RecBole's read their embedding directly)."""
    model, optimizer = trainer.model, trainer.optimizer
    model.train()
    table = getattr(model, "item_representations", None)
    whole, items = [], []
    for batch in itertools.islice(iter(train), steps):
        batch = batch.to(trainer.device)
        tic = time.perf_counter()
        optimizer.zero_grad()
        model.calculate_loss(batch).backward()
        optimizer.step()
        whole.append(time.perf_counter() - tic)
        if table is not None:
            optimizer.zero_grad()
            tic = time.perf_counter()
            table().sum().backward()
            items.append(time.perf_counter() - tic)
    optimizer.zero_grad()
    return {"step_seconds": statistics.median(whole),
            "item_table_seconds": statistics.median(items) if items else None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--models", default="SASRec,TPAD")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", default="results")
    parser.add_argument("--breakdown", type=int, default=0, metavar="N",
                        help="also time N training steps, and the item table's forward and backward "
                             "within them (0: off)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's; the comparison's CPU units run 1)")
    args, extra = parser.parse_known_args(argv)
    args.argv = argv if argv is not None else sys.argv[1:]
    if args.breakdown < 0:
        parser.error(f"--breakdown={args.breakdown}: give a number of training steps (0: off)")
    import recbole_tpad  # noqa: F401
    from recbole_tpad.variants import check_labels

    try:
        check_labels(args.models.split(","))
    except ValueError as error:
        parser.error(str(error))
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
            runs[model].append(measure(model, args.dataset, config_dict, args.breakdown))
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
    if args.breakdown:
        lines += ["", f"One training step (median of {args.breakdown} batches, then of the rounds) and, of "
                  "it, the item table's forward and backward alone (every item's vector):", "",
                  f"| model | step (ms) | x {base} | item table (ms) | share of the step | step without "
                  f"it (ms) |", "|---|---|---|---|---|---|"]
        for m in models:
            step = statistics.median(r["step_seconds"] for r in runs[m])
            median[m]["step_seconds"] = step
            tables = [r["item_table_seconds"] for r in runs[m] if r["item_table_seconds"] is not None]
            item = median[m]["item_table_seconds"] = statistics.median(tables) if tables else None
            cells = (f"{1000 * item:.1f} | {item / step:.0%} | {1000 * (step - item):.1f}" if item is not None
                     else "- | - | -")
            lines.append(f"| {m} | {1000 * step:.1f} | {step / median[base]['step_seconds']:.2f} | {cells} |")
    table = "\n".join(lines)
    print(table)
    write_results(args.out, f"epoch_time-{args.dataset}", table,
                  {"runs": runs, "median": median, "config": config_dict})
    return 0


if __name__ == "__main__":
    sys.exit(main())
