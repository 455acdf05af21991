"""Whether a claim holds: one model's runs against a baseline's, over seeds, each row read with
the model's own scores and with the content prior chosen on validation, and the verdict in
words (ratio of the means, the 2-std rule, an absolute floor).

The runs come from ``compare`` (``results/runs/<D>/*.json``, one per seed); the content-prior
figures from ``benchmark.content_prior`` (``results/content-prior-*.json``), matched to their run
by checkpoint file, so a row's "+ prior" line uses the same seeds as its own line and nothing is
chosen here: the prior's weight was chosen on validation, and these are the test figures at it.

    python -m recbole_tpad.benchmark.claim --name=amazon-sports-eprotocol \\
        --row "SASRecPub-SS=results/runs/amazon-sports/cpu/SASRecPub-SS-eprotocol*.json" \\
        --row "TPAD-zU-SS-default=results/runs/amazon-sports/TPAD-zU-SS-default-eprotocol*.json" \\
        --priors "results/content-prior-amazon-sports-eprotocol-*.json" \\
        --baseline=SASRecPub-SS --claim=TPAD-zU-SS-default --ratio=1.10 --floor=0.0355

Target 2's form, on the cold split: the verdict on warm Recall@20, the columns that show it,
and each seed's cold / warm ratio against 0.5 (priors chosen under the cold rule)::

    python -m recbole_tpad.benchmark.claim --name=amazon-sports-cold-target2 ... \\
        --priors "results/content-prior-amazon-sports-cold-*-coldrule.json" \\
        --columns=warm:recall@20,cold:recall@20,all:ndcg@10 --metric=warm:recall@20 \\
        --ratio=1.0 --cold_ratio=0.5

A configuration chosen on validation, not on test: ``--choose LABEL=ROW1,ROW2`` adds the row
(and its "+ content prior" row) whose mean validation score over the seeds is higher, say with
and without ``content_prior_training``; the baseline gets the same choice (``--choose_on_seeds
2020``: chosen on that seed's validation alone, the chosen row then reported over all its
seeds, when only the chosen configurations were run on more)::

    python -m recbole_tpad.benchmark.claim --name=amazon-sports-session-chosen ... \\
        --choose SASRec-chosen=SASRec,SASRec-ptrain --choose TPAD-chosen=TPAD-zU,TPAD-zU-ptrain \\
        --baseline=SASRec-chosen --claim=TPAD-chosen --ratio=1.05

Writes ``results/claim-<name>.md``, ``.json`` and ``.png`` (every seed as a dot, the mean as a
bar, std as a whisker), and, where the prior files hold their validation grids,
``claim-<name>-tradeoff.png``: the all-case against the tail-case score of every weight and
rarity on validation, the trade-off each model offers.
"""

import argparse
import glob
import json
import math
import shlex
import sys
from pathlib import Path

from recbole_tpad.benchmark import write_results
from recbole_tpad.benchmark.report import MixedRuns, cell, check_poolable, mean_std, verdict_values
from recbole_tpad.prior_grid import prior_point

#: (slice, metric) pairs of the table, in its column order, unless --columns says otherwise.
COLUMNS = (("all", "ndcg@10"), ("all", "recall@20"), ("tail", "ndcg@10"), ("head", "ndcg@10"))
METRIC_NAMES = {"ndcg": "NDCG", "recall": "Recall", "mrr": "MRR", "hit": "Hit", "precision": "Precision"}
PRIOR = " + content prior"


class ClaimError(ValueError):
    """Input that cannot make a claim table; the message names the file or argument."""


def _checkpoint_key(path):
    """The unit folder and file name of a checkpoint: the same run whichever disk it was on."""
    return "/".join(Path(path).parts[-2:]) if path else None


