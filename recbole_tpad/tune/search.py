"""Ray Tune driver: one trial is one :func:`recbole_tpad.quick_start.run`, reported per epoch.

The driver prepares the dataset (and TPAD's default features) once, so concurrent trials never
race to build them, then hands every trial absolute paths: Ray runs trials in their own
directories, possibly on other machines of a cluster. Each trial imports the plugin first (so
RecBole's shims are applied in every worker process), uses ``cpus_per_trial`` torch threads,
reports the validation score after every epoch (ASHA stops the weak ones) together with
RecBole's checkpoints (so ``--resume`` continues a trial where it stopped), and reports the test
metrics and its process's peak memory when it finishes.
"""

import csv
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from recbole_tpad.runtime import peak_rss_mb
from recbole_tpad.tune.cluster import connect_to_cluster
from recbole_tpad.tune.space import default_space_file, param_space, read_space_file

#: Config keys the driver sets per trial (never exported into the best config).
DRIVER_KEYS = ("checkpoint_dir", "show_progress")


class SearchSetupError(ValueError):
    """The search cannot start (existing experiment, nothing to resume, bad options)."""


@dataclass
class SearchOutcome:
    """What a finished search wrote and found."""

    experiment_dir: Path
    rows: list = field(default_factory=list)
    table_file: Path = None
    csv_file: Path = None
    best_config_file: Path = None
    seconds: float = 0.0


def _copy_checkpoints(saved_dir, target_dir):
    """RecBole's best and ``-latest`` files of this trial -> ``target_dir``."""
    for path in Path(saved_dir).glob("*.pth"):
        shutil.copy2(path, Path(target_dir) / path.name)


