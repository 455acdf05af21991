"""benchmark.claim: a claim's rows over seeds, matched content-prior figures, the verdict."""

import json

import pytest

from recbole_tpad.benchmark import claim


def write_run(folder, name, seed, ndcg, tail=0.01, checkpoint=None, valid=None):
    part = {"ndcg@10": ndcg, "recall@20": 2 * ndcg}
    run = {"model": name, "seed": seed, "test_result": dict(part), "machine": "test box",
           "best_valid_result": {"ndcg@10": ndcg if valid is None else valid},
           "saved_model_file": checkpoint or f"/disk/saved/{name}-s{seed}/{name}.pth",
           "test_result_by_target": {"all": part, "tail": {"ndcg@10": tail, "recall@20": 2 * tail},
                                     "head": {"ndcg@10": 3 * ndcg, "recall@20": float("nan")}}}
    path = folder / f"{name}-s{seed}.json"
    path.write_text(json.dumps(run))
    return path


def write_prior(folder, name, seed, ndcg, weight=4.0, rarity=0.0, disk="/other"):
    part = {"ndcg@10": ndcg, "recall@20": 2 * ndcg}
    prior = {"checkpoint": f"{disk}/saved/{name}-s{seed}/{name}.pth", "chosen_weight": weight,
             "chosen_rarity": rarity, "test": {"0/0": {}, f"{weight:g}/{rarity:g}": {
                 "all": part, "tail": part, "head": part}}}
    path = folder / f"content-prior-{name}-s{seed}.json"
    path.write_text(json.dumps(prior))
    return path


def run_claim(tmp_path, *extra):
    out = tmp_path / "out"
    code = claim.main(["--name=t", f"--out={out}", "--baseline=B", "--claim=A",
                       f"--row=B={tmp_path}/B-*.json", f"--row=A={tmp_path}/A-*.json",
                       f"--priors={tmp_path}/content-prior-*.json", *extra])
    return code, out


def test_a_clear_win_over_three_seeds_with_matched_priors(tmp_path):
    for seed, (a, b) in zip((2020, 2021, 2022), ((0.040, 0.030), (0.041, 0.031), (0.042, 0.030))):
        write_run(tmp_path, "A", seed, a)
        write_run(tmp_path, "B", seed, b)
        # the prior was computed on another disk: matched by unit folder and file name
        write_prior(tmp_path, "A", seed, a + 0.004)
        write_prior(tmp_path, "B", seed, b + 0.001)
    code, out = run_claim(tmp_path, "--ratio=1.1", "--floor=0.035")
    assert code == 0
    report = (out / "claim-t.md").read_text()
    assert "| A | 2020, 2021, 2022 | 0.0410 ± 0.0010 |" in report
    assert "| A + content prior | 2020, 2021, 2022 | 0.0450 ± 0.0010 |" in report
    verdicts = [line for line in report.splitlines() if line.startswith("- **")]
    assert len(verdicts) == 2
    assert "target 1.1x: met" in verdicts[0] and "better by more than 2 std" in verdicts[0]
    assert "above 0.035" in verdicts[1] and "better by more than 2 std" in verdicts[1]
    data = json.loads((out / "claim-t.json").read_text())
    assert [r["seed"] for r in data["rows"]["A + content prior"]] == [2020, 2021, 2022]
    assert (out / "claim-t.png").stat().st_size > 0


def test_a_gap_within_two_std_is_a_tie_and_a_short_ratio_is_not_met(tmp_path):
    for seed, (a, b) in zip((1, 2, 3), ((0.033, 0.030), (0.030, 0.034), (0.036, 0.032))):
        write_run(tmp_path, "A", seed, a)
        write_run(tmp_path, "B", seed, b)
    code, out = run_claim(tmp_path, "--ratio=1.1", "--floor=0.0355")
    report = (out / "claim-t.md").read_text()
    assert code == 0 and "a tie" in report and "not met" in report and "not above 0.0355" in report
    assert "+ content prior |" not in report
    # beside the verdict, each seed's difference: the signs the means hide
    assert ("  - paired by seed (1, 2, 3): ahead on 2 of 3, by +0.0030, -0.0040, +0.0040 "
            "(mean +0.0010 ± 0.0044; sign test p = 1.00)") in report


