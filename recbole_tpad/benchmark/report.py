"""The comparison's report: result files -> ``<dataset>.md``, two CSVs and two PNG charts.

* ``<dataset>.md``: every test metric at 5/10/20 (mean ± std over seeds where more than one
  ran), epoch time, epochs and why training stopped, total time, peak memory and the machine;
  TPAD against the best baseline; warm and cold test cases separately where the test split
  has targets never seen in training; cost ratios against SASRec and the pretraining time;
* ``<dataset>.csv`` (one row per model: means and stds) and ``<dataset>-runs.csv`` (one row
  per run);
* ``<dataset>.png`` (test NDCG@10 and Recall@20 with std bars) and ``<dataset>-curves.png``
  (validation score per epoch of every run: the evidence that training converged).
"""

import csv
import json
import statistics
from pathlib import Path

from recbole_tpad.prior_grid import prior_point

#: Plugin models that score items from their content features.
CONTENT_MODELS = ("TPAD", "ContentKNN")


def is_id_only(result):
    """Items are ID vectors only: nothing is trained for an item never seen in training."""
    settings = result.get("settings", {})
    return (result.get("base_model", result["model"]) not in CONTENT_MODELS
            or settings.get("use_features") is False)


def is_tpad(result):
    return result.get("base_model", result["model"]) == "TPAD"


def group_by_model(results):
    groups = {}
    for result in results:
        groups.setdefault(result["model"], []).append(result)
    return groups


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def cell(values, digits=4):
    mean, std = mean_std(values)
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def machine_of(runs):
    """The one machine a model's runs ran on, or ``None`` when they ran on several: a GPU's
    seconds and a CPU's do not average into one figure, nor divide into a ratio."""
    found = {r.get("machine") or str(r.get("device", "?")) for r in runs}
    return found.pop() if len(found) == 1 else None


def timings(runs, seconds):
    """``seconds(run)`` of each run, or ``[]`` (shown as ``-``) when they ran on several machines."""
    return [seconds(r) for r in runs] if machine_of(runs) else []


def summarize(runs, metrics):
    """One model's runs -> a flat dict of means and stds (the CSV row)."""
    row = {"model": runs[0]["model"], "seeds": len(runs)}
    for metric in metrics:
        row[metric], row[metric + "_std"] = mean_std([r["test_result"].get(metric) for r in runs])
    row["epoch_seconds"], _ = mean_std(timings(runs, lambda r: r.get("mean_epoch_seconds")))
    row["epochs"], _ = mean_std([r.get("epochs_run") for r in runs])
    row["total_minutes"], _ = mean_std(timings(runs, lambda r: r["total_seconds"] / 60))
    row["peak_rss_gb"] = max(r.get("peak_rss_mb") or r.get("process_peak_rss_mb") or 0 for r in runs) / 1024
    row["test_seconds_per_1000"], _ = mean_std(timings(
        [r for r in runs if r.get("n_test_cases")], lambda r: 1000 * r["test_seconds"] / r["n_test_cases"]))
    row["stopped_by"] = ", ".join(sorted({str(r.get("stopped_by", "-")) for r in runs}))
    row["device"] = ", ".join(sorted({str(r.get("device", "-")) for r in runs}))
    return row