def _restored_resume_file(saved_dir):
    """After ``--resume``: put the trial's last reported checkpoint back, return its -latest file."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    saved_dir.mkdir(parents=True, exist_ok=True)
    with checkpoint.as_directory() as directory:
        _copy_checkpoints(directory, saved_dir)
    latest = sorted(saved_dir.glob("*-latest.pth"))
    return str(latest[-1]) if latest else None


def trial(params, *, model, dataset, config_file_list, fixed, threads):
    """The Ray Tune function trainable: train one configuration and report as it goes."""
    import recbole_tpad  # noqa: F401  (RecBole's shims in this worker process, TPAD registered)
    import ray
    import torch
    from ray import tune

    from recbole_tpad.quick_start import run

    torch.set_num_threads(threads)
    trial_dir = Path(tune.get_context().get_trial_dir())
    saved_dir = trial_dir / "saved"
    values = {"state": "WARNING", **fixed, **params,  # RecBole's INFO log stays in the trial's log/
              "checkpoint_dir": str(saved_dir), "show_progress": False}
    resume_file = _restored_resume_file(saved_dir)
    epochs_done = [0]
    node = ray.get_runtime_context().get_node_id()[:8]  # which machine of a cluster ran it

    def report(epoch_idx, valid_score):
        epochs_done[0] = epoch_idx + 1
        with tempfile.TemporaryDirectory() as directory:
            _copy_checkpoints(saved_dir, directory)
            tune.report({"valid_score": float(valid_score), "epoch": epoch_idx + 1,
                         "peak_rss_mb": peak_rss_mb(), "node": node},
                        checkpoint=tune.Checkpoint.from_directory(directory))

    result = run(model, dataset, config_file_list, values, callback_fn=report,
                 resume_file=resume_file)
    final = {"valid_score": float(result["best_valid_score"]), "epoch": epochs_done[0],
             "peak_rss_mb": peak_rss_mb(), "node": node,
             "mean_epoch_seconds": result["mean_epoch_seconds"],
             "complete": True}
    final.update({f"test/{k}": float(v) for k, v in result["test_result"].items()})
    final.update({f"valid/{k}": float(v) for k, v in result["best_valid_result"].items()})
    tune.report(final)


def _searcher(name, seed, max_concurrent):
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if name == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        searcher = HyperOptSearch(random_state_seed=seed)
        return ConcurrencyLimiter(searcher, max_concurrent) if max_concurrent else searcher
    return BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent or 0)


def _scheduler(name, max_epochs, grace_period):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if name == "fifo":
        return FIFOScheduler()
    if name != "asha":
        raise SearchSetupError(f"unknown scheduler {name!r}; use asha or fifo")
    # max_t is one past the epoch cap: ASHA must never stop a trial that is about to finish
    # (its test evaluation comes after the last epoch).
    return ASHAScheduler(time_attr="epoch", max_t=max_epochs + 1,
                         grace_period=max(1, min(grace_period, max_epochs)), reduction_factor=2)


def prepare_search(model, dataset, config_file_list=None, config_dict=None):
    """The config the trials share, with the dataset (and TPAD's default features) made ready
    here, once. Returns ``(config, fixed)``: ``fixed`` is what every trial gets as config_dict."""
    from recbole_tpad.config import Config
    from recbole_tpad.data.dataset import ensure_default_features
    from recbole_tpad.quick_start import prepare_dataset

    config_dict = dict(config_dict or {})
    config = Config(model=model, dataset=dataset, config_file_list=config_file_list,
                    config_dict=config_dict)
    prepare_dataset(config)
    ensure_default_features(config)
    fixed = dict(config_dict)
    fixed["data_path"] = str(Path(config["data_path"]).parent)  # absolute (Config made it so)
    return config, fixed


def run_search(model, dataset, *, space_file=None, searcher="random", num_samples=4,
               scheduler="asha", grace_period=3, cpus_per_trial=1, gpus_per_trial=0,
               max_concurrent_trials=None, time_budget_s=None, config_file_list=None,
               config_dict=None, name=None, storage="ray_results", ray_address=None,
               ray_temp_dir=None, resume=False, out=None, verbose=1):
    """Search ``model``'s hyperparameters on ``dataset`` with Ray Tune and write the results.
    ``model`` may be a variant of ``properties/variants.yaml``: its settings are then fixed in
    every trial (under ``config_dict``), and the space is its model's.

    Args:
        space_file: search-space yaml (default ``properties/hyper/<model>.yaml``).
        searcher: ``random``, ``grid`` or ``hyperopt`` (model-based, TPE).
        num_samples: trials to sample (with ``grid``: repeats of the whole grid).
        scheduler: ``asha`` (stops weak trials early on per-epoch validation) or ``fifo``.
        grace_period: epochs every trial runs before ASHA may stop it (TPAD's residual
            fusion starts from its ID-only model and is slow in the first epochs).
        cpus_per_trial: Ray CPUs per trial, and the torch threads each trial uses.
        ray_address: an existing cluster (``ray start --head`` prints it); default: a local Ray.
        ray_temp_dir: Ray's session files for a local Ray (default ``<storage>/.ray``).
        resume: continue the experiment ``<storage>/<name>`` (finished trials are kept,
            interrupted ones continue from their last epoch checkpoint).
        out: also write ``tune-<name>.md``, ``.csv`` and ``.best.yaml`` into this folder.

    Returns:
        :class:`SearchOutcome`.
    """
    import ray
    from ray import tune

    from recbole_tpad.variants import prepare_variant

    started = time.time()
    # Trials checkpoint every epoch; on small data that is often, and Ray warns each time.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    label = model  # a model, or a variant of properties/variants.yaml: its settings are fixed values
    model, config_dict = prepare_variant(label, dataset, config_dict, config_file_list)
    space_file = Path(space_file) if space_file else default_space_file(model)
    raw_space = read_space_file(space_file)
    space = param_space(raw_space, searcher, space_file)
    config, fixed = prepare_search(model, dataset, config_file_list, config_dict)
    metric, mode = "valid_score", ("max" if config["valid_metric_bigger"] else "min")
    name = name or f"{label}-{dataset}-{searcher}"
    storage = Path(storage).resolve()
    experiment_dir = storage / name
    if resume and not (experiment_dir / "tuner.pkl").is_file():
        raise SearchSetupError(f"nothing to resume at {experiment_dir}: start it without --resume")
    if not resume and experiment_dir.exists():
        raise SearchSetupError(f"{experiment_dir} exists: pass --resume to continue it, or a new --name")

    if not ray.is_initialized():
        if ray_address:
            connect_to_cluster(ray_address, log_to_driver=verbose > 0)
        else:
            temp_dir = Path(ray_temp_dir).resolve() if ray_temp_dir else storage / ".ray"
            # Ray puts unix sockets under <temp>/session_<date>_<pid>/sockets/ (107 bytes at most).
            if len(str(temp_dir)) > 45:
                raise SearchSetupError(f"Ray's temp folder {temp_dir} is too long for its unix "
                                       "sockets: pass a shorter --ray-temp-dir (e.g. /tmp/ray-tpad)")
            temp_dir.mkdir(parents=True, exist_ok=True)
            ray.init(_temp_dir=str(temp_dir), include_dashboard=False,
                     log_to_driver=verbose > 0)
    trainable = tune.with_resources(
        tune.with_parameters(trial, model=model, dataset=dataset,
                             config_file_list=[str(Path(f).resolve()) for f in config_file_list or []],
                             fixed=fixed, threads=max(1, int(cpus_per_trial))),
        {"cpu": cpus_per_trial, "gpu": gpus_per_trial})

    if resume:
        tuner = tune.Tuner.restore(str(experiment_dir), trainable, resume_errored=False)
    else:
        tuner = tune.Tuner(
            trainable, param_space=space,
            tune_config=tune.TuneConfig(
                metric=metric, mode=mode,
                search_alg=_searcher(searcher, config["seed"], max_concurrent_trials),
                scheduler=_scheduler(scheduler, config["epochs"], grace_period),
                num_samples=num_samples, time_budget_s=time_budget_s,
                max_concurrent_trials=max_concurrent_trials if searcher != "hyperopt" else None),
            run_config=tune.RunConfig(
                name=name, storage_path=str(storage), verbose=verbose,
                failure_config=tune.FailureConfig(max_failures=0),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    grid = tuner.fit()

    rows = result_rows(grid, list(raw_space), config["valid_metric"], mode)
    outcome = SearchOutcome(experiment_dir=experiment_dir, rows=rows)
    command = " ".join(["python", *sys.argv]) if sys.argv and sys.argv[0] else "(Python API)"
    given = dict(config_dict or {})  # the user's fixed values go into the best config
    write_outputs(outcome, experiment_dir, "trials", rows, list(raw_space), model, dataset,
                  given, config, command, searcher, scheduler)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        write_outputs(SearchOutcome(experiment_dir), Path(out), f"tune-{name}", rows,
                      list(raw_space), model, dataset, given, config, command, searcher, scheduler)
    outcome.seconds = time.time() - started
    return outcome


def result_rows(grid, param_names, valid_metric, mode):
    """One dict per trial, best first: params, status, best validation score, test metrics."""
    rows = []
    for result in grid:
        metrics = result.metrics or {}
        history = result.metrics_dataframe
        scores = ([] if history is None or "valid_score" not in history
                  else [s for s in history["valid_score"].tolist() if not math.isnan(s)])
        best = (max(scores) if mode == "max" else min(scores)) if scores else None
        if result.error is not None:
            status = "error"
        elif metrics.get("complete"):
            status = "complete"
        else:
            status = "stopped early"
        error_text = ""
        if result.error is not None:
            lines = [l for l in str(result.error).strip().splitlines() if l.strip()]
            error_text = lines[-1][:200] if lines else type(result.error).__name__
        row = {"trial": metrics.get("trial_id") or (result.config or {}).get("trial_id", "?"),
               "status": status,
               **{p: (result.config or {}).get(p) for p in param_names},
               f"best valid {valid_metric}": best,
               "epochs": metrics.get("epoch"),
               "s/epoch": metrics.get("mean_epoch_seconds"),
               "peak_rss_mb": metrics.get("peak_rss_mb"),
               "node": metrics.get("node"),
               "error": error_text,
               "path": result.path}
        row.update({k: v for k, v in metrics.items() if k.startswith("test/")})
        rows.append(row)
    sign = 1 if mode == "max" else -1
    key = f"best valid {valid_metric}"
    rows.sort(key=lambda r: (r[key] is None, -sign * (r[key] or 0)))
    return rows


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def write_outputs(outcome, folder, stem, rows, param_names, model, dataset, fixed, config,
                  command, searcher, scheduler):
    """``<stem>.md`` (sorted table), ``<stem>.csv`` and ``<stem>.best.yaml`` (best trial's config)."""
    folder = Path(folder)
    valid_key = f"best valid {config['valid_metric']}"
    test_key = f"test/{config['valid_metric'].lower()}"
    columns = [c for c in rows[0] if c not in ("path", "error") and not c.startswith("test/")] if rows else []
    md_columns = columns + ([test_key] if any(test_key in r for r in rows) else []) + ["error"]
    lines = [f"# Ray Tune search: {model} on {dataset}", "",
             f"Command: `{command}`", "",
             f"Searcher {searcher}, scheduler {scheduler}, {len(rows)} trials, sorted by "
             f"{valid_key} (validation split; test metrics are only for finished trials).", "",
             "| " + " | ".join(md_columns) + " |", "|" + "---|" * len(md_columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in md_columns) + " |")
    outcome.table_file = folder / f"{stem}.md"
    outcome.table_file.write_text("\n".join(lines) + "\n")

    outcome.csv_file = folder / f"{stem}.csv"
    all_columns = list(dict.fromkeys(c for r in rows for c in r))
    with open(outcome.csv_file, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=all_columns)
        writer.writeheader()
        writer.writerows(rows)

    usable = [r for r in rows if r[valid_key] is not None]
    if usable:
        best = usable[0]
        values = {k: v for k, v in fixed.items() if k not in DRIVER_KEYS}
        values.update({k: best[k] for k in param_names})
        values = {"model": model, "dataset": dataset, **values}
        header = (f"# Best trial {best['trial']} of a Ray Tune search ({best['status']}): "
                  f"{valid_key} = {best[valid_key]:.4f}\n# made by: {command}\n"
                  f"# re-run: python run_recbole_tpad.py --config_files={folder / (stem + '.best.yaml')}\n")
        outcome.best_config_file = folder / f"{stem}.best.yaml"
        outcome.best_config_file.write_text(header + yaml.safe_dump(_plain(values), sort_keys=False))
    return outcome


def _plain(values):
    """numpy scalars -> Python values, and a string read as the trial's Config read it
    (:func:`recbole_tpad.config.read_value`: ``"[1, 2]"`` is the list a trial used), so the
    yaml records the value the trial actually used and reads back the same."""
    from recbole_tpad.config import read_value

    out = {}
    for key, value in values.items():
        value = value.item() if hasattr(value, "item") and not isinstance(value, (list, dict)) else value
        out[key] = read_value(value)
    return out
