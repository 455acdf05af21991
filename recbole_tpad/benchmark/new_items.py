"""Items added after training, measured: how well a model ranks items it never saw, added
through ``--new-items``, beside the same model's in-training cold-start evaluation.

From a cold-start split (``amazon-sports-cold``: 10% of the items never occur in training) it
derives ``<D>-warm``: the same training split, the items' table without the cold items, and the
valid/test cases whose target is warm, their histories without cold items; the cold items
become a new-items file and the test cases with a cold target (whole histories) the cases
scored after adding them. A model trained on ``<D>-warm`` has never had the cold
items in its catalogue; they are then added with :meth:`Recommender.add_items` and every test
case is ranked over the whole catalogue (old + new items), as RecBole's full ranking does.

    python -m recbole_tpad.benchmark.new_items --dataset=amazon-sports-cold --variant=TPAD-text-SS \\
        --max_train_minutes=40 --threads=1

Writes ``results/new-items-<D>.md`` and ``.json`` (with the command, the machine and the runs).
``--in-training=RUN.json`` adds the row of a run on ``<D>`` itself (its cold slice).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from dataset_tools.atomic import read_atomic
from recbole_tpad.benchmark import write_results


def derive_warm_dataset(data_root, dataset):
    """Write ``<dataset>-warm`` beside ``dataset`` (see the module doc); returns
    ``(name, new_items_file, cold_cases)`` with cold cases as ``[(history, target)]``."""
    source = Path(data_root) / dataset
    name = f"{dataset}-warm"
    target = Path(data_root) / name
    target.mkdir(parents=True, exist_ok=True)
    fields, train = read_atomic(source / f"{dataset}.train.inter")
    names = [f for f, _ in fields]
    seq, item = names.index("item_id_list"), names.index("item_id")
    trained = {r[item] for r in train} | {i for r in train for i in r[seq].split()}
    header = (source / f"{dataset}.train.inter").read_text(encoding="utf-8").splitlines()[0]
    (target / f"{name}.train.inter").write_text(
        (source / f"{dataset}.train.inter").read_text(encoding="utf-8"), encoding="utf-8")
    # the warm copy knows the trained items only: valid/test cases with a trained target, their
    # histories without the items added later (a case left with no history is dropped)
    split_rows = {}
    for split in ("valid", "test"):
        _, rows = read_atomic(source / f"{dataset}.{split}.inter")
        split_rows[split] = rows
        warm = []
        for r in rows:
            history = [i for i in r[seq].split() if i in trained]
            if r[item] in trained and history:
                warm.append([*r[:seq], " ".join(history), *r[seq + 1:]])
        (target / f"{name}.{split}.inter").write_text(
            "\n".join([header] + ["\t".join(r) for r in warm]) + "\n", encoding="utf-8")
    item_lines = (source / f"{dataset}.item").read_text(encoding="utf-8").splitlines()
    known = [item_lines[0]] + [line for line in item_lines[1:] if line.split("\t", 1)[0] in trained]
    new = [item_lines[0]] + [line for line in item_lines[1:] if line.split("\t", 1)[0] not in trained]
    (target / f"{name}.item").write_text("\n".join(known) + "\n", encoding="utf-8")
    new_items = target / "new-items.item"
    new_items.write_text("\n".join(new) + "\n", encoding="utf-8")
    # cold cases keep their whole history: items added later may be in it too (and are known
    # once added)
    cold_cases = [(r[seq].split(), r[item]) for r in split_rows["test"] if r[item] not in trained]
    return name, new_items, cold_cases


def rank_metrics(results, targets, k_recall=20, k_ndcg=10):
    """Recall@k and NDCG@k of ranked lists against one target each."""
    recall, ndcg = [], []
    for result, target in zip(results, targets):
        ranked = [r.item for r in result.items]
        position = ranked.index(target) if target in ranked else None
        recall.append(position is not None and position < k_recall)
        ndcg.append(1 / np.log2(position + 2) if position is not None and position < k_ndcg else 0.0)
    return {f"recall@{k_recall}": float(np.mean(recall)), f"ndcg@{k_ndcg}": float(np.mean(ndcg)),
            "cases": len(targets)}


def warm_test_cases(data_root, name):
    fields, rows = read_atomic(Path(data_root) / name / f"{name}.test.inter")
    names = [f for f, _ in fields]
    seq, item = names.index("item_id_list"), names.index("item_id")
    return [(r[seq].split(), r[item]) for r in rows]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="amazon-sports-cold")
    parser.add_argument("--variant", default="TPAD", help="a model or a variant of properties/variants.yaml")
    parser.add_argument("--checkpoint", help="a model already trained on <dataset>-warm (skips training)")
    parser.add_argument("--in-training", help="the summary .json of a run on <dataset> itself")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="results")
    parser.add_argument("--tag", default="", help="suffix of the result files")
    args, extra = parser.parse_known_args(argv)
    import torch

    import recbole_tpad  # noqa: F401
    from recbole_tpad.config import Config, parse_cli_values
    from recbole_tpad.data.locate import ensure_dataset
    from recbole_tpad.quick_start import machine_description, run
    from recbole_tpad.recommend import Recommender
    from recbole_tpad.variants import prepare_variant

    if args.threads:
        torch.set_num_threads(args.threads)
    values = parse_cli_values(extra)
    data_root = Path(Config(model="SASRec", dataset=args.dataset, config_dict=values)["data_path"]).parent
    ensure_dataset(args.dataset, data_root)
    name, new_items, cold_cases = derive_warm_dataset(data_root, args.dataset)
    summary = None
    if args.checkpoint:
        checkpoint = args.checkpoint
        record = Path(checkpoint).with_suffix(".json")  # what quick_start.run wrote beside it
        summary = json.loads(record.read_text()) if record.is_file() else None
    else:
        model, settings = prepare_variant(args.variant, name, values)
        summary = run(model, name, config_dict=settings)
        checkpoint = summary["saved_model_file"]
    rec = Recommender.from_checkpoint(checkpoint)
    tic = time.perf_counter()
    added = rec.add_items(new_items)
    add_seconds = time.perf_counter() - tic
    rows = {}
    for label, cases in (("cold targets (items added after training)", cold_cases),
                         ("warm targets", warm_test_cases(data_root, name))):
        results = rec.recommend_batch([history for history, _ in cases], k=20)
        rows[label] = rank_metrics(results, [target for _, target in cases])
    in_training = None
    if args.in_training:
        run_summary = json.loads(Path(args.in_training).read_text())
        in_training = run_summary.get("test_result_by_target", {})
    command = "python -m recbole_tpad.benchmark.new_items " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"# New items without retraining: {args.dataset}", "", f"Command: `{command}`  ",
             f"Machine: {machine_description(rec.config['device'])}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads.  ",
             f"Model: {args.variant} trained on `{name}` (the cold items are not in its catalogue); "
             f"{len(added)} items added through `--new-items` in {add_seconds:.1f} s "
             "(encoding included); every test case ranked over all items, old and new.", "",
             "| test cases | cases | Recall@20 | NDCG@10 |", "|---|---|---|---|"]
    for label, m in rows.items():
        lines.append(f"| {label} | {m['cases']} | {m['recall@20']:.4f} | {m['ndcg@10']:.4f} |")
    if in_training:
        for key, label in (("cold", "cold targets, in-training run on the cold split"),
                           ("warm", "warm targets, in-training run on the cold split")):
            m = in_training.get(key) or {}
            if m:
                lines.append(f"| {label} | {in_training['cases'][key]} | {m.get('recall@20', float('nan')):.4f} "
                             f"| {m.get('ndcg@10', float('nan')):.4f} |")
    if summary:
        lines += ["", f"Training: {summary['epochs_run']} epochs, stopped by {summary['stopped_by']}, "
                      f"{summary['mean_epoch_seconds']:.0f} s/epoch."]
    table = "\n".join(lines)
    print(table)
    write_results(args.out, f"new-items-{args.dataset}{args.tag}", table, {
        "command": command, "rows": rows, "in_training": in_training, "checkpoint": checkpoint,
        "added": len(added), "add_seconds": add_seconds,
        "run": {k: v for k, v in (summary or {}).items() if k != "valid_curve"}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