def _slices(result_by_target, fallback):
    """``{slice: {metric: value}}`` for every slice given ("all", "warm", "cold", "tail", ...), with
    NaN (no such case) as None; "all" falls back to the plain test result."""
    out = {}
    slices = [k for k, v in (result_by_target or {}).items()  # not "cases", "buckets", ...
              if k != "all" and isinstance(v, dict) and any("@" in str(m) for m in v)]
    for name in ["all"] + slices:
        part = (result_by_target or {}).get(name) or (fallback if name == "all" else {})
        out[name] = {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v)
                     for k, v in part.items()}
    return out


def load_run(path):
    """A ``compare`` run file -> ``{"file", "seed", "checkpoint", "slices", "machine", ...}``."""
    try:
        run = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ClaimError(f"{path}: not a readable run file ({error})") from None
    if "test_result" not in run or "seed" not in run:
        raise ClaimError(f"{path}: no 'test_result' or 'seed': give the run files that "
                         "`python -m recbole_tpad.benchmark.compare` writes under results/runs/")
    return {"file": str(path), "seed": run["seed"], "model": run.get("model"),
            "checkpoint": _checkpoint_key(run.get("saved_model_file")),
            "slices": _slices(run.get("test_result_by_target"), run["test_result"]),
            "machine": run.get("machine"), "epochs": run.get("epochs_run"),
            "stopped_by": run.get("stopped_by"),
            "valid": {"all": run.get("best_valid_result") or {}},  # RecBole's, all cases only
            # content_prior: valid: the run's test figures are already ranked with the prior
            "chose_prior": (run.get("content_prior") or {}).get("chosen"),
            "stored": run}


def load_prior(path):
    """A ``content_prior`` file -> ``{"file", "checkpoint", "weight", "rarity", "slices", "grid"}``:
    the test figures at the weight chosen on validation, and the validation figures of every
    grid point (``{(weight, rarity): slices}``)."""
    try:
        prior = json.loads(Path(path).read_text())
        weight, rarity = prior["chosen_weight"], prior.get("chosen_rarity", 0.0)
        # files from before content_prior_rarity key their figures by the weight alone
        test = prior["test"][prior_point(weight, rarity) if "chosen_rarity" in prior else str(float(weight))]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ClaimError(f"{path}: not a content-prior file with the test figures at its chosen "
                         f"weight ({type(error).__name__}: {error}); give the .json that "
                         "`python -m recbole_tpad.benchmark.content_prior` writes") from None
    grid = {(row["weight"], row.get("rarity", 0.0)): _slices(row["valid"], None)
            for row in prior.get("valid", []) if isinstance(row, dict) and "valid" in row}
    own = prior["test"].get("0/0") or prior["test"].get("0.0")
    return {"file": str(path), "checkpoint": _checkpoint_key(prior.get("checkpoint")),
            "weight": weight, "rarity": rarity, "cold_floor": prior.get("cold_floor"),
            "slices": _slices(test, None), "own": _slices(own, None) if own else None, "grid": grid}


def parse_column(text, option="--columns"):
    """``"SLICE:METRIC"`` (``warm:recall@20``) -> ``(slice, metric)``."""
    part, sep, metric = text.strip().partition(":")
    if not sep or not part or "@" not in metric:
        raise ClaimError(f"{option} {text!r}: write SLICE:METRIC, e.g. all:ndcg@10 or warm:recall@20")
    return part, metric.lower()


def column_title(part, metric):
    """``("tail", "ndcg@10")`` -> ``"tail NDCG@10"``; the "all" slice goes unnamed."""
    name, _, k = metric.partition("@")
    return ("" if part == "all" else part + " ") + f"{METRIC_NAMES.get(name, name)}@{k}"


