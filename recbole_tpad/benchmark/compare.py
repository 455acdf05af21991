"""Run a list of models on one dataset through :func:`recbole_tpad.quick_start.run`, one
result file per model, and write a markdown table of their test metrics.

Resumable: a model whose result file exists for the same settings is not run again.
"""

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from recbole_tpad.paths import properties_dir


def _result_path(out_dir, dataset, model, tag):
    return Path(out_dir) / "runs" / dataset / f"{model}{'-' + tag if tag else ''}.json"


def resolve_variant(label):
    """``TPAD-zU`` -> ``("TPAD", {"feature_source": "tpad-zU"})`` from ``properties/variants.yaml``;
    a label not listed there is a plain model name with no overrides."""
    import yaml

    variants = yaml.safe_load((properties_dir() / "variants.yaml").read_text()) or {}
    if label in variants:
        spec = dict(variants[label])
        return spec.pop("model"), spec
    return label, {}


def pretrained_views(overrides):
    source = str(overrides.get("feature_source", ""))
    return source[len("tpad-"):] if source.startswith("tpad-") else None


def ensure_pretrained(dataset, config_dict=None, config_file_list=None):
    """Run the pretrainer unless its feature files are current for these pretrain settings."""
    from recbole_tpad.data.locate import ensure_dataset
    from recbole_tpad.distill.pretrainer import (feature_path, features_current, pretrain,
                                                 pretrain_config, pretrain_keys)

    known = pretrain_keys()
    given = {k: v for k, v in (config_dict or {}).items() if k in known}
    config = pretrain_config(dataset, config_file_list, given)
    data_dir = ensure_dataset(dataset, config["data_path"])
    if features_current(dataset, config, data_dir):
        print(f"pretrained features of {dataset} are current "
              f"({feature_path(data_dir, dataset, 'zU')})", flush=True)
        return
    print(f"pretraining on {dataset} (properties/pretrain/)", flush=True)
    tic = time.time()
    pretrain(dataset, config_file_list, given)
    print(f"pretraining finished in {time.time() - tic:.0f}s", flush=True)


def run_key(model, dataset, config_dict, config_file_list=None, feature_files=()):
    """What makes two runs the same: the settings, the properties/config files they read and
    the checksums of pretrained feature files they use.

    (Code and data changes are not in it: rerun with a new --tag after changing them.)"""
    root = properties_dir()
    digest = hashlib.sha256(json.dumps(config_dict or {}, sort_keys=True, default=str).encode())
    for path in feature_files:
        from recbole_tpad.data.features import read_metadata

        digest.update(read_metadata(path)["array_sha256"].encode())
    for path in [root / "overall.yaml", root / "model" / f"{model}.yaml",
                 root / "dataset" / f"{dataset}.yaml"] + [Path(p) for p in config_file_list or []]:
        digest.update(path.name.encode() + (path.read_bytes() if path.is_file() else b"-"))
    return digest.hexdigest()


def compare(models, dataset, config_dict=None, out_dir="results", tag="", config_file_list=None):
    """Run each model (skipping finished ones); returns the list of results."""
    from recbole_tpad.data.locate import ensure_dataset
    from recbole_tpad.distill.pretrainer import feature_path
    from recbole_tpad.quick_start import run

    variants = [(label, *resolve_variant(label)) for label in models]
    if any(pretrained_views(overrides) for _, _, overrides in variants):
        ensure_pretrained(dataset, config_dict, config_file_list)
    pretrain_only = pretrain_only_keys()
    recbole_values = {k: v for k, v in (config_dict or {}).items() if k not in pretrain_only}
    results = []
    for k, (label, model, overrides) in enumerate(variants, start=1):
        path = _result_path(out_dir, dataset, label, tag)
        settings = {**recbole_values, **overrides}
        view = pretrained_views(overrides)
        files = ()
        if view:
            data_dir = ensure_dataset(dataset, settings.get("data_path", "dataset/"))
            files = (feature_path(data_dir, dataset, view),)
        key = run_key(model, dataset, settings, config_file_list, files)
        model_name = model
        if path.is_file():
            stored = json.loads(path.read_text())
            if stored.get("run_key") == key:
                print(f"[{k}/{len(models)}] {label} on {dataset}: done earlier ({path})", flush=True)
                results.append(stored)
                continue
        print(f"[{k}/{len(models)}] {label} on {dataset}: running", flush=True)
        tic = time.time()
        result = run(model_name, dataset, config_file_list, dict(settings))
        result["model"] = label
        result["settings"] = settings
        result["run_key"] = key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, default=str))
        print(f"[{k}/{len(models)}] {label} on {dataset}: finished in {time.time() - tic:.0f}s, "
              f"test ndcg@10 {result['test_result'].get('ndcg@10')}", flush=True)
        results.append(result)
    return results


def pretrain_only_keys():
    """Settings only the pretrainer reads (they must not reach RecBole's Config)."""
    from recbole_tpad.distill.pretrainer import pretrain_keys

    return pretrain_keys() - {"seed", "data_path", "checkpoint_dir", "show_progress"}


def plot_results(results, path, metrics=("recall@10", "ndcg@10", "mrr@10")):
    """A grouped bar chart of test metrics per model, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [r["model"] for r in results]
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(models), 3.6))
    for k, metric in enumerate(metrics):
        values = [r["test_result"].get(metric, 0) for r in results]
        bars = ax.bar([i + k * width for i in range(len(models))], values, width, label=metric)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks([i + width * (len(metrics) - 1) / 2 for i in range(len(models))], models)
    ax.set_ylabel("test score")
    ax.set_title(f"{results[0]['dataset']}: test metrics (full ranking)")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--models", default="TPAD,SASRec,GRU4Rec,SRGNN")
    parser.add_argument("--out", default="results")
    parser.add_argument("--tag", default="", help="suffix of the result files (one per setting)")
    parser.add_argument("--note", default="", help="a sentence written under the table (how it was run)")
    args, extra = parser.parse_known_args(argv)

    import recbole_tpad  # noqa: F401
    from recbole_tpad.config import parse_cli_values
    from recbole_tpad.quick_start import format_results

    results = compare(args.models.split(","), args.dataset, parse_cli_values(extra), args.out, args.tag)
    table = format_results(results)
    print(table)
    out = Path(args.out) / f"{args.dataset}{'-' + args.tag if args.tag else ''}.md"
    plot = plot_results(results, out.with_suffix(".png"))
    command = shlex.join(argv if argv is not None else sys.argv[1:])
    threads = sorted({str(r.get("torch_threads", "not recorded")) for r in results})
    out.write_text(f"# {args.dataset}\n\nCommand: `python -m recbole_tpad.benchmark.compare {command}`\n\n"
                   f"{table}\n\nEpochs are capped by `epochs` / early stopping (patience "
                   f"`stopping_step`) on valid NDCG@10. Machine: {platform.machine()}, "
                   f"{os.cpu_count()} cores; torch threads per run: {', '.join(threads)}. {args.note}\n\n"
                   f"![chart]({plot.name})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
