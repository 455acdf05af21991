"""Write what a finished pretraining run cost and learned into ``results/``.

    python -m recbole_tpad.benchmark.pretrain_report --dataset=amazon-sports [--key=value ...]

Reads the run's work folder (the same settings select the same folder as ``--stage=pretrain``):
``summary.json`` (seconds per stage, peak memory), the loss log in ``checkpoint.pt`` and
``curves.png``; writes ``results/pretrain-<dataset>.md`` and copies the curves beside it.
``--held_out_cases=N`` (0: all) also re-reads the finished run's held-out report on N validation
cases (the run reads the first 2,000), from its checkpoint.
"""

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

from recbole_tpad.distill.state import RunClock


def _mean(rows, key, part):
    values = [r[key] for r in rows if key in r]
    if not values:
        return float("nan")
    k = max(1, len(values) // 10)
    chunk = values[:k] if part == "first" else values[-k:]
    return sum(chunk) / len(chunk)


def _ratio(value, popularity):
    """``value / popularity``; NaN where either is missing or popularity is 0 (no division error)."""
    if value is None or not popularity:
        return float("nan")
    return value / popularity


def threads_text(summary):
    """How many torch threads the run had: one count, or each call's where they differed (the
    features then are not those of a run on either count alone)."""
    counts = summary.get("threads_by_call") or [summary["threads"]]
    if len(set(counts)) == 1:
        return f"{counts[0]} torch thread{'' if counts[0] == 1 else 's'}"
    shown = ", ".join("?" if c is None else str(c) for c in counts)
    return (f"torch threads by call {shown} (a thread count sums in its own order, so these "
            "features are not a one-count run's)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", default="results")
    parser.add_argument("--held_out_cases", type=int, default=None,
                        help="also re-read the finished run's held-out report on this many validation "
                             "cases (0: all; the run's own report reads the first 2,000); encodes the "
                             "items' transfer states again (minutes)")
    args, extra = parser.parse_known_args(argv)

    import torch

    from recbole_tpad.config import parse_cli_values
    from recbole_tpad.data.locate import ensure_dataset
    from recbole_tpad.distill.settings import pretrain_config, work_dir_for

    config = pretrain_config(args.dataset, config_dict=parse_cli_values(extra))
    work = work_dir_for(args.dataset, config, ensure_dataset(args.dataset, config["data_path"]))
    summary_path = work / "summary.json"
    if not summary_path.is_file():
        print(f"error: {work} holds no finished run; run --stage=pretrain first", file=sys.stderr)
        return 2
    summary = json.loads(summary_path.read_text())
    log = torch.load(work / "checkpoint.pt", weights_only=True)["log"]
    s1 = [r for r in log if r["stage"] == "stage1"]
    s2 = [r for r in log if r["stage"] == "stage2"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"pretrain-{args.dataset}.png"
    shutil.copy(work / "curves.png", png)
    resumed = summary.get("resumed_at")
    total = summary.get("total_s")  # every call's, when the checkpoint kept the run's clock
    if total is None and not resumed:  # a summary.json from before runs kept the clock
        total = summary["seconds_this_call"]
    shown, label = (total, "total") if total is not None else (summary["seconds_this_call"], "this call")
    calls = summary.get("calls") or 1
    if not resumed:
        resume_note = []
    elif label == "total":
        resume_note = [f"The run took {calls} calls; the last resumed it at {resumed} from its checkpoint. "
                       "The times add up every call's work to its last checkpoint (what an interrupted "
                       "call did after that was redone, and is counted, in the next).", ""]
    else:
        resume_note = [f"This call resumed the run at {resumed} from its checkpoint: the times above are "
                       "this call's alone; the earlier calls' are not in them (their checkpoint predates "
                       "the run clock).", ""]
    lines = [
        f"# TPAD pretraining on {args.dataset}", "",
        f"Command: `python run_recbole_tpad.py --stage=pretrain --dataset={args.dataset}"
        + "".join(f" {e}" for e in extra) + "` (settings: `properties/pretrain/`)", "",
        f"{summary['items']} items, {summary['sessions']} training sessions; backbone "
        f"{config['backbone']}, LoRA on the top {config['lora_top_layers']} layers, "
        f"{config['stage1_steps']} stage-1 and {config['stage2_steps']} stage-2 steps; "
        f"{threads_text(summary)} on {summary.get('machine', 'a machine the run did not record')}.", "",
        "| part | seconds |", "|---|---|",
        *[f"| {k[:-2].replace('_', ' ')} | {summary[k]:.0f} |" for k in RunClock.PARTS if k in summary],
        f"| **{label}** | **{shown:.0f}** ({shown / 60:.1f} min) |", "",
        *resume_note,
        f"Peak memory (process RSS): {summary['peak_rss_mb']:.0f} MB.", "",
        "| curve | first tenth | last tenth |", "|---|---|---|",
        f"| stage 1 generation loss | {_mean(s1, 'gen', 'first'):.3f} | {_mean(s1, 'gen', 'last'):.3f} |",
        *[f"| stage 2 {key} | {_mean(s2, key, 'first'):.3f} | {_mean(s2, key, 'last'):.3f} |"
          for key in ("next", "hmie_item", "hmie_session", "amie_t", "amie_k", "teacher", "gen")
          if any(key in r for r in s2)],
        "", f"Chance level of the next-item loss: log(batch) = log({config['stage2_batch']}) "
        f"= {math.log(config['stage2_batch']):.3f}.", ""]
    held_out = summary.get("held_out")
    teacher = config.get("transition_teacher")
    reread = []
    if held_out and args.held_out_cases is not None:
        from recbole_tpad.distill.pretrainer import Pretrainer

        reread = [Pretrainer(args.dataset, config).reread_held_out(args.held_out_cases or None)]
    if held_out:
        pmi = held_out.get("transfer_pmi_recall@20")
        if pmi is None:  # written before the log q correction: its one ranking is the score alone
            held_out = {**held_out, "transfer_recall@20": float("nan")}
            pmi = summary["held_out"]["transfer_recall@20"]
            lines += ["This run's held-out report predates the log q correction (below): it ranked by "
                      "the score alone.", ""]
        pop = held_out["popularity_recall@20"]
        lines += ["Held out (validation cases, never the test split): the next item ranked among all "
                  f"{summary['items']} items by the Transfer-MLLM's estimate of p(next | session) "
                  "(its next-item score plus log q, q being how often stage 2 drew the item as a "
                  "target; in-batch InfoNCE learns the score minus log q), by the score alone, "
                  "by the last item's own z_T (cosine / temperature plus log q: the content "
                  "without the session state) and by popularity (q); beside them, by how often "
                  "each item followed the last one in the training sessions (ID transition "
                  "counts, a first-order Markov chain: no content). Session query: "
                  f"`{config.get('session_query', 'state')}`."
                  + (f" Transition teacher: `{config['transition_teacher']}`; its column ranks by the "
                     "last item's teacher vector (cosine / temperature plus log q), and the "
                     "teacher's ratio is that Recall@20 over popularity's."
                     if teacher else ""), "",
                  "| cases | Transfer-MLLM Recall@20 | score alone | last item's z_T | popularity Recall@20 | ratio | ID transition counts |"
                  + (" teacher's last item | teacher's ratio |" if teacher else ""),
                  "|---|---|---|---|---|---|---|" + ("---|---|" if teacher else "")]
        for report, score_alone in [(held_out, pmi)] + [(r, r["transfer_pmi_recall@20"]) for r in reread]:
            pop = report["popularity_recall@20"]
            lines.append(
                f"| {report['cases']} | {report['transfer_recall@20']:.4f} | "
                f"{score_alone:.4f} | {report.get('last_item_recall@20', float('nan')):.4f} | "
                f"{pop:.4f} | {_ratio(report['transfer_recall@20'], pop):.2f} | "
                f"{report.get('markov_recall@20', float('nan')):.4f} |"
                + (f" {report.get('teacher_recall@20', float('nan')):.4f} | "
                   f"{_ratio(report.get('teacher_recall@20'), pop):.2f} |"
                   if teacher else ""))
        lines.append("")
        if reread:
            lines += [f"The second row re-reads the finished run on {reread[0]['cases']} validation "
                      "cases (`python -m recbole_tpad.benchmark.pretrain_report "
                      f"--dataset={args.dataset} --held_out_cases={args.held_out_cases}`); the first "
                      "is the run's own report.", ""]
        if teacher:
            lines += ["The teacher's ratio is the reference for the Transfer-MLLM's: both learn the "
                      "same training sessions' transitions. A ratio well below the teacher's means "
                      "the distillation leaves signal behind; one above it means the content adds "
                      "what the co-occurrences lack.", ""]
    lines += [f"![curves]({png.name})", ""]
    (out / f"pretrain-{args.dataset}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