def parse_row(text):
    """``"LABEL=PATTERN[,PATTERN...]"`` -> ``(label, [run files])``, sorted, at least one."""
    label, sep, patterns = text.partition("=")
    if not sep or not label.strip() or not patterns.strip():
        raise ClaimError(f"--row {text!r}: write LABEL=GLOB[,GLOB...], e.g. "
                         "'SASRecPub-SS=results/runs/amazon-sports/SASRecPub-SS-*.json'")
    files = sorted({f for p in patterns.split(",") for f in glob.glob(p.strip())})
    if not files:
        raise ClaimError(f"--row {text!r}: no file matches {patterns!r}")
    return label.strip(), files


def own_scores(run, prior):
    """``run`` with its model's own test figures: a run trained with ``content_prior: valid``
    was tested with the prior it chose, so its own scores (weight 0) come from its content-prior
    file, which must have chosen the same weight and rarity on validation."""
    if not run["chose_prior"]:
        return run
    if prior is None or prior["own"] is None:
        raise ClaimError(
            f"{run['file']}: its test figures are ranked with the content prior it chose on "
            f"validation (weight {run['chose_prior']:g}); give its content-prior file "
            "(python -m recbole_tpad.benchmark.content_prior --checkpoint=<its checkpoint>) in "
            "--priors, so that its own scores are read at weight 0")
    chosen_here = prior["slices"]["all"]
    if any(abs((chosen_here.get(k) or 0) - v) > 1e-4 for k, v in run["slices"]["all"].items()
           if k in chosen_here and v is not None):
        raise ClaimError(f"{prior['file']}: its chosen point's test figures differ from those of "
                         f"{run['file']}, which chose its prior in training: were they made on "
                         "the same content table (--prior_source)?")
    return dict(run, slices=prior["own"])


def build_rows(row_specs, prior_files):
    """``{label: [run]}`` and ``{label + PRIOR: [run with the prior's slices]}``; a row's seeds
    must differ, and a "+ prior" row exists only when every run of its row has a prior file."""
    priors = {}
    for path in prior_files:
        prior = load_prior(path)
        if prior["checkpoint"] in priors:
            raise ClaimError(f"{path} and {priors[prior['checkpoint']]['file']}: two content-prior "
                             f"files for one checkpoint ({prior['checkpoint']}): keep one")
        priors[prior["checkpoint"]] = prior
    rows, missing = {}, {}
    for label, files in row_specs:
        if label in rows:
            raise ClaimError(f"--row {label}: given twice")
        runs = sorted((load_run(f) for f in files), key=lambda r: r["seed"])
        seeds = {}
        for run in runs:
            if run["seed"] in seeds:
                raise ClaimError(f"{label}: {run['file']} and {seeds[run['seed']]} are both seed "
                                 f"{run['seed']}: a row's runs must be different seeds")
            seeds[run["seed"]] = run["file"]
        try:  # the report's rule: a row's runs are seeds of one configuration, on one table
            check_poolable(label, [r["stored"] for r in runs], [r["file"] for r in runs])
        except MixedRuns as error:
            raise ClaimError(f"--row {label}: {error}") from None
        own, matched = [], []
        for run in runs:
            prior = priors.get(run["checkpoint"])
            run = own_scores(run, prior)
            if prior is None:
                own.append(run)
                continue
            # the validation figures next to the test ones from the prior file's grid (weight 0
            # for the own scores, the chosen point for the prior), so both rows read alike
            own.append(dict(run, valid=prior["grid"].get((0.0, 0.0), run["valid"])))
            matched.append(dict(run, slices=prior["slices"], prior=prior,
                                valid=prior["grid"].get((prior["weight"], prior["rarity"]))))
        rows[label] = own
        if matched and len(matched) == len(runs):
            rows[label + PRIOR] = matched
        elif matched:
            missing[label] = [r["file"] for r in runs if r["checkpoint"] not in priors]
    return rows, missing


def values(runs, part="all", metric="ndcg@10", split="slices"):
    """Each run's ``metric`` on slice ``part``: test figures, or validation with ``split="valid"``
    (None where a run has none)."""
    return [(r.get(split) or {}).get(part, {}).get(metric) for r in runs]


