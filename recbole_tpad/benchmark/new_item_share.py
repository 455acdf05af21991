"""How much room a trained TPAD gives items without training interactions: its warm and cold
Recall@20 / NDCG@10 on the validation split over a grid of ``new_item_share`` values, the prior
of its two-part ranking (:meth:`recbole_tpad.model.tpad.TPAD.mix_new_items`), and the test split
read once, at the share chosen on validation.

    python -m recbole_tpad.benchmark.new_item_share --checkpoint=saved/TPAD-X.pth --cold-ratio=0.5

The chosen share: with ``--cold-ratio=R``, the smallest share of the grid whose validation cold
Recall@20 reaches R x its warm Recall@20 (an operating point picked on validation, never on
test); without it, or when no share of the grid reaches R, the model's own (``valid``: the
share of validation targets that are new items, the calibrated prior). A larger share moves
every new item up by the same amount in every list, so cold recall can only rise and warm
recall only fall along the grid. Writes ``results/new-item-share-<D>.md``, ``.json`` and
``.png``.
"""

import argparse
import sys
from pathlib import Path

from recbole_tpad.benchmark import grid_chart, slice_metrics, write_results

DEFAULT_SHARES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5)
SLICES = ("all", "warm", "cold")


def choose_share(rows, model_share, cold_ratio):
    """The smallest share whose validation cold Recall@20 >= ``cold_ratio`` x warm; else the
    model's own share. Returns ``(share, reason)``."""
    if cold_ratio is not None:
        for row in sorted(rows, key=lambda r: r["share"]):
            valid = row["valid"]
            if valid["cold"]["recall@20"] >= cold_ratio * valid["warm"]["recall@20"]:
                return row["share"], (f"the smallest share whose validation cold Recall@20 is at "
                                      f"least {cold_ratio} x warm")
        return model_share, f"no share of the grid reaches cold >= {cold_ratio} x warm on validation: the model's own"
    return model_share, "the model's own (new_item_share of its config)"


def plot(rows, model_share, chosen, path, title):
    marks = [(model_share, f"calibrated prior ({model_share:.3f})", ":")]
    if chosen != model_share:
        marks.append((chosen, f"chosen on validation ({chosen:g})", "-."))
    shares = [r["share"] for r in rows]
    grid_chart(path, [(f"{name} cases", shares, [r["valid"][name]["recall@20"] for r in rows], style)
                for name, style in (("warm", "-o"), ("cold", "-s"), ("all", "--"))],
               marks, "new_item_share (prior that the next item is a new one)",
               "validation Recall@20", title, log_x=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a TPAD checkpoint (saved/X.pth)")
    parser.add_argument("--shares", default=",".join(map(str, DEFAULT_SHARES)))
    parser.add_argument("--cold-ratio", type=float, default=None,
                        help="choose the smallest share with validation cold Recall@20 >= R x warm")
    parser.add_argument("--out", default="results")
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    try:
        shares = sorted(float(s) for s in args.shares.split(","))
    except ValueError:
        parser.error(f"--shares={args.shares}: give numbers between 0 and 1, comma-separated")
    if not shares or not all(0 < s < 1 for s in shares):
        parser.error(f"--shares={args.shares}: every share must be between 0 and 1 (exclusive)")

    import torch

    import recbole_tpad  # noqa: F401
    from recbole_tpad.quick_start import load_experiment, machine_description

    config, (train, valid, test), trainer = load_experiment(
        args.checkpoint, {"show_progress": False, "state": "WARNING"})
    model = trainer.model
    model_share = getattr(model, "new_item_share", None)
    if model_share is None:
        print(f"error: {args.checkpoint}: this model does not mix a new-item ranking in (it needs "
              "TPAD with cold_item_ids: content or zero and new_item_share set)", file=sys.stderr)
        return 2
    trainer.tot_item_num = valid._dataset.item_num  # what RecBole's evaluate sets first
    rows = []
    for share in sorted(set(shares) | {model_share}):
        model.set_new_item_share(share)
        metrics, cases = slice_metrics(trainer, train, valid, SLICES)
        rows.append({"share": share, "valid": metrics})
        print(f"share {share:.4f}: " + ", ".join(
            f"{s} R@20 {metrics[s]['recall@20']:.4f}" for s in SLICES), flush=True)
    model.set_new_item_share(None)  # the model's raw scores, no mixing: what the mixture adds
    plain, _ = slice_metrics(trainer, train, valid, SLICES)
    chosen, reason = choose_share(rows, model_share, args.cold_ratio)
    model.set_new_item_share(chosen)
    test_metrics, test_cases = slice_metrics(trainer, train, test, SLICES)  # the test split, read once

    dataset = config["dataset"]
    stem = f"new-item-share-{dataset}{args.tag}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(rows, model_share, chosen, out / f"{stem}.png", f"{dataset}: new items' share of the ranking")
    command = "python -m recbole_tpad.benchmark.new_item_share " + " ".join(
        argv if argv is not None else sys.argv[1:])
    lines = [f"# New items' share of the ranking on {dataset}", "", f"Command: `{command}`",
             f"Machine: {machine_description(trainer.device)}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads. Checkpoint: `{args.checkpoint}`.", "",
             f"Validation: {cases['warm']} warm and {cases['cold']} cold cases. Calibrated prior "
             f"(share of validation targets with no training interaction, smoothed): "
             f"{model_share:.4f}.", "",
             "| new_item_share | all Recall@20 | warm Recall@20 | cold Recall@20 | cold / warm "
             "| all NDCG@10 | warm NDCG@10 | cold NDCG@10 |", "|---|---|---|---|---|---|---|---|"]
    for row in [{"share": None, "valid": plain}] + rows:
        v = row["valid"]
        ratio = v["cold"]["recall@20"] / v["warm"]["recall@20"] if v["warm"]["recall@20"] else float("nan")
        mark = " (calibrated)" if row["share"] == model_share else ""
        mark += " (chosen)" if row["share"] == chosen else ""
        share = "plain scores (no mixing)" if row["share"] is None else f"{row['share']:.4f}"
        lines.append(f"| {share}{mark} | {v['all']['recall@20']:.4f} | {v['warm']['recall@20']:.4f} "
                     f"| {v['cold']['recall@20']:.4f} | {ratio:.2f} | {v['all']['ndcg@10']:.4f} "
                     f"| {v['warm']['ndcg@10']:.4f} | {v['cold']['ndcg@10']:.4f} |")
    t = test_metrics
    lines += ["", f"Chosen share: {chosen:g}, {reason}. Test split, read once at it "
              f"({test_cases['warm']} warm, {test_cases['cold']} cold cases):", "",
              "| slice | Recall@20 | NDCG@10 |", "|---|---|---|"]
    lines += [f"| {s} | {t[s]['recall@20']:.4f} | {t[s]['ndcg@10']:.4f} |" for s in SLICES]
    lines += ["", f"![validation recall by share]({stem}.png)"]
    report = write_results(out, stem, "\n".join(lines), {
        "command": command, "checkpoint": args.checkpoint, "dataset": dataset,
        "calibrated_share": model_share, "chosen_share": chosen, "reason": reason,
        "cold_ratio": args.cold_ratio, "valid": rows, "valid_plain": plain, "test": test_metrics, "test_cases": test_cases,
        "machine": machine_description(trainer.device)})
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