def test_the_sign_test_p_is_the_binomial_tail_both_sides():
    from recbole_tpad.benchmark.claim import sign_test_p

    assert sign_test_p(3, 0) == 0.25 and sign_test_p(0, 3) == 0.25  # 2 x 1/8
    assert sign_test_p(2, 1) == 1.0
    assert abs(sign_test_p(6, 0) - 2 / 64) < 1e-12
    assert abs(sign_test_p(9, 1) - 2 * 11 / 1024) < 1e-12  # 2 x (C(10,9) + C(10,10)) / 2^10
    assert sign_test_p(0, 0) == 1.0  # every pair tied: no evidence either way


def test_one_seed_decides_nothing_and_a_row_missing_a_prior_says_which(tmp_path):
    write_run(tmp_path, "A", 1, 0.05)
    write_run(tmp_path, "B", 1, 0.03)
    write_run(tmp_path, "B", 2, 0.031)
    write_prior(tmp_path, "B", 1, 0.035)
    code, out = run_claim(tmp_path)
    report = (out / "claim-t.md").read_text()
    assert code == 0 and "one seed on a side: not decided" in report
    assert "paired by seed" not in report  # one seed in common pairs nothing
    assert "B + content prior |" not in report
    assert "no content-prior file for" in report and "B-s2.json" in report