def parse_choice(text):
    """``"LABEL=ROW1,ROW2[,...]"`` -> ``(label, [row labels])``, at least two."""
    label, sep, names = text.partition("=")
    names = [n.strip() for n in names.split(",") if n.strip()]
    if not sep or not label.strip() or len(names) < 2:
        raise ClaimError(f"--choose {text!r}: write LABEL=ROW1,ROW2[,...] (two or more --row "
                         "labels), e.g. 'TPAD-chosen=TPAD-zU,TPAD-zU-ptrain'")
    return label.strip(), names


def choose_rows(rows, choices, part="all", metric="ndcg@10", on_seeds=None):
    """Add each choice's row: of its candidate rows (the same seeds), the one with the higher mean
    validation score, once for the own scores and once for the "+ content prior" rows (where
    every candidate has one). Returns the lines that say what was chosen over what; the test
    figures play no part.

    ``on_seeds`` (``--choose_on_seeds``): the choice is made on the validation scores of these
    seeds alone, which every candidate must have, and the chosen row then counts with all its
    seeds: a configuration chosen on one seed and the chosen one alone run on more, the way
    compute-scarce comparisons are run (a candidate's other seeds play no part in the choice)."""
    lines = []
    for label, names in choices:
        for name in names:
            if name not in rows:
                raise ClaimError(f"--choose {label}: {name!r} is not a --row label "
                                 f"({', '.join(r for r in rows if not r.endswith(PRIOR))})")
        if label in rows:
            raise ClaimError(f"--choose {label}: the label is already a row; give the choice its own")
        seeds = {name: sorted(r["seed"] for r in rows[name]) for name in names}
        if on_seeds:
            lacking = {n: s for n, s in seeds.items() if not set(on_seeds) <= set(s)}
            if lacking:
                raise ClaimError(f"--choose {label}: --choose_on_seeds "
                                 f"{', '.join(map(str, on_seeds))}, which "
                                 + "; ".join(f"{n} lacks (it has {s})" for n, s in lacking.items())
                                 + ": every candidate needs a run of each seed the choice is made on")
        elif len({tuple(s) for s in seeds.values()}) > 1:
            raise ClaimError(f"--choose {label}: its rows have different seeds ("
                             + "; ".join(f"{n}: {s}" for n, s in seeds.items())
                             + "): a choice compares configurations on the same seeds, or name "
                             "the seeds it is made on (--choose_on_seeds)")
        for suffix in ("", PRIOR):
            if not all(name + suffix in rows for name in names):
                continue
            scores = {}
            for name in names:
                runs = rows[name + suffix]
                if on_seeds:
                    runs = [r for r in runs if r["seed"] in on_seeds]
                found = values(runs, part, metric, split="valid")
                if None in found:
                    raise ClaimError(f"--choose {label}: a run of {name + suffix} has no validation "
                                     f"{column_title(part, metric)} (its run file's best_valid_result "
                                     "or its content-prior file's grid): rerun it with this plugin")
                scores[name] = mean_std(found)[0]
            best = max(names, key=lambda n: scores[n])
            rows[label + suffix] = [dict(r, chosen_from=best) for r in rows[best + suffix]]
            chosen_on = sorted(on_seeds) if on_seeds else seeds[best]
            lines.append(f"- **{label + suffix}** is {best + suffix}: validation "
                         f"{column_title(part, metric)} " + ", ".join(
                             f"{n + suffix} {scores[n]:.4f}" for n in sorted(names, key=lambda n: -scores[n]))
                         + f" (mean over seeds {', '.join(map(str, chosen_on))})"
                         + (f"; reported over its seeds {', '.join(map(str, seeds[best]))}"
                            if on_seeds else ""))
    return lines


