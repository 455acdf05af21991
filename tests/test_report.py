"""The comparison report: timings are one machine's figures or none; seeds of one
configuration only are averaged."""

import json

from recbole_tpad.benchmark.report import cost_lines, main, main_table, versus_best_baseline


def a_run(model, machine, epoch_seconds, ndcg):
    return {"model": model, "machine": machine, "device": "cpu", "mean_epoch_seconds": epoch_seconds,
            "epochs_run": 10, "total_seconds": 10 * epoch_seconds, "test_seconds": 1.0,
            "n_test_cases": 1000, "stopped_by": "early stopping", "peak_rss_mb": 1024,
            "test_result": {"ndcg@10": ndcg}, "best_valid_result": {"ndcg@10": ndcg + 0.01}, "settings": {}}


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


def test_runs_of_one_label_that_are_not_seeds_of_one_configuration_are_not_averaged(tmp_path, capsys):
    folder = tmp_path / "runs" / "d"
    folder.mkdir(parents=True)

    def store(name, seed, sha="a" * 64, **settings):
        run = {**a_run("TPAD-zU", "cpu", 1.0, 0.05), "dataset": "d", "seed": seed, "feature_sha256": sha,
               "settings": {"feature_source": "tpad-zU", "seed": seed, "max_train_minutes": seed - 2000,
                            **settings}}
        (folder / f"{name}.json").write_text(json.dumps(run))

    store("TPAD-zU-s2020", 2020, content_prior=None)
    store("TPAD-zU-s2021", 2021, content_prior="valid")
    assert main(["--dataset=d", "--models=TPAD-zU", f"--out={tmp_path}"]) == 2
    error = capsys.readouterr().err
    assert "TPAD-zU-s2020.json and " in error and "TPAD-zU-s2021.json" in error
    assert "content_prior: None / 'valid'" in error and "--seeds" in error
    # the same settings (seed and time budget aside) on another feature table: refused too
    store("TPAD-zU-s2020", 2020, sha="b" * 64, content_prior="valid")
    assert main(["--dataset=d", "--models=TPAD-zU", f"--out={tmp_path}"]) == 2
    assert "feature table sha256 bbbbbbbbbbbb / aaaaaaaaaaaa" in capsys.readouterr().err
    # seeds of one configuration are averaged; --seeds leaves a stray run out
    store("TPAD-zU-s2020", 2020, content_prior="valid")
    store("TPAD-zU-s2019", 2019, content_prior=None)
    assert main(["--dataset=d", "--models=TPAD-zU", f"--out={tmp_path}", "--seeds=2020,2021"]) == 0
    assert "| TPAD-zU | 2 |" in (tmp_path / "d.md").read_text()
    # one table under two names (a variant kept to read it after the default file was rebuilt)
    # is one configuration; two names on two tables are not
    store("TPAD-zU-s2021", 2021, content_prior="valid", feature_source="tpad-z576-zU")
    assert main(["--dataset=d", "--models=TPAD-zU", f"--out={tmp_path}", "--seeds=2020,2021"]) == 0
    store("TPAD-zU-s2021", 2021, sha="b" * 64, content_prior="valid", feature_source="tpad-z576-zU")
    assert main(["--dataset=d", "--models=TPAD-zU", f"--out={tmp_path}", "--seeds=2020,2021"]) == 2
    error = capsys.readouterr().err
    assert "feature_source: 'tpad-zU' / 'tpad-z576-zU'" in error and "feature table sha256" in error


def test_a_tpad_row_tested_with_its_content_prior_is_said_to_be_so():
    sasrec = [dict(a_run("SASRec", "cpu", 1.0, v), base_model="SASRec") for v in (0.050, 0.052)]
    tpad = [dict(a_run("TPAD-zU", "cpu", 1.0, v), base_model="TPAD") for v in (0.060, 0.062)]
    plain = versus_best_baseline({"SASRec": sasrec, "TPAD-zU": tpad})
    assert "content prior" not in "\n".join(plain)
    for run, weight in zip(tpad, (4.0, 0.0)):
        run["content_prior"] = {"chosen": weight, "rarity": 0.25}
    line = versus_best_baseline({"SASRec": sasrec, "TPAD-zU": tpad})[1]
    assert line.startswith("- TPAD-zU: 0.0610, +19.6% vs SASRec") and "content prior its runs chose on" \
        " validation, weight/rarity 4/0.25, 0/0.25" in line and "benchmark.claim" in line


def test_the_best_baseline_is_chosen_on_validation_not_on_test():
    # GRU4Rec tests higher, SASRec validates higher: SASRec is the baseline TPAD is read against
    sasrec = [dict(a_run("SASRec", "cpu", 1.0, v), best_valid_result={"ndcg@10": 0.07}) for v in (0.050, 0.052)]
    gru = [dict(a_run("GRU4Rec", "cpu", 1.0, v), best_valid_result={"ndcg@10": 0.06}) for v in (0.055, 0.057)]
    tpad = [dict(a_run("TPAD-zU", "cpu", 1.0, v), base_model="TPAD") for v in (0.060, 0.062)]
    lines = versus_best_baseline({"SASRec": sasrec, "GRU4Rec": gru, "TPAD-zU": tpad})
    assert lines[0].startswith("Best baseline by validation ndcg@10: **SASRec** (validation 0.0700, test 0.0510")
    assert lines[1].startswith("- TPAD-zU: 0.0610, +19.6% vs SASRec")
    # a hybrid baseline is judged by its validation score at the prior point it chose
    for run in gru:
        run["content_prior"] = {"chosen": 2.0, "rarity": 0.0, "metric": "ndcg@10", "valid": {"2/0": 0.08}}
    assert "**GRU4Rec** (validation 0.0800" in versus_best_baseline({"SASRec": sasrec, "GRU4Rec": gru})[0]
    # a baseline whose files have no validation figure is named, not silently chosen or dropped
    for run in gru:
        run.pop("best_valid_result"), run.pop("content_prior")
    first = versus_best_baseline({"SASRec": sasrec, "GRU4Rec": gru, "TPAD-zU": tpad})[0]
    assert "**SASRec**" in first and "no validation ndcg@10: GRU4Rec" in first
