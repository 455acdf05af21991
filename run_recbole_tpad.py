"""Train and evaluate TPAD or any RecBole model on one dataset under the plugin's protocol.

Examples:
    python run_recbole_tpad.py --model=TPAD --dataset=demo      # pretrains first when demo.tpad-zU.npy is missing
    python run_recbole_tpad.py --model=SASRec --dataset=amazon-sports --epochs=30
    python run_recbole_tpad.py --model=TPAD --dataset=amazon-sports --encoder=gru --fusion=sum
    python run_recbole_tpad.py --model=TPAD-zU-SS-default --dataset=amazon-sports   # a results row by its label
    python run_recbole_tpad.py --stage=features --dataset=amazon-sports
    python run_recbole_tpad.py --stage=pretrain --dataset=demo
    python run_recbole_tpad.py --model=TPAD --dataset=demo --feature_source=text-minilm   # ablation
    python run_recbole_tpad.py --stage=recommend --checkpoint=saved/X.pth --session=ID1,ID2 --topk=10
    python run_recbole_tpad.py --stage=recommend --checkpoint=saved/X.pth --session=NEW1 --new-items=new.item
    python run_recbole_tpad.py --stage=recommend --checkpoint=saved/X.pth --session=ID1,ID2 --times=0,86400

Any further --key=value overrides a config value (see properties/ and RecBole's docs).
"""

import argparse
import sys
from pathlib import Path


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", "-m", default=None,
                        help="TPAD (default), a RecBole model such as SASRec, GRU4Rec, SRGNN, "
                             "NARM, STAMP, BERT4Rec, or a variant of properties/variants.yaml (a "
                             "model and its settings: TPAD-zU-SS-default, SASRecPub-SS, ...; "
                             "--key=value still wins); a 'model:' in --config_files is used if not given")
    parser.add_argument("--dataset", "-d", default=None,
                        help="a folder under data_path, a shared dataset (amazon-sports) or demo "
                             "(default); a 'dataset:' in --config_files is used if not given")
    parser.add_argument("--config_files", default=None,
                        help="yaml files applied after properties/, separated by spaces or commas")
    parser.add_argument("--stage", choices=["train", "features", "pretrain", "recommend"], default="train",
                        help="train: train and test the model (default); features: build the "
                             "text-encoder feature file TPAD reads; pretrain: run TPAD's MLLM "
                             "pretrainer (properties/pretrain/) and write the tpad-zU/zK/zT "
                             "feature files (then train with --feature_source=tpad-zU); recommend: "
                             "top-K items for sessions from a trained checkpoint")
    parser.add_argument("--resume", default=None,
                        help="continue an interrupted run: saved/<run>-latest.pth (after the last "
                             "validated epoch) or saved/<run>.pth (after the best one)")
    parser.add_argument("--no-save", action="store_true", help="keep no checkpoint (test the last epoch)")
    parser.add_argument("--force", action="store_true", help="--stage=features: rebuild even if current")
    parser.add_argument("--list-models", action="store_true", help="print the models that can be run")
    recommend = parser.add_argument_group("--stage=recommend")
    recommend.add_argument("--checkpoint", help="a checkpoint a training run wrote (saved/X.pth)")
    recommend.add_argument("--session", help="item ids of one session, oldest first, comma-separated")
    recommend.add_argument("--sessions", help="a file with one session a line (batch scoring)")
    recommend.add_argument("--out", help="--sessions: write the results here (.json, else TSV)")
    # --topk=K (how many items, default 10) is read from the --key=value settings: in training
    # runs the same key is RecBole's list of cut-offs
    recommend.add_argument("--exclude-seen", action="store_true", help="drop the session's own items")
    recommend.add_argument("--strict", action="store_true", help="refuse unknown item ids instead of skipping them")
    recommend.add_argument("--new-items", help="an atomic .item file of items added after training: "
                           "encoded as the checkpoint's features were, then ranked (TPAD, ContentKNN)")
    recommend.add_argument("--times", help="--session: the items' times, oldest first, comma-separated, "
                           "in the time field's scale (a model trained with time_gaps: True needs them)")
    recommend.add_argument("--times-file", help="--sessions: the sessions' times, one line a session "
                           "line, one time per item (a model trained with time_gaps: True)")
    return parser


def value_from_files(files, key, default):
    """``key`` as the last of ``files`` sets it (e.g. a tuner's best-config yaml), else ``default``."""
    import yaml

    value = default
    for path in files or []:
        with open(path) as handle:
            loaded = yaml.safe_load(handle) or {}
        value = loaded.get(key, value)
    return value


