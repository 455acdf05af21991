"""Search hyperparameters of TPAD or any RecBole model with Ray Tune, locally or on a cluster.

Examples:
    python run_hyper.py --model=TPAD --dataset=demo --num-samples=4
    python run_hyper.py --model=SASRec --dataset=amazon-sports --searcher=hyperopt --epochs=3
    python run_hyper.py --model=TPAD --dataset=demo --ray-address=127.0.0.1:6379 --cpus-per-trial=2
    python run_hyper.py --model=TPAD --dataset=demo --resume          # continue an interrupted search

--model may be a variant of properties/variants.yaml (TPAD-zU-SS-default): its settings are
fixed in every trial. The search space is properties/hyper/<model>.yaml unless --space is
given. Further --key=value pairs fix config values for every trial (e.g. --epochs=10). Results go to
<storage>/<name>/trials.md, trials.csv and trials.best.yaml; re-run the best trial with
python run_recbole_tpad.py --config_files=<storage>/<name>/trials.best.yaml
"""

import argparse
import sys


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", "-m", default="TPAD")
    parser.add_argument("--dataset", "-d", default="demo")
    parser.add_argument("--space", default=None, help="search-space yaml (default properties/hyper/<model>.yaml)")
    parser.add_argument("--searcher", choices=["random", "grid", "hyperopt"], default="random")
    parser.add_argument("--scheduler", choices=["asha", "fifo"], default="asha",
                        help="asha stops weak trials early on their per-epoch validation score")
    parser.add_argument("--num-samples", type=int, default=4)
    parser.add_argument("--grace-period", type=int, default=3, help="epochs before ASHA may stop a trial")
    parser.add_argument("--cpus-per-trial", type=float, default=1,
                        help="Ray CPUs per trial; also the torch threads of each trial (default 1)")
    parser.add_argument("--gpus-per-trial", type=float, default=0)
    parser.add_argument("--max-concurrent", type=int, default=None, help="trials running at once")
    parser.add_argument("--time-budget", type=float, default=None, help="seconds; no new trials after it")
    parser.add_argument("--config_files", default=None, help="yaml files applied after properties/")
    parser.add_argument("--name", default=None, help="experiment name (default <model>-<dataset>-<searcher>)")
    parser.add_argument("--storage", default="ray_results", help="where Ray Tune keeps the experiment")
    parser.add_argument("--ray-address", default=None, help="connect to a running Ray cluster")
    parser.add_argument("--ray-temp-dir", default=None,
                        help="local Ray's session files (default <storage>/.ray)")
    parser.add_argument("--resume", action="store_true", help="continue <storage>/<name>")
    parser.add_argument("--out", default=None, help="also write tune-<name>.md/.csv/.best.yaml here")
    return parser


def main(argv=None):
    args, extra = build_parser().parse_known_args(argv)
    import recbole_tpad  # noqa: F401  (RecBole shims, TPAD registered)
    from recbole_tpad.config import parse_cli_values
    from recbole_tpad.data.features import FeatureFileError
    from recbole_tpad.data.locate import UnknownDatasetError
    from recbole_tpad.quick_start import DatasetInvalidError
    from recbole_tpad.registry import UnknownModelError
    from recbole_tpad.tune.search import SearchSetupError, run_search
    from recbole_tpad.tune.space import SearchSpaceError

    try:
        fixed = parse_cli_values(extra)
        files = args.config_files.replace(",", " ").split() if args.config_files else None
        outcome = run_search(
            args.model, args.dataset, space_file=args.space, searcher=args.searcher,
            num_samples=args.num_samples, scheduler=args.scheduler, grace_period=args.grace_period,
            cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
            max_concurrent_trials=args.max_concurrent, time_budget_s=args.time_budget,
            config_file_list=files, config_dict=fixed, name=args.name, storage=args.storage,
            ray_address=args.ray_address, ray_temp_dir=args.ray_temp_dir, resume=args.resume,
            out=args.out)
    except (ValueError, UnknownModelError, UnknownDatasetError, DatasetInvalidError,
            FeatureFileError, SearchSetupError, SearchSpaceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(outcome.table_file.read_text())
    print(f"search took {outcome.seconds:.0f} s; table {outcome.table_file}, csv {outcome.csv_file}, "
          f"best config {outcome.best_config_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
