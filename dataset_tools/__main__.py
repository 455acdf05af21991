"""``python -m dataset_tools <command>``: make, check and describe RecBole atomic datasets.

Commands: validate, sessionize, cold-split, from-amazon, demo, stats (each has --help).
A dataset is named by its folder: ``DIR`` holds ``<basename(DIR)>.inter`` and friends.
"""

import argparse
import sys
from pathlib import Path


def _dataset(path):
    path = Path(path)
    return path, path.name


def cmd_validate(args):
    from dataset_tools.validate import validate_dataset

    directory, name = _dataset(args.dir)
    report = validate_dataset(directory, args.name or name)
    for line in report.errors:
        print(f"ERROR {line}")
    for line in report.warnings:
        print(f"WARNING {line}")
    print(f"{args.name or name}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    return 0 if report.ok else 1


def cmd_sessionize(args):
    from dataset_tools.sessions import sessionize

    source, source_name = _dataset(args.source)
    out = Path(args.out) if args.out else source.parent / f"{source_name}-session"
    ratios = tuple(float(x) for x in args.ratios.split(","))
    counts = sessionize(source, source_name, out, out.name, gap=args.gap, min_length=args.min_length,
                        max_length=args.max_length, min_item_count=args.min_item_count,
                        ratios=ratios, seed=args.seed, max_prefix=args.max_prefix)
    before = counts.pop("before_item_filtering")
    print(f"{out}: {before['sessions_min_length']} sessions of {args.min_length}+ items with "
          f"{before['interactions_min_length']} interactions before item filtering; after: {counts}")
    return 0


def cmd_cold_split(args):
    from dataset_tools.cold import cold_split

    source, source_name = _dataset(args.source)
    out = Path(args.out) if args.out else source.parent / f"{source_name}-cold"
    counts = cold_split(source, source_name, out, out.name, share=args.share, seed=args.seed,
                        max_prefix=args.max_prefix)
    print(f"{out}: {counts}")
    return 0


def cmd_from_amazon(args):
    from dataset_tools.from_amazon import convert

    out = Path(args.out)
    report = convert(args.reviews, args.meta, out, args.name or out.name, images_dir=args.images,
                     download_images=args.download_images, k=args.kcore, workers=args.workers,
                     timeout=args.timeout, retries=args.retries)
    for line in report.examples:
        print(f"SKIPPED {line}")
    print(report.summary())
    for path, where in report.truncated.items():
        print(f"error: {path}: {where}; what came before was converted and written. Re-download "
              "the file to convert all of it.", file=sys.stderr)
    return 1 if report.truncated else 0


def cmd_demo(args):
    from dataset_tools.demo import generate_demo

    out = Path(args.out)
    counts = generate_demo(out, out.name, items_per_category=args.items_per_category,
                           n_sessions=args.sessions, seed=args.seed, images=not args.no_images)
    print(f"{out}: {counts}")
    return 0


def cmd_stats(args):
    from dataset_tools.stats import dataset_stats, format_table

    directory, name = _dataset(args.dir)
    print(format_table(dataset_stats(directory, args.name or name)))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m dataset_tools", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a dataset's atomic files (exit 1 on errors)")
    p.add_argument("dir", help="dataset folder, e.g. dataset/amazon-sports")
    p.add_argument("--name", help="dataset name if it differs from the folder name")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("sessionize", help="user histories -> sessions split by session")
    p.add_argument("source", help="user-based dataset folder, e.g. dataset/amazon-sports")
    p.add_argument("--out", help="output folder (default: <source>-session beside it)")
    p.add_argument("--gap", type=float, default=None,
                   help="new session after this many seconds (default: a new calendar day)")
    p.add_argument("--min-length", type=int, default=2)
    p.add_argument("--max-length", type=int, default=None, help="keep the last N items of longer sessions")
    p.add_argument("--min-item-count", type=int, default=1, help="drop items seen fewer times")
    p.add_argument("--ratios", default="0.8,0.1,0.1", help="train,valid,test shares of sessions")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--max-prefix", type=int, default=50, help="longest prefix written (MAX_ITEM_LIST_LENGTH)")
    p.set_defaults(func=cmd_sessionize)

    p = sub.add_parser("cold-split", help="leave-one-out split with a share of items never in training")
    p.add_argument("source", help="user-based dataset folder, e.g. dataset/amazon-sports")
    p.add_argument("--out", help="output folder (default: <source>-cold beside it)")
    p.add_argument("--share", type=float, default=0.1, help="share of items held out of training")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--max-prefix", type=int, default=50, help="longest prefix written (MAX_ITEM_LIST_LENGTH)")
    p.set_defaults(func=cmd_cold_split)

    p = sub.add_parser("from-amazon", help="raw Amazon reviews + metadata (2014 or 2018) -> atomic files")
    p.add_argument("--reviews", required=True, help="reviews_<Cat>_5.json.gz or <Cat>_5.json.gz")
    p.add_argument("--meta", required=True, help="meta_<Cat>.json.gz")
    p.add_argument("--out", required=True, help="output dataset folder (its name names the files)")
    p.add_argument("--name", help="dataset name if it differs from the folder name")
    p.add_argument("--images", help="local folder of images named <ASIN>.jpg/.png")
    p.add_argument("--download-images", action="store_true", help="fetch missing images from their URLs")
    p.add_argument("--workers", type=int, default=8, help="downloads in flight at once")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--kcore", type=int, default=0, help="keep users and items with at least k reviews")
    p.set_defaults(func=cmd_from_amazon)

    p = sub.add_parser("demo", help="generate the embedded multimodal demo dataset")
    p.add_argument("out", nargs="?", default="dataset/demo")
    p.add_argument("--items-per-category", type=int, default=150)
    p.add_argument("--sessions", type=int, default=6000)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--no-images", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("stats", help="a table of a dataset's size, lengths and content coverage")
    p.add_argument("dir")
    p.add_argument("--name")
    p.set_defaults(func=cmd_stats)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