def main(argv=None):
    args, extra = build_parser().parse_known_args(argv)
    import recbole_tpad  # noqa: F401  (applies RecBole shims, registers TPAD)
    from recbole_tpad.config import ConfigError, parse_cli_values
    from recbole_tpad.data.features import FeatureFileError
    from recbole_tpad.data.locate import UnknownDatasetError
    from recbole_tpad.distill.settings import PretrainConfigError
    from recbole_tpad.distill.sessions import SessionSourceError
    from recbole_tpad.checkpoints import CheckpointError
    from recbole_tpad.losses import ObjectiveConfigError
    from recbole_tpad.quick_start import DatasetInvalidError, build_features, format_results, run
    from recbole_tpad.registry import UnknownModelError, plugin_models, recbole_models
    from recbole_tpad.variants import prepare_variant, variants

    if args.list_models:
        print("plugin:", ", ".join(plugin_models()))
        print("RecBole sequential:", ", ".join(recbole_models()))
        print("variants (properties/variants.yaml):", ", ".join(variants()))
        return 0
    if args.stage == "recommend":
        return recommend_stage(args, extra)
    try:
        config_dict = parse_cli_values(extra)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    files = args.config_files.replace(",", " ").split() if args.config_files else None
    missing = [f for f in files or [] if not Path(f).is_file()]
    if missing:
        print(f"error: --config_files: {', '.join(missing)} does not exist", file=sys.stderr)
        return 2
    args.model = args.model or value_from_files(files, "model", "TPAD")
    args.dataset = args.dataset or value_from_files(files, "dataset", "demo")
    try:
        if args.stage == "pretrain":
            from recbole_tpad.distill.pretrainer import pretrain

            paths = pretrain(args.dataset, files, config_dict)
            for view, path in paths.items():
                print(f"{view}: {path}")
            return 0
        if args.stage == "features":
            path = build_features(args.dataset, files, config_dict, force=args.force)
            print(f"feature file: {path}")
            return 0
        model, config_dict = prepare_variant(args.model, args.dataset, config_dict, files)
        result = run(model, args.dataset, files, config_dict, saved=not args.no_save,
                     resume_file=args.resume)
    except (UnknownModelError, UnknownDatasetError, DatasetInvalidError, FeatureFileError,
            PretrainConfigError, SessionSourceError, ObjectiveConfigError, CheckpointError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_results([dict(result, model=args.model)]))  # a variant by its label
    return 0


def recommend_stage(args, extra):
    """``--stage=recommend``: print (or write) the top-K items of sessions from a checkpoint."""
    import time

    from recbole_tpad.config import parse_cli_values

    from recbole_tpad.checkpoints import CheckpointError
    from recbole_tpad.data.features import FeatureFileError
    from recbole_tpad.distill.settings import PretrainConfigError
    from recbole_tpad.new_items import NewItemsError
    from recbole_tpad.recommend import (Recommender, RecommendError, read_sessions, read_times,
                                        write_results)

    if not args.checkpoint or bool(args.session is not None) == bool(args.sessions):
        print("error: --stage=recommend needs --checkpoint=saved/X.pth and either --session=ID1,ID2 "
              "or --sessions=FILE", file=sys.stderr)
        return 2
    if (args.times is not None and args.session is None) or (args.times_file and not args.sessions):
        print("error: --times goes with --session (one time per item, comma-separated), "
              "--times-file with --sessions (one line a session)", file=sys.stderr)
        return 2
    try:
        options = parse_cli_values(extra)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    topk = options.pop("topk", 10)
    data_path = options.pop("data_path", None)
    if options or not isinstance(topk, int) or isinstance(topk, bool) or topk < 1:
        print(f"error: --stage=recommend takes --topk=K (a whole number of at least 1) and "
              f"--data_path=DIR, not {options or {'topk': topk}}", file=sys.stderr)
        return 2
    try:
        sessions = ([[t for t in args.session.split(",") if t.strip()]] if args.session is not None
                    else read_sessions(args.sessions))
        times = None
        if args.times is not None:
            times = [[t.strip() for t in args.times.split(",") if t.strip()]]
        elif args.times_file:
            times = read_times(args.times_file, sessions, args.sessions)
        recommender = Recommender.from_checkpoint(args.checkpoint, data_path)
        print(f"loaded {args.checkpoint} ({recommender.config['model']} on "
              f"{recommender.config['dataset']}) in {recommender.load_seconds:.1f}s", file=sys.stderr)
        if args.new_items:
            tic = time.perf_counter()
            added = recommender.add_items(args.new_items)
            print(f"added {len(added)} new item(s) from {args.new_items} in "
                  f"{time.perf_counter() - tic:.1f}s", file=sys.stderr)
        if times is not None and not recommender.reads_times:
            print(f"note: this {recommender.config['model']} does not read time gaps; the times are "
                  "not used", file=sys.stderr)
        tic = time.perf_counter()
        results = recommender.recommend_batch(sessions, topk, args.exclude_seen, args.strict, times)
        seconds = time.perf_counter() - tic
    except (CheckpointError, RecommendError, FeatureFileError, NewItemsError, PretrainConfigError,
            OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(sessions)} session(s) in {seconds:.2f}s ({len(sessions) / max(seconds, 1e-9):.0f} "
          "sessions/s)", file=sys.stderr)
    if args.sessions:
        path = write_results(results, args.out or Path(args.sessions).with_suffix(".recommended.tsv"))
        print(f"results: {path}")
        return 0
    result = results[0]
    if result.fallback:
        print("no known item in the session: the most popular items", file=sys.stderr)
    print("| rank | item | score | title |\n|---|---|---|---|")
    for rank, rec in enumerate(result.items, start=1):
        print(f"| {rank} | {rec.item} | {rec.score:.4f} | {rec.title} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