def main_table(groups, metrics):
    header = ["model", "seeds"] + [m.replace("recall", "Recall").replace("ndcg", "NDCG").replace("mrr", "MRR")
                                   for m in metrics] + ["s/epoch", "epochs", "stopped by", "total min",
                                                        "peak GB", "device"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, runs in groups.items():
        row = summarize(runs, metrics)
        cells = [model, str(len(runs))] + [cell([r["test_result"].get(m) for r in runs]) for m in metrics]
        cells += [cell(timings(runs, lambda r: r.get("mean_epoch_seconds")), 1),
                  cell([r.get("epochs_run") for r in runs], 1), row["stopped_by"],
                  cell(timings(runs, lambda r: r["total_seconds"] / 60), 1),
                  f"{row['peak_rss_gb']:.1f}", row["device"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(a_runs, b_runs, metric="ndcg@10"):
    """:func:`verdict_values` of two rows' runs."""
    return verdict_values([r["test_result"].get(metric) for r in a_runs],
                          [r["test_result"].get(metric) for r in b_runs])


def verdict_values(a_values, b_values):
    """In words: a win, a loss or a tie (a difference under 2 std of either row), or not
    decided when either row has a single seed."""
    a, a_std = mean_std(a_values)
    b, b_std = mean_std(b_values)
    if a_std is None or b_std is None:
        return "one seed on a side: not decided"
    spread = 2 * max(a_std, b_std)
    if abs(a - b) < spread:
        return f"a tie (the gap is under 2 std = {spread:.4f})"
    return f"{'better' if a > b else 'worse'} by more than 2 std ({spread:.4f})"


def validation_value(run, metric="ndcg@10"):
    """The validation figure behind a run's test figures: at the content-prior point the run chose
    on validation where it chose one, else RecBole's best validation result; None when the run
    file has neither (files from before ``best_valid_result`` keep only ``best_valid_score``,
    which is ``valid_metric``, NDCG@10 unless a run set it otherwise)."""
    prior = run.get("content_prior") or {}
    if prior.get("chosen") is not None and prior.get("metric", metric) == metric:
        point = prior.get("valid", {}).get(prior_point(prior["chosen"], prior.get("rarity")))
        if point is not None:
            return point
    value = (run.get("best_valid_result") or {}).get(metric)
    if value is None and metric == str((run.get("settings") or {}).get("valid_metric")
                                       or "NDCG@10").lower():
        value = run.get("best_valid_score")
    return value


def versus_best_baseline(groups, metric="ndcg@10"):
    """Lines saying where each TPAD variant stands against the best non-TPAD model, the best
    being chosen by mean validation score (the test split decides nothing)."""
    def mean_of(runs, read):
        return mean_std([read(r) for r in runs])[0]

    tests = {m: mean_of(runs, lambda r: r["test_result"].get(metric)) for m, runs in groups.items()}
    valids = {m: mean_of(runs, lambda r: validation_value(r, metric)) for m, runs in groups.items()}
    baselines = [m for m, runs in groups.items() if not is_tpad(runs[0]) and tests[m] is not None]
    chosen = [m for m in baselines if valids[m] is not None]
    if not chosen:
        return []
    best = max(chosen, key=valids.get)
    lines = [f"Best baseline by validation {metric}: **{best}** (validation {valids[best]:.4f}, "
             f"test {tests[best]:.4f}, {len(groups[best])} seed(s))."]
    unvalidated = sorted(set(baselines) - set(chosen))
    if unvalidated:
        lines[0] += (f" Not in the choice, their run files having no validation {metric}: "
                     + ", ".join(unvalidated) + ".")
    for model, value in tests.items():
        if is_tpad(groups[model][0]) and value is not None and tests[best] > 0:
            lines.append(f"- {model}: {value:.4f}, {100 * (value / tests[best] - 1):+.1f}% vs {best}: "
                         f"{verdict(groups[model], groups[best], metric)}" + prior_caveat(groups[model]))
    return lines


def prior_caveat(runs):
    """Where a row's runs were tested with a content prior they chose on validation, the words
    that say so: its figures are not its model's own scores, and the like-for-like baseline is an
    ID model with the same prior (``benchmark.content_prior``, compared by ``benchmark.claim``)."""
    priors = [r.get("content_prior") or {} for r in runs]
    if not any(p.get("chosen") for p in priors):
        return ""
    points = ", ".join(prior_point(p["chosen"], p.get("rarity")) for p in priors
                       if p.get("chosen") is not None)
    return (f" (tested with the content prior its runs chose on validation, weight/rarity {points}; the "
            "baseline ranks by its own scores: `python -m recbole_tpad.benchmark.content_prior` "
            "gives it the same prior, and `python -m recbole_tpad.benchmark.claim` compares the two "
            "like for like)")


def cold_table(groups):
    """Warm vs cold test cases, where the test split has targets never seen in training."""
    rows = []
    for model, runs in groups.items():
        parts = [r.get("test_result_by_target") for r in runs]
        if not all(parts) or not parts[0]["cases"]["cold"]:
            continue
        cases = parts[0]["cases"]
        how = "untrained ID vector: cannot rank cold items" if is_id_only(runs[0]) else "content features"
        if runs[0].get("base_model") == "ContentKNN":
            how = "content similarity (no training)"
        if runs[0].get("new_item_scoring"):  # the model's own account (runs since issue 13)
            how = runs[0]["new_item_scoring"]
        elif is_tpad(runs[0]) and not is_id_only(runs[0]) and runs[0]["settings"].get("use_id_embedding", True):
            from recbole_tpad.model.tpad import describe_new_item_scoring

            settings = runs[0]["settings"]  # the variant's settings: older runs, older defaults
            how = describe_new_item_scoring(True, True, settings.get("cold_item_ids"),
                                            settings.get("item_attributes") or (),
                                            settings.get("train_negatives") == "seen")
        rows.append(f"| {model} | {cases['warm']} | {cases['cold']} | "
                    f"{cell([p['warm']['recall@20'] for p in parts])} | {cell([p['cold']['recall@20'] for p in parts])} | "
                    f"{cell([p['warm']['ndcg@10'] for p in parts])} | {cell([p['cold']['ndcg@10'] for p in parts])} | {how} |")
    if not rows:
        return ""
    return "\n".join(["| model | warm cases | cold cases | warm Recall@20 | cold Recall@20 | warm NDCG@10 "
                      "| cold NDCG@10 | a cold item is scored by |", "|---|---|---|---|---|---|---|---|"] + rows)


def slice_table(groups):
    """Test NDCG@10 and Recall@20 on the tail and head slices (targets by training count)."""
    rows, thresholds = [], None
    for model, runs in groups.items():
        parts = [r.get("test_result_by_target") for r in runs]
        if not all(parts) or "tail" not in parts[0]:
            continue
        thresholds = thresholds or parts[0]
        rows.append(f"| {model} | {cell([p['all']['ndcg@10'] for p in parts])} | "
                    f"{cell([p['tail']['ndcg@10'] for p in parts])} | {cell([p['tail']['recall@20'] for p in parts])} | "
                    f"{cell([p['head']['ndcg@10'] for p in parts])} | {cell([p['head']['recall@20'] for p in parts])} |")
    if not rows:
        return ""
    cases = thresholds["cases"]
    return "\n".join([
        f"Tail: the {cases['tail']} test cases ({100 * cases['tail'] / cases['all']:.0f}%) whose target has at "
        f"most {thresholds['tail_max_train_count']} training interactions (cold targets included); head: the "
        f"{cases['head']} cases ({100 * cases['head'] / cases['all']:.0f}%) whose target has at least "
        f"{thresholds['head_min_train_count']}. The thresholds are chosen so that each slice holds about "
        "20% of the test cases.", "",
        "| model | all NDCG@10 | tail NDCG@10 | tail Recall@20 | head NDCG@10 | head Recall@20 |",
        "|---|---|---|---|---|---|"] + rows)


def plot_popularity(groups, path):
    """Test NDCG@10 by target-popularity bucket (equal numbers of test cases per bucket)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {}
    for model, runs in groups.items():
        parts = [r.get("test_result_by_target") for r in runs]
        if all(parts) and parts[0].get("buckets"):
            buckets = parts[0]["buckets"]
            series[model] = (buckets, [mean_std([p["buckets"][k]["ndcg@10"] for p in parts])[0]
                                       for k in range(len(buckets))])
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for k, (model, (buckets, values)) in enumerate(series.items()):
        ax.plot(range(len(values)), values, marker="o", color=plt.cm.tab20(k % 20), label=model,
                linewidth=2 if is_tpad(groups[model][0]) else 1.2)
    buckets = next(iter(series.values()))[0]
    ax.set_xticks(range(len(buckets)), [f"{b['min_count']}-{b['max_count']}" for b in buckets])
    return _save_line_chart(fig, ax, groups, path, "training interactions of the target item "
                            "(bucket of 20% of test cases)", "test NDCG@10",
                            "NDCG@10 from rare to popular targets")


def _save_line_chart(fig, ax, groups, path, xlabel, ylabel, title):
    """Labels, a '<dataset>: title' heading and a legend; save the chart to ``path``."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    dataset = next(iter(groups.values()))[0]["dataset"]
    ax.set_title(f"{dataset}: {title}")
    ax.legend(fontsize=7, ncol=2, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def protocol_line(results):
    """How the test cases were ranked, as the runs' settings say."""
    settings = results[0].get("settings", {})
    if settings.get("exclude_history") and settings.get("drop_cold_targets"):
        return ("Protocol: the eSASRec benchmark's (RecTools): items of the user's own history are never "
                "ranked, and test cases whose target never occurs in training are dropped "
                "(`exclude_history: True`, `drop_cold_targets: True`).")
    return ("Protocol: RecBole's: every item is ranked, history items included, and every test case "
            "counts (`exclude_history: False`, `drop_cold_targets: False`).")


def pretraining_seconds(result):
    """Seconds the pretrainer spent on the feature file a TPAD run read (from the run folder's
    ``summary.json``: every call's, for a resumed run whose checkpoint kept the clock), or
    ``None``."""
    from recbole_tpad.variants import pretrained_views
    from recbole_tpad.data.features import read_metadata
    from recbole_tpad.distill.settings import feature_path
    from recbole_tpad.distill.state import RunClock

    settings = result.get("settings", {})
    views = pretrained_views(settings)
    if not views:
        return None
    data_dir = Path(settings.get("data_path", "dataset/")) / result["dataset"]
    path = feature_path(data_dir, result["dataset"], views[1], views[0]["feature_prefix"])
    try:
        work_dir = Path(read_metadata(path)["producer"]["work_dir"])
        summary = json.loads((work_dir / "summary.json").read_text())
    except (FileNotFoundError, KeyError, ValueError):
        return None
    return sum(summary.get(k, 0) for k in RunClock.PARTS)


def cost_lines(groups, base="SASRec"):
    if base not in groups:
        return []
    b = summarize(groups[base], [])
    lines = [f"| model | s/epoch | × {base} | full-ranking s per 1,000 test cases | × {base} | pretraining |",
             "|---|---|---|---|---|---|"]
    for model, runs in groups.items():
        if not is_tpad(runs[0]) and model != base:
            continue
        row = summarize(runs, [])
        pre = pretraining_seconds(runs[0]) if is_tpad(runs[0]) else None
        same = machine_of(runs) is not None and machine_of(runs) == machine_of(groups[base])
        ratio = lambda a, c: f"{a / c:.2f}" if a and c and same else "-"  # noqa: E731
        seconds = lambda v, digits: f"{v:.{digits}f}" if v else "-"  # noqa: E731
        lines.append(f"| {model} | {seconds(row['epoch_seconds'], 1)} | {ratio(row['epoch_seconds'], b['epoch_seconds'])} | "
                     f"{seconds(row['test_seconds_per_1000'], 2)} | "
                     f"{ratio(row['test_seconds_per_1000'], b['test_seconds_per_1000'])} | "
                     f"{f'{pre / 60:.1f} min' if pre else '-'} |")
    return lines


def plot_bars(groups, path, metrics=("ndcg@10", "recall@20")):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(groups)
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(2 + 1.1 * len(models), 3.8))
    for k, metric in enumerate(metrics):
        stats = [mean_std([r["test_result"].get(metric) for r in groups[m]]) for m in models]
        bars = ax.bar([i + k * width for i in range(len(models))], [s[0] or 0 for s in stats], width,
                      yerr=[s[1] or 0 for s in stats], capsize=2, label=f"test {metric}",
                      edgecolor=["black" if is_tpad(groups[m][0]) else "none" for m in models])
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks([i + width * (len(metrics) - 1) / 2 for i in range(len(models))], models,
                  rotation=30, ha="right")
    ax.set_ylabel("test score (full ranking)")
    dataset = next(iter(groups.values()))[0]["dataset"]
    seeds = max(len(runs) for runs in groups.values())
    spread = f"mean over {seeds} seeds, bars = std" if seeds > 1 else "one seed"
    ax.set_title(f"{dataset}: test metrics ({spread}); TPAD variants outlined")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_curves(groups, path):
    """Validation score per epoch of every run (the first seed solid, others dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for k, (model, runs) in enumerate(groups.items()):
        color = plt.cm.tab20(k % 20)
        for j, run in enumerate(runs):
            curve = run.get("valid_curve") or []
            if curve:
                ax.plot([p["epoch"] + 1 for p in curve], [p["valid_score"] for p in curve],
                        color=color, linestyle="-" if j == 0 else ":", linewidth=1.2,
                        label=model if j == 0 else None, marker="." if len(curve) < 8 else None)
    return _save_line_chart(fig, ax, groups, path, "epoch", "valid NDCG@10",
                            "validation curves (best epoch's model is tested)")


def write_csvs(groups, metrics, out, stem):
    rows = [summarize(runs, metrics) for runs in groups.values()]
    with open(out / f"{stem}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fields = ["model", "seed", *metrics, "epochs_run", "stopped_by", "mean_epoch_seconds",
              "test_seconds", "n_test_cases", "total_seconds", "peak_rss_mb", "device", "machine", "run_key"]
    with open(out / f"{stem}-runs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for runs in groups.values():
            for r in runs:
                writer.writerow({**r, **r["test_result"], "peak_rss_mb": r.get("peak_rss_mb")
                                 or r.get("process_peak_rss_mb")})


def write_report(results, dataset, out_dir="results", tag="", command="", note="", missing=()):
    """Write the markdown report, CSVs and charts; returns the markdown's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{dataset}{'-' + tag if tag else ''}"
    groups = group_by_model(results)
    metrics = list(results[0]["test_result"])
    write_csvs(groups, metrics, out, stem)
    bars = plot_bars(groups, out / f"{stem}.png")
    curves = plot_curves(groups, out / f"{stem}-curves.png")
    popularity = plot_popularity(groups, out / f"{stem}-popularity.png")
    machines = sorted({r.get("machine") or r.get("device", "?") for r in results})
    threads = sorted({str(r.get("torch_threads")) for r in results})
    parts = [f"# {dataset}", "", f"Command: `{command}`", "",
             main_table(groups, metrics), "",
             f"Test metrics of the epoch with the best valid NDCG@10; full ranking over all items. "
             f"Epochs are capped by `epochs`, early stopping (`stopping_step`) and, where set, "
             f"`max_train_minutes`; see the validation curves below. Measured on: "
             f"{'; '.join(machines)} (torch threads per run: {', '.join(threads)}). {note}".strip(), "",
             protocol_line(results), ""]
    per_seed = [model for model, runs in groups.items()
                if len({r.get("feature_sha256") for r in runs}) > 1 and all(map(pretrained_per_seed, runs))]
    if per_seed:
        parts += [f"Each seed of {', '.join(per_seed)} pretrained its own features "
                  "(`--pretrain-per-seed`), so their std includes the pretraining's; the other "
                  "rows' seeds share one feature table.", ""]
    if missing:
        parts += [f"**Not in the table (failed; see their unit.log):** {', '.join(missing)}", ""]
    versus = versus_best_baseline(groups)
    if versus:
        parts += ["## TPAD against the best baseline", ""] + versus + [""]
    cold = cold_table(groups)
    if cold:
        parts += ["## Warm and cold test cases", "",
                  "A test case is cold when its target item never occurs in the training split "
                  "(as a target or in a history). ID-only models have no trained vector for such "
                  "an item, so they cannot rank it; TPAD scores it from its content features.", "",
                  cold, ""]
    slices = slice_table(groups)
    if slices:
        parts += ["## Tail and head test cases", "", slices, ""]
        if popularity:
            parts += [f"![NDCG@10 by target popularity]({popularity.name})", ""]
    cost = cost_lines(groups)
    if cost:
        parts += ["## Cost, as each run recorded it", ""] + cost + [
            "", "Each unit's own timings: units that ran at the same time (`--jobs`) shared the "
            "machine, and units finished earlier may have run under another load, so these ratios "
            "are indicative; `python -m recbole_tpad.benchmark.epoch_time` measures them side by "
            "side in one process. A model whose runs were made on several machines has no time "
            "figure (`-`), and a ratio is given only between rows made on the same machine. "
            "Pretraining: the stages of the run that wrote the feature file, summed, where it ran "
            "(its `summary.json`); the frozen lower-layer pass over the items is done once per item "
            "set and shared by later runs (ablations, derived datasets), which then show seconds for it.", ""]
    parts += [f"![test metrics]({bars.name})", "", f"![validation curves]({curves.name})", ""]
    path = out / f"{stem}.md"
    path.write_text("\n".join(parts))
    return path


class MixedRuns(ValueError):
    """Stored runs of one label that are not seeds of one configuration."""


def pretrained_per_seed(run):
    """Whether the run read features its own seed pretrained (``compare --pretrain-per-seed``,
    or the default pretraining seed's run beside them)."""
    seed = run.get("seed", run.get("settings", {}).get("seed"))
    return seed is not None and run.get("pretrain_seed") == seed


def pooled_settings(run):
    """The run's settings as seeds of one row compare them: a run on its own seed's pretraining
    names the feature source without that seed (``tpad-s2021-zU`` -> ``tpad-zU``)."""
    from recbole_tpad.data.sources import FeatureSource

    settings = dict(run.get("settings", {}))
    if pretrained_per_seed(run) and settings.get("feature_source"):
        settings["feature_source"] = FeatureSource.parse(
            settings["feature_source"]).without_pretrain_seed(run["pretrain_seed"]).name
    return settings


#: settings that say which feature table a run read, and nothing about how it used it
TABLE_NAMES = frozenset({"feature_source", "feature_file"})


def check_poolable(label, runs, paths):
    """Refuse to average runs of ``label`` that differ in more than their seed and the settings
    a resumed run may change (:data:`recbole_tpad.checkpoints.RESUMABLE_CHANGES`), or that read
    different feature tables: e.g. a run made before a default changed, or on features
    pretrained again, stored under the same name as new seeds. Tables may differ where every
    seed read its own seed's pretraining (:func:`pretrained_per_seed`). The settings that only
    name the table (:data:`TABLE_NAMES`) may differ where both runs recorded the same table
    (``feature_sha256``): one table under two names, say a variant added to keep reading a table
    after the default file was rebuilt, is one configuration."""
    from recbole_tpad.checkpoints import RESUMABLE_CHANGES

    ignored = RESUMABLE_CHANGES | {"seed"}
    first = runs[0]
    for run, path in zip(runs[1:], paths[1:]):
        a, b = (pooled_settings(r) for r in (first, run))
        tables = first.get("feature_sha256"), run.get("feature_sha256")
        same_table = all(tables) and tables[0] == tables[1]
        keys = sorted(k for k in set(a) | set(b) if k not in ignored and a.get(k) != b.get(k)
                      and not (same_table and k in TABLE_NAMES))
        described = [f"{k}: {a.get(k)!r} / {b.get(k)!r}" for k in keys[:6]]
        if all(tables) and not same_table and not (pretrained_per_seed(first)
                                                   and pretrained_per_seed(run)):
            described.append(f"feature table sha256 {tables[0][:12]} / {tables[1][:12]}")
        if described:
            raise MixedRuns(
                f"{paths[0]} and {path}: two runs of {label!r} that are not seeds of one "
                f"configuration ({'; '.join(described)}). Give --seeds the runs that belong "
                "together, store the others under another --tag, or re-run them.")


def load_runs(out_dir, dataset, labels, seeds=None, tag=""):
    """Stored results of ``labels`` (every seed found, or ``seeds``; a unit run without
    ``--seeds`` is stored without a seed suffix), in that order; seeds of one configuration
    only (:func:`check_poolable`)."""
    found = []
    folder = Path(out_dir) / "runs" / dataset
    for label in labels:
        name = f"{label}{'-' + tag if tag else ''}"
        paths = [folder / f"{name}-s{seed}.json" for seed in seeds] if seeds else sorted(
            folder.glob(f"{name}-s*.json")) + [folder / f"{name}.json"]
        paths = [p for p in paths if p.is_file() and (p.stem == name or p.stem.rsplit("-s", 1)[0] == name)]
        if not paths:
            raise FileNotFoundError(f"no stored result for {name} in {folder}")
        runs = [json.loads(p.read_text()) for p in paths]
        check_poolable(name, runs, paths)
        found += runs
    return found


def main(argv=None):
    """``python -m recbole_tpad.benchmark.report --dataset=D --models=A,B``: the report from stored
    runs alone (units made by several compare calls or machines), without running anything."""
    import argparse
    import shlex
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--models", required=True, help="labels, comma-separated, in table order")
    parser.add_argument("--out", default="results")
    parser.add_argument("--tag", default="")
    parser.add_argument("--seeds", default="", help="comma-separated (default: every stored seed)")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s] or None
    try:
        results = load_runs(args.out, args.dataset, args.models.split(","), seeds, args.tag)
    except (FileNotFoundError, MixedRuns) as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    command = "python -m recbole_tpad.benchmark.report " + shlex.join(
        argv if argv is not None else sys.argv[1:])
    print(write_report(results, args.dataset, args.out, args.tag, command, args.note).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