def judge(rows, claim, baseline, ratio, floor, part="all", metric="ndcg@10"):
    """Lines of the verdict: for the own scores and for the prior, where both rows have them."""
    lines = []
    for suffix in ("", PRIOR):
        a, b = rows.get(claim + suffix), rows.get(baseline + suffix)
        if not a or not b:
            continue
        a_values, b_values = values(a, part, metric), values(b, part, metric)
        if None in a_values + b_values:
            lines.append(f"- **{claim + suffix}** against **{baseline + suffix}**: some run has no "
                         f"test {column_title(part, metric)}; no verdict.")
            continue
        a_mean, b_mean = mean_std(a_values)[0], mean_std(b_values)[0]
        met = [f"{a_mean / b_mean:.3f}x" + (f" (target {ratio:g}x: {'met' if a_mean >= ratio * b_mean else 'not met'})"
                                              if ratio else "")]
        if floor:
            met.append(f"{'above' if a_mean > floor else 'not above'} {floor:g}")
        met.append(verdict_values(a_values, b_values))
        lines.append(f"- **{claim + suffix}** ({len(a)} seed(s), {a_mean:.4f}) against "
                     f"**{baseline + suffix}** ({len(b)} seed(s), {b_mean:.4f}), test "
                     f"{metric if part == 'all' else column_title(part, metric)}: "
                     + "; ".join(met) + ".")
        paired = paired_by_seed(a, a_values, b, b_values)
        if paired:
            lines.append(f"  - {paired}")
    return lines


def paired_by_seed(a_runs, a_values, b_runs, b_values):
    """In words, the claim's lead seed by seed over the seeds both rows ran (None under two), from
    the figures :func:`judge` has read (each run's, none missing): runs of one seed share its
    data order and, under ``--pretrain-per-seed``, its features, so the sign of each difference
    says what the means hide. Shown beside the verdict, which stays the 2-std rule."""
    b_by_seed = {run["seed"]: value for run, value in zip(b_runs, b_values)}
    pairs = [(run["seed"], value - b_by_seed[run["seed"]])
             for run, value in zip(a_runs, a_values) if run["seed"] in b_by_seed]
    if len(pairs) < 2:
        return None
    gaps = [gap for _, gap in pairs]
    mean, std = mean_std(gaps)
    ahead = sum(gap > 0 for gap in gaps)
    return (f"paired by seed ({', '.join(str(seed) for seed, _ in pairs)}): ahead on "
            f"{ahead} of {len(gaps)}, by "
            + ", ".join(f"{gap:+.4f}" for gap in gaps)
            + f" (mean {mean:+.4f} ± {std:.4f}; sign test p = "
            + f"{sign_test_p(ahead, sum(gap < 0 for gap in gaps)):.2f}); "
            + "the verdict above is the 2-std rule on the rows.")


