"""Running several models under one protocol and tabulating them; cost benchmarks."""

import json
from pathlib import Path


def write_results(out_dir, stem, markdown, data):
    """``<out_dir>/<stem>.md`` (the table a person reads) and ``<stem>.json`` (the figures)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(markdown.rstrip("\n") + "\n")
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1, default=str))
    return out / f"{stem}.md"


def slice_metrics(trainer, train_data, loader, slices):
    """``({slice: {"recall@20": .., "ndcg@10": ..}}, cases)`` of the trainer's current model on
    ``loader`` (:func:`recbole_tpad.evaluation.evaluate_by_target`'s slices)."""
    result = trainer.evaluate_by_target(train_data, loader)
    return {s: {k: result[s][k] for k in ("recall@20", "ndcg@10")} for s in slices}, result["cases"]


def grid_chart(path, series, marks, xlabel, ylabel, title, log_x=False):
    """A validation grid as lines: ``series`` ``[(label, xs, ys, style)]``, vertical ``marks``
    ``[(x, label, linestyle)]`` (the calibrated or chosen point)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for label, xs, ys, style in series:
        ax.plot(xs, ys, style, label=label)
    for at, label, linestyle in marks:
        ax.axvline(at, color="black", lw=0.8, ls=linestyle, label=label)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
