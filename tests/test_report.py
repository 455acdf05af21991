"""The comparison report: timings are one machine's figures or none."""

from recbole_tpad.benchmark.report import cost_lines, main_table


def a_run(model, machine, epoch_seconds, ndcg):
    return {"model": model, "machine": machine, "device": "cpu", "mean_epoch_seconds": epoch_seconds,
            "epochs_run": 10, "total_seconds": 10 * epoch_seconds, "test_seconds": 1.0,
            "n_test_cases": 1000, "stopped_by": "early stopping", "peak_rss_mb": 1024,
            "test_result": {"ndcg@10": ndcg}, "settings": {}}


def row(table, model):
    return next(line for line in table.splitlines() if line.startswith(f"| {model} |")).split(" | ")


def test_timings_are_not_averaged_or_divided_across_machines():
    gpu, cpu = "x86_64, 16 cores, NVIDIA H100", "x86_64, 2 cores"
    groups = {"SASRec": [a_run("SASRec", gpu, 2.0, 0.050), a_run("SASRec", cpu, 200.0, 0.052)],
              "TPAD": [a_run("TPAD", gpu, 8.0, 0.060), a_run("TPAD", gpu, 10.0, 0.062)]}
    # the metrics are one protocol's whatever ran them; the seconds are not
    sasrec = row(main_table(groups, ["ndcg@10"]), "SASRec")
    assert sasrec[2] == "0.0510 ± 0.0014" and sasrec[3] == "-" and sasrec[6] == "-"
    assert row(main_table(groups, ["ndcg@10"]), "TPAD")[3] == "9.0 ± 1.4"
    cost = "\n".join(cost_lines(groups))
    assert row(cost, "SASRec")[1:3] == ["-", "-"]
    assert row(cost, "TPAD")[1:3] == ["9.0", "-"]  # its own figure, but no ratio to another machine's
    # one machine a side: the ratio is there
    groups["SASRec"] = [a_run("SASRec", gpu, 2.0, 0.050), a_run("SASRec", gpu, 2.0, 0.052)]
    assert row("\n".join(cost_lines(groups)), "TPAD")[1:3] == ["9.0", "4.50"]