def test_two_runs_of_one_seed_in_a_row_are_refused_naming_both(tmp_path, capsys):
    write_run(tmp_path, "A", 7, 0.04)
    write_run(tmp_path, "B", 7, 0.03)
    (tmp_path / "A-copy.json").write_text((tmp_path / "A-s7.json").read_text())
    code, _ = run_claim(tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and "A-s7.json" in err and "A-copy.json" in err and "seed 7" in err


def test_a_row_of_runs_on_different_feature_tables_is_refused_unless_each_seed_pretrained_its_own(
        tmp_path, capsys):
    """The report's pooling rule holds for a claim's rows too: TPAD seeds on two pretrainings
    are not seeds of one row, unless each seed pretrained its own (``--pretrain-per-seed``)."""
    for seed, table in ((2020, "aaa"), (2021, "bbb")):
        write_run(tmp_path, "B", seed, 0.03)
        path = write_run(tmp_path, "A", seed, 0.04)
        run = json.loads(path.read_text())
        path.write_text(json.dumps(dict(run, feature_sha256=table, pretrain_seed=2020)))
    code, _ = run_claim(tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and "--row A:" in err and "A-s2020.json" in err and "feature table sha256" in err
    for seed in (2020, 2021):  # each seed's pretraining was its own
        path = tmp_path / f"A-s{seed}.json"
        path.write_text(json.dumps(dict(json.loads(path.read_text()), pretrain_seed=seed)))
    assert run_claim(tmp_path)[0] == 0


def test_bad_files_and_labels_get_errors_that_name_them(tmp_path, capsys):
    write_run(tmp_path, "A", 1, 0.04)
    write_run(tmp_path, "B", 1, 0.03)
    bad = tmp_path / "content-prior-broken.json"
    bad.write_text(json.dumps({"checkpoint": "x.pth", "chosen_weight": 4.0}))
    code, _ = run_claim(tmp_path)
    assert code == 2 and "content-prior-broken.json" in capsys.readouterr().err
    bad.unlink()
    (tmp_path / "B-s9.json").write_text("{not json")
    code, _ = run_claim(tmp_path)
    assert code == 2 and "B-s9.json" in capsys.readouterr().err
    code = claim.main(["--name=t", f"--out={tmp_path}", "--baseline=C", "--claim=A",
                       f"--row=A={tmp_path}/A-*.json"])
    assert code == 2 and "'C'" in capsys.readouterr().err
    code = claim.main(["--name=t", f"--out={tmp_path}", "--baseline=A", "--claim=A",
                       f"--row=A={tmp_path}/nothing-*.json"])
    assert code == 2 and "no file matches" in capsys.readouterr().err


def test_old_prior_files_key_their_figures_by_weight_alone(tmp_path):
    path = tmp_path / "old.json"
    part = {"ndcg@10": 0.035, "recall@20": 0.08}
    path.write_text(json.dumps({"checkpoint": "/a/u/m.pth", "chosen_weight": 4.0,
                                "test": {"0.0": {}, "4.0": {"all": part, "tail": part, "head": part}}}))
    prior = claim.load_prior(path)
    assert (prior["weight"], prior["rarity"], prior["checkpoint"]) == (4.0, 0.0, "u/m.pth")
    assert prior["slices"]["all"]["ndcg@10"] == pytest.approx(0.035)


def test_chart_labels_break_after_hyphens():
    assert claim.wrap("TPAD-zU-SS-default + content prior") == "TPAD-zU-SS-\ndefault\n+ prior"
    assert claim.wrap("SASRec") == "SASRec"


def write_grid_prior(folder, name, seed, grid, chosen):
    """A content-prior file whose validation grid is ``{(weight, rarity): (all, tail)}``."""
    def part(all_, tail):
        return {"all": {"ndcg@10": all_, "recall@20": 0.1}, "tail": {"ndcg@10": tail, "recall@20": 0.02},
                "head": {"ndcg@10": 0.1, "recall@20": 0.2}}
    prior = {"checkpoint": f"/x/saved/{name}-s{seed}/{name}.pth", "chosen_weight": chosen[0],
             "chosen_rarity": chosen[1], "valid": [{"weight": w, "rarity": r, "valid": part(*v)}
                                                   for (w, r), v in grid.items()],
             "test": {f"{chosen[0]:g}/{chosen[1]:g}": part(*grid[chosen])}}
    (folder / f"content-prior-{name}-s{seed}.json").write_text(json.dumps(prior))


def test_tail_at_equal_accuracy_reads_the_validation_grids_averaged_over_seeds(tmp_path):
    for seed in (1, 2):
        write_run(tmp_path, "A", seed, 0.04)
        write_run(tmp_path, "B", seed, 0.03)
        shift = 0.001 * seed
        # B's best all-case point is 0.041 + shift (mean 0.0425): A's points at or above it count
        write_grid_prior(tmp_path, "B", seed, {(0, 0): (0.040, 0.010), (4, 0): (0.041 + shift, 0.012),
                                               (8, 1): (0.038, 0.030)}, (4, 0))
        write_grid_prior(tmp_path, "A", seed, {(0, 0): (0.042, 0.008), (2, 0): (0.045, 0.010),
                                               (4, 1): (0.043 + shift, 0.020), (8, 1): (0.040, 0.040)},
                         (2, 0))
    code, out = run_claim(tmp_path)
    report = (out / "claim-t.md").read_text()
    assert code == 0 and "at least 0.0425" in report
    assert "- A + content prior: tail ndcg@10 0.0200 at weight 4, rarity 1 (all 0.0445)" in report
    assert "- B + content prior: tail ndcg@10 0.0120 at weight 4, rarity 0 (all 0.0425)" in report
    assert (out / "claim-t-tradeoff.png").stat().st_size > 0
    rows, _ = claim.build_rows([("A", sorted(tmp_path.glob("A-*.json")))],
                               sorted(tmp_path.glob("content-prior-A-*.json")))
    assert claim.validation_front(rows["A" + claim.PRIOR])[2] == (4, 1, pytest.approx(0.0445),
                                                                   pytest.approx(0.020))


def write_cold_run(folder, name, seed, warm, cold, prior=None, floor=0.5):
    """A cold-split run (warm and cold slices) and, with ``prior=(warm, cold)``, its content-prior
    file chosen under a cold floor."""
    def parts(w, c):
        return {"all": {"ndcg@10": (w + c) / 4, "recall@20": (w + c) / 2},
                "warm": {"ndcg@10": w / 3, "recall@20": w}, "cold": {"ndcg@10": c / 3, "recall@20": c}}
    checkpoint = f"/disk/saved/{name}-s{seed}/{name}.pth"
    run = {"model": name, "seed": seed, "test_result": parts(warm, cold)["all"], "machine": "box",
           "saved_model_file": checkpoint, "test_result_by_target": dict(
               parts(warm, cold), cases={"all": 10, "warm": 9, "cold": 1}, tail_max_train_count=3,
               buckets=[{"min_count": 0, "max_count": 3, "cases": 4, "ndcg@10": 0.01}])}
    (folder / f"{name}-s{seed}.json").write_text(json.dumps(run))
    if prior:
        (folder / f"content-prior-{name}-s{seed}.json").write_text(json.dumps({
            "checkpoint": checkpoint, "chosen_weight": 16.0, "chosen_rarity": 0.25,
            "cold_floor": floor, "test": {"16/0.25": parts(*prior)}}))


def test_target_two_form_judges_warm_recall_and_each_seeds_cold_over_warm(tmp_path):
    for seed, a, b in ((1, 0.080, 0.072), (2, 0.081, 0.073), (3, 0.082, 0.072)):
        write_cold_run(tmp_path, "A", seed, a, 0.01, prior=(a, (0.6 if seed < 3 else 0.4) * a))
        write_cold_run(tmp_path, "B", seed, b, 0.0, prior=(b - 0.001, 0.6 * b))
    code, out = run_claim(tmp_path, "--columns=warm:recall@20,cold:recall@20,all:ndcg@10",
                          "--metric=warm:recall@20", "--ratio=1.0", "--cold_ratio=0.5")
    report = (out / "claim-t.md").read_text()
    assert code == 0
    assert "| row | seeds | warm Recall@20 | cold Recall@20 | NDCG@10 | cold / warm |" in report
    assert "| A | 1, 2, 3 | 0.0810 ± 0.0010 | 0.0100 ± 0.0000 |" in report
    assert "| 16/0.25 (cold floor 0.5), 16/0.25 (cold floor 0.5), 16/0.25 (cold floor 0.5) |" in report
    verdicts = [line for line in report.splitlines() if line.startswith("- **")]
    assert "test warm Recall@20" in verdicts[0] and "better by more than 2 std" in verdicts[0]
    assert "(target 1x: met)" in verdicts[1]
    # the claim's own scores: cold is an eighth of warm; with the prior seed 3 falls short
    assert "cold / own warm recall@20 by seed: 0.125, 0.123, 0.122 (target 0.5x: not met on seed(s) 1, 2, 3)" in report
    assert "by seed: 0.600, 0.600, 0.400 (target 0.5x: not met on seed(s) 3)" in report
    assert json.loads((out / "claim-t.json").read_text())["metric"] == "warm:recall@20"


def test_a_bad_column_or_a_run_without_the_slice_is_said(tmp_path, capsys):
    write_run(tmp_path, "A", 1, 0.04)
    write_run(tmp_path, "B", 1, 0.03)
    code, _ = run_claim(tmp_path, "--columns=warm-recall")
    assert code == 2 and "--columns 'warm-recall': write SLICE:METRIC" in capsys.readouterr().err
    code, out = run_claim(tmp_path, "--metric=warm:recall@20")
    assert code == 0 and "has no test warm Recall@20; no verdict" in (out / "claim-t.md").read_text()


def test_a_run_that_chose_its_prior_in_training_is_read_at_weight_0_from_its_prior_file(tmp_path, capsys):
    """TPAD with ``content_prior: valid`` is tested with the prior it chose: its own row must
    come from its content-prior file's weight-0 figures, not from the run's test result."""
    for seed in (2020, 2021):
        write_run(tmp_path, "B", seed, 0.030 + seed % 2 * 0.001)
        path = write_run(tmp_path, "A", seed, 0.050)  # tested with its prior (weight 4)
        run = json.loads(path.read_text())
        path.write_text(json.dumps(dict(run, content_prior={"chosen": 4.0, "rarity": 0.0})))
    code, _ = run_claim(tmp_path)
    assert code == 2 and "A-s2020.json: its test figures are ranked with the content prior" in \
        capsys.readouterr().err
    for seed in (2020, 2021):
        prior = json.loads(write_prior(tmp_path, "A", seed, 0.050).read_text())
        prior["test"]["0/0"] = {"all": {"ndcg@10": 0.031, "recall@20": 0.062}}
        (tmp_path / f"content-prior-A-s{seed}.json").write_text(json.dumps(prior))
    code, out = run_claim(tmp_path)
    assert code == 0
    report = (out / "claim-t.md").read_text()
    assert "| A | 2020, 2021 | 0.0310 ± 0.0000 |" in report  # its own scores, at weight 0
    assert "| A + content prior | 2020, 2021 | 0.0500 ± 0.0000 |" in report
    # a prior file whose chosen point is not what the run chose (another content table, say)
    prior["test"]["4/0"]["all"]["ndcg@10"] = 0.060
    (tmp_path / "content-prior-A-s2021.json").write_text(json.dumps(prior))
    code, _ = run_claim(tmp_path)
    assert code == 2 and "its chosen point's test figures differ" in capsys.readouterr().err


def test_a_row_chosen_on_validation_takes_the_higher_validation_mean_whatever_the_test_says(tmp_path, capsys):
    """--choose: the configuration with the higher mean validation score over the seeds is the
    row, per ranking (own scores; + prior from the prior files' grids), never the test figures."""
    for seed in (1, 2):
        # A-plain: better on test, worse on validation; A-ptrain the other way round
        write_run(tmp_path, "Aplain", seed, 0.050, valid=0.040 + 0.001 * seed)
        write_run(tmp_path, "Aptrain", seed, 0.045, valid=0.044)
        write_run(tmp_path, "B", seed, 0.030)
        # with the prior: A-plain wins validation (0.060 > 0.050) but has the lower test figure
        write_grid_prior(tmp_path, "Aplain", seed, {(0, 0): (0.041, 0.01), (4, 0): (0.060, 0.01)}, (4, 0))
        write_grid_prior(tmp_path, "Aptrain", seed, {(0, 0): (0.044, 0.01), (2, 0): (0.050, 0.01)}, (2, 0))
        write_grid_prior(tmp_path, "B", seed, {(0, 0): (0.03, 0.01), (4, 0): (0.031, 0.01)}, (4, 0))
    out = tmp_path / "out"
    rows = [f"--row={n}={tmp_path}/{n}-s*.json" for n in ("Aplain", "Aptrain", "B")]
    code = claim.main(["--name=t", f"--out={out}", "--baseline=B", "--claim=A", *rows,
                       "--choose=A=Aplain,Aptrain", f"--priors={tmp_path}/content-prior-*.json"])
    assert code == 0
    report = (out / "claim-t.md").read_text()
    # own scores: the prior files' weight-0 point is the validation figure (0.041 < 0.044)
    assert "- **A** is Aptrain: validation NDCG@10 Aptrain 0.0440, Aplain 0.0410" in report
    assert "- **A + content prior** is Aplain + content prior: validation NDCG@10 Aplain + " \
        "content prior 0.0600, Aptrain + content prior 0.0500" in report
    # the chosen rows carry the chosen configuration's test figures: Aptrain's own 0.045, though
    # Aplain's 0.050 is higher on test
    assert "| A | 1, 2 | 0.0450 ± 0.0000 |" in report
    assert "| A + content prior | 1, 2 | 0.0600 ± 0.0000 |" in report
    data = json.loads((out / "claim-t.json").read_text())
    assert data["chosen"] == {"A": "Aptrain", "A + content prior": "Aplain"}
    assert [line for line in report.splitlines() if line.startswith("- **A** (")]

    write_run(tmp_path, "Aptrain", 3, 0.045)  # a seed the other configuration lacks
    code = claim.main(["--name=t", f"--out={out}", "--baseline=B", "--claim=A", *rows,
                       "--choose=A=Aplain,Aptrain"])
    assert code == 2 and "--choose A: its rows have different seeds" in capsys.readouterr().err
    # chosen on seed 1's validation alone (Aplain 0.041 < Aptrain 0.044), then reported over
    # all the chosen row's seeds, the one only it has included; seed 2's validation plays no part
    write_run(tmp_path, "Aplain", 2, 0.050, valid=0.090)
    code = claim.main(["--name=t", f"--out={out}", "--baseline=B", "--claim=A", *rows,
                       "--choose=A=Aplain,Aptrain", "--choose_on_seeds=1"])
    assert code == 0, capsys.readouterr().err
    report = (out / "claim-t.md").read_text()
    assert ("- **A** is Aptrain: validation NDCG@10 Aptrain 0.0440, Aplain 0.0410 (mean over "
            "seeds 1); reported over its seeds 1, 2, 3") in report
    assert "| A | 1, 2, 3 | 0.0450 ± 0.0000 |" in report
    assert json.loads((out / "claim-t.json").read_text())["chosen_on_seeds"] == [1]
    code = claim.main(["--name=t", f"--out={out}", "--baseline=B", "--claim=A", *rows,
                       "--choose=A=Aplain,Aptrain", "--choose_on_seeds=3"])
    assert code == 2 and "Aplain lacks (it has [1, 2])" in capsys.readouterr().err
    assert claim.main(["--name=t", f"--out={out}", "--baseline=B", "--claim=A", *rows,
                       "--choose=A=Aplain,Aptrain", "--choose_on_seeds=x"]) == 2
    assert "give seeds as whole numbers" in capsys.readouterr().err
    for bad, said in (("--choose=A=Aplain", "two or more --row labels"),
                      ("--choose=A=Aplain,Nope", "'Nope' is not a --row label")):
        assert claim.main(["--name=t", f"--out={out}", "--baseline=B", "--claim=A", *rows, bad]) == 2
        assert said in capsys.readouterr().err