def sign_test_p(ahead, behind):
    """Two-sided sign-test p-value of ``ahead`` wins against ``behind`` losses (ties dropped):
    how often coin flips split at least this unevenly. It says how little "ahead on every seed"
    means at three seeds (p = 0.25), so the paired line is not read as a decided claim."""
    n = ahead + behind
    if n == 0:
        return 1.0
    extreme = max(ahead, behind)
    tail = sum(math.comb(n, k) for k in range(extreme, n + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def cold_over_warm(runs, metric):
    """Each run's cold over its own warm score (None where either is missing or warm is 0)."""
    return [cold / warm if cold is not None and warm else None
            for cold, warm in zip(values(runs, "cold", metric), values(runs, "warm", metric))]


def judge_cold_ratio(rows, claim, target, metric):
    """Lines saying, for the claim's rows, whether each seed's cold score is at least TARGET x its
    own warm score (issue 13's target 2 reads it on Recall@20)."""
    lines = []
    for suffix in ("", PRIOR):
        runs = rows.get(claim + suffix)
        if not runs:
            continue
        ratios = cold_over_warm(runs, metric)
        if None in ratios:
            lines.append(f"- **{claim + suffix}**: some run has no warm or cold {metric}, or a warm "
                         "one of 0; no cold / warm verdict.")
            continue
        short = [str(r["seed"]) for r, x in zip(runs, ratios) if x < target]
        lines.append(f"- **{claim + suffix}**, cold / own warm {metric} by seed: "
                     + ", ".join(f"{x:.3f}" for x in ratios)
                     + f" (target {target:g}x: "
                     + ("met on every seed)." if not short else f"not met on seed(s) {', '.join(short)})."))
    return lines


def wrap(label, width=14):
    """A row label over several lines, broken after its hyphens, for the chart's x axis."""
    lines, line = [], ""
    for part in label.replace(PRIOR, "").split("-"):
        piece = part if not line else "-" + part
        if line and len(line) + len(piece) > width:
            lines.append(line + "-")
            line = part
        else:
            line += piece
    return "\n".join(lines + [line] + (["+ prior"] if label.endswith(PRIOR) else []))


def validation_front(runs, metric="ndcg@10"):
    """``[(weight, rarity, all, tail)]``: the validation scores of every content-prior grid point
    that each of the runs tried, averaged over the runs (seeds), in grid order."""
    grids = [run["prior"]["grid"] for run in runs]
    points = [key for key in grids[0] if all(key in grid for grid in grids[1:])]
    return [(w, r, mean_std([g[(w, r)]["all"].get(metric) for g in grids])[0],
             mean_std([g[(w, r)]["tail"].get(metric) for g in grids])[0]) for w, r in points]


def tail_at_equal_accuracy(rows, claim, baseline, metric="ndcg@10"):
    """``(lines, bar)``: on validation, each row's best tail score among its grid points whose all-case
    score is at least the baseline's best (its chosen point): the trade-off at equal accuracy.
    Validation only: nothing here reads or chooses on the test split."""
    a, b = rows.get(claim + PRIOR), rows.get(baseline + PRIOR)
    if not a or not b:
        return [], None
    fronts = {label: validation_front(runs, metric) for label, runs in ((claim, a), (baseline, b))}
    if not fronts[claim] or not fronts[baseline]:
        return [], None  # prior files without their validation grid
    bar = max(point[2] for point in fronts[baseline])
    lines = [f"On validation, the tail at equal accuracy (all-case {metric} at least {bar:.4f}, the "
             f"baseline's best point; every grid point each seed tried, averaged over seeds):", ""]
    for label, front in fronts.items():
        eligible = [p for p in front if p[2] >= bar]
        if eligible:
            w, r, whole, tail = max(eligible, key=lambda p: p[3])
            lines.append(f"- {label} + content prior: tail {metric} {tail:.4f} at weight {w:g}, "
                         f"rarity {r:g} (all {whole:.4f})")
        else:
            lines.append(f"- {label} + content prior: no grid point reaches {bar:.4f}")
    return lines, bar


def plot_front(rows, path, title, bar=None, metric="ndcg@10"):
    """Validation all-case against tail-case score of every content-prior grid point, one
    colour per row (mean over its seeds): the trade-off each model offers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    drawn = 0
    for k, (label, runs) in enumerate(rows.items()):
        if not label.endswith(PRIOR):
            continue
        front = validation_front(runs, metric)
        ax.plot([p[2] for p in front], [p[3] for p in front], "o", color=f"C{k // 2}",
                label=f"{label.replace(PRIOR, '')} ({len(runs)} seed(s))", alpha=0.8)
        chosen = [p for p in front if (p[0], p[1]) == (runs[0]["prior"]["weight"], runs[0]["prior"]["rarity"])]
        if chosen:
            ax.plot(chosen[0][2], chosen[0][3], "*", ms=14, color=f"C{k // 2}", mec="black")
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    if bar is not None:
        ax.axvline(bar, color="black", lw=0.8, ls="--", label=f"the baseline's best ({bar:.4f})")
    ax.set_xlabel(f"validation {metric}, all cases")
    ax.set_ylabel(f"validation {metric}, tail cases")
    ax.set_title(title + "\n(every content-prior weight and rarity; star: chosen)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot(rows, path, title, marks=(), part="all", metric="ndcg@10"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(rows)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.2 * len(labels)), 4))
    for k, label in enumerate(labels):
        points = [v for v in values(rows[label], part, metric) if v is not None]
        if not points:
            continue  # no run of this row has the measure: an empty slot, said in the verdict
        mean, std = mean_std(points)
        ax.bar(k, mean, color=f"C{k // 2}", alpha=0.45 if label.endswith(PRIOR) else 0.8)
        if std is not None:
            ax.errorbar(k, mean, yerr=std, color="black", capsize=4)
        ax.plot([k] * len(points), points, "k.", ms=6)
    for k, (at, text) in enumerate(marks):
        ax.axhline(at, color="black", lw=0.8, ls=("--", ":")[k % 2], label=text)
    if marks:
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([wrap(label) for label in labels], fontsize=8)
    ax.set_ylabel(f"test {column_title(part, metric)}")
    ax.set_title(title, fontsize=10)  # long row names: the default size clips it
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="the table's name: results/claim-<name>.md")
    parser.add_argument("--row", action="append", required=True, metavar="LABEL=GLOB[,GLOB]",
                        help="a row: its run files (one per seed); repeat for each row")
    parser.add_argument("--priors", default="", help="content-prior files (globs, comma-separated)")
    parser.add_argument("--choose", action="append", default=[], metavar="LABEL=ROW1,ROW2",
                        help="a row chosen on validation among --row labels (the higher mean "
                        "validation score of --metric over the seeds); repeat for each")
    parser.add_argument("--choose_on_seeds", default="", metavar="SEED[,SEED]",
                        help="make every --choose on these seeds' validation scores alone (each "
                        "candidate must have them); the chosen row then counts with all its seeds")
    parser.add_argument("--baseline", required=True, help="the row to beat (a --row or --choose label)")
    parser.add_argument("--claim", required=True, help="the row that claims (a --row or --choose label)")
    parser.add_argument("--ratio", type=float, default=None, help="claim >= RATIO x baseline")
    parser.add_argument("--floor", type=float, default=None, help="claim above FLOOR")
    parser.add_argument("--columns", default=",".join(f"{p}:{m}" for p, m in COLUMNS),
                        help="the table's columns, SLICE:METRIC comma-separated (slices: all, warm, "
                        "cold, tail, head, as the runs hold them)")
    parser.add_argument("--metric", default="all:ndcg@10",
                        help="SLICE:METRIC the verdict, the ratio and the chart read")
    parser.add_argument("--cold_ratio", type=float, default=None,
                        help="also judge each claim seed's cold / own warm score of --metric's "
                        "measure against this (issue 13's target 2: 0.5 on recall@20)")
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)
    try:
        columns = [parse_column(text) for text in args.columns.split(",") if text.strip()]
        part, metric = parse_column(args.metric, "--metric")
        specs = [parse_row(text) for text in args.row]
        choices = [parse_choice(text) for text in args.choose]
        labels = [label for label, _ in specs] + [label for label, _ in choices]
        for name in (args.baseline, args.claim):
            if name not in labels:
                raise ClaimError(f"--baseline/--claim {name!r}: not a --row or --choose label "
                                 f"({', '.join(labels)})")
        prior_files = sorted({f for p in args.priors.split(",") if p.strip() for f in glob.glob(p.strip())})
        rows, missing = build_rows(specs, prior_files)
        try:
            on_seeds = [int(t) for t in args.choose_on_seeds.split(",") if t.strip()]
        except ValueError:
            raise ClaimError(f"--choose_on_seeds={args.choose_on_seeds!r}: give seeds as whole "
                             "numbers, comma-separated (e.g. 2020)") from None
        chosen_lines = choose_rows(rows, choices, part, metric, on_seeds)
    except ClaimError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    titles = [column_title(p, m) for p, m in columns] + (["cold / warm"] if args.cold_ratio else [])
    header = ("| row | seeds | " + " | ".join(titles) + " | prior (weight/rarity) | machine |\n|"
              + "---|" * (len(titles) + 4))
    table = []
    for label, runs in rows.items():
        chosen = "-"
        if "prior" in runs[0]:
            chosen = ", ".join(prior_point(r['prior']['weight'], r['prior']['rarity'])
                               + (f" (cold floor {r['prior']['cold_floor']:g})" if r["prior"].get("cold_floor") else "")
                               for r in runs)
        machines = sorted({r["machine"] or "?" for r in runs})
        cells = [cell(values(runs, p, m)) for p, m in columns]
        if args.cold_ratio:
            cells.append(cell(cold_over_warm(runs, metric), digits=3))
        table.append(f"| {label} | {', '.join(str(r['seed']) for r in runs)} | "
                     + " | ".join(cells) + f" | {chosen} | {'; '.join(machines)} |")
    command = "python -m recbole_tpad.benchmark.claim " + shlex.join(
        argv if argv is not None else sys.argv[1:])
    lines = [f"# Claim: {args.claim} against {args.baseline} ({args.name})", "",
             f"Command: `{command}`", "",
             "Test split; mean ± std over seeds (std of the seeds given; none for one seed). A '+ content "
             "prior' row is the same checkpoints ranked with the content prior whose weight and rarity "
             "were chosen on validation (`benchmark.content_prior`).", "", header] + table
    if chosen_lines:
        lines += ["", "Chosen on validation (the configuration with the higher mean validation score "
                  "over the seeds; the test split plays no part):", ""] + chosen_lines
    lines += ["", "Verdict (a gap under 2 std of either row is a tie; one seed on a side decides nothing):", ""]
    lines += judge(rows, args.claim, args.baseline, args.ratio, args.floor, part, metric) or ["- nothing to compare"]
    if args.cold_ratio:
        lines += judge_cold_ratio(rows, args.claim, args.cold_ratio, metric)
    for label, files in missing.items():
        lines.append(f"- {label}: no '+ content prior' row, no content-prior file for {', '.join(files)}")
    stem = f"claim-{args.name}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    marks = [(args.floor, f"floor {args.floor:g}")] if args.floor else []
    if args.ratio:
        for suffix in (PRIOR, ""):
            if rows.get(args.baseline + suffix):
                target = args.ratio * mean_std(values(rows[args.baseline + suffix], part, metric))[0]
                marks.append((target, f"{args.ratio:g} x {args.baseline + suffix} ({target:.4f})"))
                break
    plot(rows, out / f"{stem}.png", f"{args.name}: {args.claim} against {args.baseline}", marks, part, metric)
    lines += ["", f"![test {column_title(part, metric)} by row]({stem}.png)"]
    front, bar = tail_at_equal_accuracy(rows, args.claim, args.baseline)
    if front and plot_front(rows, out / f"{stem}-tradeoff.png", f"{args.name}: all against tail cases", bar):
        lines += [""] + front + ["", f"![validation trade-off]({stem}-tradeoff.png)"]
    report = write_results(out, stem, "\n".join(lines), {
        "command": command, "claim": args.claim, "baseline": args.baseline, "ratio": args.ratio,
        "floor": args.floor, "metric": f"{part}:{metric}", "cold_ratio": args.cold_ratio,
        "columns": [f"{p}:{m}" for p, m in columns], "rows": {label: [{k: r[k] for k in ("file", "seed", "slices", "machine")}
                                              for r in runs] for label, runs in rows.items()},
        "missing_priors": missing, "chosen": {label: runs[0]["chosen_from"] for label, runs in rows.items()
                                              if "chosen_from" in runs[0]},
        "chosen_on_seeds": on_seeds or None})
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
