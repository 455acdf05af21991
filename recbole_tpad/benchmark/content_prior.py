"""How much a trained model gains from its items' content similarity at ranking time: its
NDCG@10 / Recall@20 on the validation split (all, tail, head and cold cases) over
``content_prior`` weights and ``content_prior_rarity`` exponents
(:meth:`recbole_tpad.model.tpad.TPAD.set_content_prior`: the score of an item gains
``weight x r x cos(session's last item, item)`` over whitened content vectors, ``r`` shrinking
with the item's training count), searched as ``content_prior: valid`` searches them
(:func:`recbole_tpad.prior_grid.search_content_prior`), the pair with the best validation
NDCG@10 chosen (or, with ``--cold_floor 0.5``, the best of the whole grid among the pairs whose
validation cold Recall@20 is at least half their warm Recall@20: issue 13's cold-start rule), and the test split
read at it and at 0 (the model's own scores; no choice is made on test).

    python -m recbole_tpad.benchmark.content_prior --checkpoint=saved/TPAD-X.pth

``--adjustments 0.1,0.3``: also the validation figures of the model's own scores and of the
chosen point with ``tau x log(1 + the item's training count)`` subtracted from every score
(post-hoc logit adjustment, Menon et al. 2021: the targets of a later split hold more rare
items than the training interactions do). An exploration only: nothing is chosen from it and
the test split is not read with it.

Works for any checkpoint the plugin's runs wrote: TPAD and the models built on it use their own
prior; any other sequential model (RecBole's SASRec, GRU4Rec, ...) ranks through
:class:`recbole_tpad.model.prior.WithContentPrior`, the same prior around its own scores. An ID
model with a content prior is the hybrid baseline that a content-aware TPAD must beat, not the
ID model alone; ``--prior_source`` (alias ``--feature_source``) gives both sides the same
content table, and lets a model that reads one table (TPAD on z_U) rank by another's similarity.
Writes ``results/content-prior-<D><tag>.md``, ``.json`` and ``.png``.
"""

import argparse
import sys
from pathlib import Path

from recbole_tpad.benchmark import grid_chart, slice_metrics, write_results
from recbole_tpad.prior_grid import CONTENT_PRIOR_RARITIES as DEFAULT_RARITIES
from recbole_tpad.prior_grid import CONTENT_PRIOR_WEIGHTS as DEFAULT_WEIGHTS
from recbole_tpad.prior_grid import prior_point, search_content_prior

SLICES = ("all", "warm", "cold", "tail", "head")


def plot(rows, chosen, path, title):
    """All and tail NDCG@10 by weight, one colour per rarity (weight 0 is on each)."""
    rarities = sorted({r["rarity"] for r in rows})
    series = []
    for k, rarity in enumerate(rarities):
        own = [r for r in rows if r["rarity"] == rarity or not r["weight"]]
        for name, style in (("all", f"C{k}-o"), ("tail", f"C{k}--s")):
            series.append((f"{name} cases, rarity {rarity:g}", [r["weight"] for r in own],
                           [r["valid"][name]["ndcg@10"] for r in own], style))
    grid_chart(path, series, [(chosen[0], f"chosen on validation ({chosen[0]:g}, rarity "
                                           f"{chosen[1]:g})", "-.")],
               "content_prior (weight of the last item's content similarity)", "validation NDCG@10", title)


def with_popularity_adjustment(model):
    """Makes ``model`` rank by ``score - tau x log(1 + training count)`` (full ranking, what
    the slices read), the counts being those its prior table holds; returns the setter of
    ``tau`` (0: the model's own ranking)."""
    own, log_counts = model.full_sort_predict, model.prior_table.log_counts
    tau = [0.0]

    def full_sort_predict(interaction):
        scores = own(interaction)
        return scores - tau[0] * log_counts if tau[0] else scores

    model.full_sort_predict = full_sort_predict

    def set_tau(value):
        tau[0] = float(value)
    return set_tau


class NoColdCase(Exception):
    """``--cold_floor`` on a split with no cold target: raised at the first evaluation."""


def parse_numbers(text, zero=False):
    numbers = sorted({float(w) for w in text.split(",")} | ({0.0} if zero else set()))
    if not numbers or any(w < 0 for w in numbers):
        raise ValueError
    return numbers


def load_with_content_table(args, weights):
    """``load_experiment``'s ``(config, data, trainer)`` of the checkpoint, its model able to
    rank with the content prior over ``--prior_source``'s table (made first where it is
    missing and can be: MiniLM's, or the pretrainer's)."""
    from recbole_tpad.checkpoints import load_checkpoint
    from recbole_tpad.quick_start import load_experiment

    # built with a prior so that the dataset loads the content table and the model keeps it
    settings = {"show_progress": False, "state": "WARNING", "content_prior": max(weights) or 1.0}
    if args.data_path:
        settings["data_path"] = str(args.data_path)
    state = load_checkpoint(args.checkpoint)
    saved = state["config"]
    if saved.get("use_features") is False or not saved.get("feature_source"):
        # an ID-only model (SASRecPub, RecBole's SASRec, ...) names no table of its own: by
        # default MiniLM text, built in minutes, not the pretrainer's (which would pretrain first)
        settings["feature_source"] = args.prior_source or "text-minilm"
    config, (train, valid, test), trainer = load_experiment(args.checkpoint, settings, state=state)
    from recbole_tpad.data.dataset import load_item_features
    from recbole_tpad.evaluation import training_item_counts
    from recbole_tpad.model.prior import ContentPrior, WithContentPrior

    wrap = not hasattr(trainer.model, "set_content_prior")  # any other model: the same prior around it
    # a model that reads a table keeps it as its input; only its prior ranks by the other one
    other_table = args.prior_source and args.prior_source != config["feature_source"]
    if wrap or other_table:
        table, _ = load_item_features(config, train._dataset, source=args.prior_source)
        counts = training_item_counts(train._dataset, config)
        if wrap:
            trainer.model = WithContentPrior(trainer.model, table, counts).eval()
        else:
            trainer.model.prior_table = ContentPrior(table, counts).to(trainer.model.device)
    return config, (train, valid, test), trainer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint of any model a plugin run wrote (saved/X.pth)")
    parser.add_argument("--data_path", default=None,
                        help="the folder that holds the dataset's folder, where the data is no longer "
                        "where the checkpoint was trained (the same files: their checksum is compared)")
    parser.add_argument("--weights", default=",".join(map(str, DEFAULT_WEIGHTS)),
                        help="content_prior weights (0 is always tried)")
    parser.add_argument("--rarities", default=",".join(map(str, DEFAULT_RARITIES)),
                        help="content_prior_rarity exponents (0: one weight for every item)")
    parser.add_argument("--prior_source", "--feature_source", dest="prior_source", default=None,
                        help="the content table the prior ranks by (a feature source: tpad-zU, "
                             "text-minilm, ...; default: the model's own table, text-minilm for an "
                             "ID-only model); a model that reads features keeps its own as input")
    parser.add_argument("--cold_floor", type=float, default=None,
                        help="try every weight and choose the best validation NDCG@10 among the points "
                             "whose validation cold Recall@20 is at least this times warm Recall@20 "
                             "(issue 13's cold-start rule: 0.5); default: the best validation NDCG@10")
    parser.add_argument("--adjustments", default="",
                        help="popularity adjustments tau to explore on validation at the model's own "
                             "scores and at the chosen point (score - tau x log(1 + training count)); "
                             "nothing is chosen from them and test is not read with them")
    parser.add_argument("--out", default="results")
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    try:
        weights = parse_numbers(args.weights, zero=True)
    except ValueError:
        parser.error(f"--weights={args.weights}: give weights of at least 0, comma-separated")
    try:
        rarities = parse_numbers(args.rarities)
    except ValueError:
        parser.error(f"--rarities={args.rarities}: give exponents of at least 0, comma-separated")
    try:
        adjustments = parse_numbers(args.adjustments) if args.adjustments else []
    except ValueError:
        parser.error(f"--adjustments={args.adjustments}: give values of at least 0, comma-separated")
    if args.cold_floor is not None and not args.cold_floor > 0:
        parser.error(f"--cold_floor={args.cold_floor}: give a share above 0, such as 0.5")

    import torch

    import recbole_tpad  # noqa: F401
    from recbole_tpad.checkpoints import CheckpointError
    from recbole_tpad.data.features import FeatureFileError
    from recbole_tpad.quick_start import machine_description

    try:
        config, (train, valid, test), trainer = load_with_content_table(args, weights)
    except (CheckpointError, FeatureFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = trainer.model
    trainer.tot_item_num = valid._dataset.item_num  # what RecBole's evaluate sets first
    def evaluate(weight, rarity):
        model.set_content_prior(weight, rarity)
        metrics, cases = slice_metrics(trainer, train, valid, SLICES)
        if args.cold_floor is not None and not cases["cold"]:
            raise NoColdCase
        print(f"content_prior {weight:g}, rarity {rarity:g}: " + ", ".join(
            f"{s} NDCG@10 {metrics[s]['ndcg@10']:.4f}" for s in SLICES), flush=True)
        return metrics["all"]["ndcg@10"], (metrics, cases)

    try:  # with a floor every weight is tried: the floor's best point may lie past the peak
        chosen, tried = search_content_prior(evaluate, weights, rarities, climb=args.cold_floor is None)
    except NoColdCase:
        print(f"error: --cold_floor: the validation split of {config['dataset']} has no case "
              "with a cold target (an item never in training), so there is no cold Recall@20 "
              "to hold up; run without --cold_floor", file=sys.stderr)
        return 1
    rows = [{"weight": w, "rarity": r, "valid": payload[0]} for (w, r), _, payload in tried]
    cases = tried[0][2][1]
    rule = "best all NDCG@10"
    if args.cold_floor is not None:
        rule = (f"best all NDCG@10 among the points whose cold Recall@20 is at least "
                f"{args.cold_floor:g} x warm")
        eligible = [r for r in rows if r["valid"]["cold"]["recall@20"]
                    >= args.cold_floor * r["valid"]["warm"]["recall@20"]]
        if not eligible:
            print(f"error: no point of the grid reaches validation cold Recall@20 >= "
                  f"{args.cold_floor:g} x warm (the test split was not read); try larger --weights "
                  "or --rarities", file=sys.stderr)
            return 1
        best = max(eligible, key=lambda r: (r["valid"]["all"]["ndcg@10"], -r["weight"], -r["rarity"]))
        chosen = (best["weight"], best["rarity"])
    adjusted = []
    if adjustments:  # validation only: an exploration, not a choice
        set_tau = with_popularity_adjustment(model)
        for weight, rarity in sorted({(0.0, 0.0), chosen}):
            model.set_content_prior(weight, rarity)
            for tau in sorted({0.0, *adjustments}):
                set_tau(tau)
                adjusted.append({"weight": weight, "rarity": rarity, "adjustment": tau,
                                 "valid": slice_metrics(trainer, train, valid, SLICES)[0]})
        set_tau(0.0)
    results = {}
    # the model's own scores, and the choice: nothing is chosen here
    for weight, rarity in sorted({(0.0, 0.0), chosen if chosen[0] else (0.0, 0.0)}):
        model.set_content_prior(weight, rarity)
        results[(weight, rarity)], test_cases = slice_metrics(trainer, train, test, SLICES)

    dataset = config["dataset"]
    table = args.prior_source or config["feature_file"] or config["feature_source"]  # what the prior ranked by
    stem = f"content-prior-{dataset}{args.tag}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(rows, chosen, out / f"{stem}.png", f"{dataset}: {config['model']} + content prior")
    command = "python -m recbole_tpad.benchmark.content_prior " + " ".join(
        argv if argv is not None else sys.argv[1:])
    header = ("| content_prior | rarity | all NDCG@10 | all Recall@20 | warm Recall@20 | cold Recall@20 "
              "| cold / warm | tail NDCG@10 | head NDCG@10 |\n|---|---|---|---|---|---|---|---|---|")

    def line(label, m):
        warm, cold = m["warm"]["recall@20"], m["cold"]["recall@20"]
        ratio = f"{cold / warm:.2f}" if warm and cold == cold else "-"
        return (f"| {label} | {m['all']['ndcg@10']:.4f} | {m['all']['recall@20']:.4f} | {warm:.4f} "
                f"| {cold:.4f} | {ratio} | {m['tail']['ndcg@10']:.4f} | {m['head']['ndcg@10']:.4f} |")

    lines = [f"# Content prior on {dataset}: {config['model']}", "", f"Command: `{command}`",
             f"Machine: {machine_description(trainer.device)}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads. Checkpoint: `{args.checkpoint}`. The prior's "
             f"content table: {table}.", "",
             f"Validation ({cases['all']} cases; tail {cases['tail']}, head {cases['head']}, "
             f"cold {cases['cold']}):", "", header]
    lines += [line(f"{r['weight']:g} | {r['rarity']:g}"
                   + (" (chosen)" if (r["weight"], r["rarity"]) == chosen else ""), r["valid"])
              for r in rows]
    edge = (" It is the largest weight of the grid, so a larger one may be better still: "
            "extend --weights." if chosen[0] == max(weights) and chosen[0] > 0 else "")
    walk = ("Every weight of each rarity is tried (--cold_floor)." if args.cold_floor is not None
            else "Each rarity's weights are tried upwards until validation falls.")
    lines += ["", f"{walk} Chosen on "
              f"validation: weight {chosen[0]:g}, rarity {chosen[1]:g} ({rule}).{edge} "
              f"Test split ({test_cases['all']} cases), at 0 (the model's own scores) and at the "
              "choice:", "", header]
    lines += [line(f"{w:g} | {r:g}", m) for (w, r), m in sorted(results.items())]
    if adjusted:
        lines += ["", "Popularity adjustment, validation only (every score minus tau x log(1 + the "
                  "item's training count); nothing is chosen from it and the test split is not read "
                  "with it):", "", header.replace("| rarity |", "| rarity | tau |").replace(
                      "|---|---|", "|---|---|---|", 1)]
        lines += [line(f"{r['weight']:g} | {r['rarity']:g} | {r['adjustment']:g}", r["valid"])
                  for r in adjusted]
    lines += ["", f"![validation NDCG@10 by weight]({stem}.png)"]
    report = write_results(out, stem, "\n".join(lines), {
        "command": command, "checkpoint": args.checkpoint, "dataset": dataset,
        "model": config["model"], "chosen_weight": chosen[0], "chosen_rarity": chosen[1],
        "cold_floor": args.cold_floor, "prior_source": table,
        "at_grid_edge": bool(edge), "valid": rows, "adjustment_valid": adjusted,
        "test": {prior_point(w, r): m for (w, r), m in results.items()}, "valid_cases": cases,
        "test_cases": test_cases, "machine": machine_description(trainer.device)})
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
