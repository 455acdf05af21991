"""The comparison driver: one table, one chart, one result file per model; finished runs skipped."""

import json
from pathlib import Path

import pytest
import torch

from recbole_tpad.benchmark.compare import main


def test_compare_writes_table_chart_and_resumes(run_config, tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["--dataset=demo", "--models=TPAD,GRU4Rec", f"--out={out}"] + [
        f"--{k}={v}" for k, v in dict(run_config, epochs=1).items()]
    # an interrupted GRU4Rec run under other settings (a plugin upgrade changed a properties
    # file): not resumed, but named, with the command that finishes it
    earlier = tmp_path / "saved" / "compare" / "demo" / "GRU4Rec-0123456789"
    earlier.mkdir(parents=True)
    (earlier / "GRU4Rec-x-latest.pth").write_bytes(b"")
    (earlier / "unit.json").write_text("{}")
    (earlier / "unit.log").write_text("PROGRESS epoch 7 valid 0.1000\n")
    # --plan says what each unit would do, and does nothing
    assert main(argv + ["--plan"]) == 0
    planned = capsys.readouterr().out
    assert ("[2/2] GRU4Rec on demo: trains from epoch 1; not resuming the earlier run of it in "
            f"{earlier} (epoch 7 valid 0.1000)") in planned, planned
    assert "[1/2] TPAD on demo: " in planned and not out.exists()
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert (f"GRU4Rec on demo: not resuming the earlier run of it in {earlier} (epoch 7 valid 0.1000)"
            in said and f"--unit={earlier / 'unit.json'}" in said and said.count("not resuming") == 1), said
    table = (out / "demo.md").read_text()
    assert "| TPAD | 1 |" in table and "| GRU4Rec | 1 |" in table and "Command:" in table
    assert (out / "demo.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "demo-curves.png").read_bytes()[:4] == b"\x89PNG"
    stored = json.loads((out / "runs" / "demo" / "TPAD.json").read_text())
    assert stored["epochs_run"] == 1 and stored["run_key"] and stored["peak_rss_mb"] > 0
    assert stored["stopped_by"] == "epoch cap" and len(stored["valid_curve"]) == 1
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out.count("done earlier") == 2
    assert main(argv + ["--plan"]) == 0
    planned = capsys.readouterr().out
    assert planned.count(": done: 1 epochs (epoch cap), test ndcg@10 ") == 2, planned
    # compared into another --out: found done through the copy its checkpoint folder keeps, not
    # resumed for another epoch and a second test read
    other = tmp_path / "other"
    elsewhere = [a if not a.startswith("--out=") else f"--out={other}" for a in argv]
    assert main(elsewhere + ["--plan"]) == 0
    assert capsys.readouterr().out.count("result.json; a run copies it to ") == 2
    assert main(elsewhere) == 0
    assert capsys.readouterr().out.count(", copied from ") == 2
    assert json.loads((other / "runs" / "demo" / "TPAD.json").read_text()) == stored
    # an interrupted unit: --plan names the epoch it resumes after
    (out / "runs" / "demo" / "GRU4Rec.json").unlink()
    (folder,) = [d for d in (tmp_path / "saved" / "compare" / "demo").glob("GRU4Rec-*") if d != earlier]
    (folder / "result.json").unlink()
    (folder / "GRU4Rec-x-latest.pth").write_bytes(b"")
    assert main(argv + ["--plan"]) == 0
    assert "GRU4Rec on demo: resumes after epoch 1 valid " in capsys.readouterr().out


def test_seeds_give_mean_and_std_and_a_failing_unit_does_not_stop_the_others(run_config, tmp_path,
                                                                             monkeypatch, capsys):
    import csv

    from recbole_tpad import variants

    # a unit that fails in its own process: a GRU with no layers (torch refuses it at build time)
    listed = variants.variants()
    monkeypatch.setattr(variants, "variants",
                        lambda: {**listed, "GRU4Rec-broken": {"model": "GRU4Rec", "num_layers": 0}})
    out = tmp_path / "results"
    argv = ["--dataset=demo", "--models=GRU4Rec,GRU4Rec-broken", "--seeds=1,2", "--jobs=2",
            "--threads=1", f"--out={out}"] + [f"--{k}={v}" for k, v in dict(run_config, epochs=1).items()]
    assert main(argv) == 1  # GRU4Rec-broken failed
    printed = capsys.readouterr().out
    assert printed.count("GRU4Rec-broken-s1 on demo: FAILED") == 1 and "GRU4Rec-s2 on demo: finished" in printed
    assert "num_layers must be greater than zero" in printed  # the unit's own error, from its log
    seeds = [json.loads((out / "runs" / "demo" / f"GRU4Rec-s{s}.json").read_text()) for s in (1, 2)]
    assert [r["seed"] for r in seeds] == [1, 2]
    assert seeds[0]["test_result"] != seeds[1]["test_result"]  # the seed reached the run
    table = (out / "demo.md").read_text()
    assert "| GRU4Rec | 2 |" in table and " ± " in table and "GRU4Rec-broken-s1" in table
    rows = list(csv.DictReader(open(out / "demo.csv")))
    mean = sum(r["test_result"]["ndcg@10"] for r in seeds) / 2
    assert rows[0]["model"] == "GRU4Rec" and float(rows[0]["ndcg@10"]) == pytest.approx(mean)
    assert len(list(csv.DictReader(open(out / "demo-runs.csv")))) == 2


def test_epoch_time_benchmark_writes_ratios(run_config, tmp_path):
    from recbole_tpad.benchmark.epoch_time import main as epoch_time

    out = tmp_path / "bench"
    argv = ["--dataset=demo", "--models=SASRec,TPAD", f"--out={out}", "--threads=1",
            "--breakdown=3"] + [f"--{k}={v}" for k, v in run_config.items()]
    threads = torch.get_num_threads()
    assert epoch_time(argv) == 0
    assert torch.get_num_threads() == threads  # set for the measurement only
    table = (out / "epoch_time-demo.md").read_text()
    assert "| SASRec |" in table and "| TPAD |" in table and "| 1.00 |" in table
    assert ", 1 threads;" in table
    runs = json.loads((out / "epoch_time-demo.json").read_text())["runs"]
    assert runs["TPAD"][0]["epoch_seconds"] > 0 and runs["TPAD"][0]["test_cases"] == 150
    # the step's breakdown: TPAD's item table (adapter over every item) is a part of its step;
    # RecBole's SASRec builds none
    tpad, sasrec = runs["TPAD"][0], runs["SASRec"][0]
    assert 0 < tpad["item_table_seconds"] < tpad["step_seconds"]
    assert sasrec["step_seconds"] > 0 and sasrec["item_table_seconds"] is None
    assert "| SASRec | " in table.split("One training step")[1] and "| - | - | - |" in table
    with pytest.raises(SystemExit):
        epoch_time(["--dataset=demo", "--breakdown=-1"])


@pytest.mark.parametrize("argument,says", [
    ("exclude_history=True", "cannot read argument 'exclude_history=True': write config values as --key=value"),
    ("--seeds=a", "--seeds='a': give whole numbers separated by commas"),
    ("--models=SASRec,TPAD-zQ", "'TPAD-zQ' is not a variant of properties/variants.yaml, nor a known "
                                "model: unknown model 'TPAD-zQ'. Plugin models:"),
])
def test_bad_arguments_get_one_line_and_no_run(argument, says, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--dataset=demo", "--models=TPAD-ID", f"--out={tmp_path}", argument])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and says in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_a_variant_runs_under_its_label(run_config, tmp_path, capsys):
    main(["--dataset=demo", "--models=TPAD-ID", f"--out={tmp_path}"] +
         [f"--{k}={v}" for k, v in run_config.items()])
    stored = json.loads((tmp_path / "runs" / "demo" / "TPAD-ID.json").read_text())
    assert stored["model"] == "TPAD-ID" and stored["settings"]["use_features"] is False
    assert "| TPAD-ID | 1 |" in (tmp_path / "demo.md").read_text()


def test_a_run_on_pretrained_features_records_their_table_and_the_report_keeps_tables_apart(
        run_config, demo_root, tmp_path, monkeypatch, capsys):
    """The pretrainer is stubbed (tested in test_pretrainer.py): it writes category features."""
    import shutil

    from conftest import category_features

    from recbole_tpad.benchmark.report import main as report
    from recbole_tpad.data.features import read_metadata, write_feature_file
    from recbole_tpad.distill import runs
    from recbole_tpad.distill.settings import feature_path

    data = tmp_path / "data"
    shutil.copytree(demo_root / "demo", data / "demo")
    table = feature_path(data / "demo", "demo")

    def pretrain(seed):
        def write(dataset, config_dict=None, config_file_list=None, views=()):
            ids, array = category_features(data / "demo", seed=seed)
            write_feature_file(table, array, ids, "demo", data / "demo", {"name": "stub", "config": {}})
        monkeypatch.setattr(runs, "ensure_pretrained", write)

    out = tmp_path / "results"
    argv = ["--dataset=demo", "--models=TPAD-zU", f"--out={out}"] + [
        f"--{k}={v}" for k, v in dict(run_config, epochs=1, data_path=str(data)).items()]
    pretrain(seed=0)
    assert main(argv + ["--seeds=1"]) == 0
    stored = json.loads((out / "runs" / "demo" / "TPAD-zU-s1.json").read_text())
    assert stored["feature_sha256"] == read_metadata(table)["array_sha256"]
    pretrain(seed=1)  # features pretrained again: a new table under the same name
    assert main(argv + ["--seeds=2"]) == 0
    capsys.readouterr()
    assert report(["--dataset=demo", "--models=TPAD-zU", f"--out={out}"]) == 2
    assert "not seeds of one configuration (feature table sha256" in capsys.readouterr().err


def test_pretrain_per_seed_gives_each_seed_its_own_pretraining_and_the_report_pools_them(
        run_config, demo_root, tmp_path, monkeypatch, capsys):
    """``--pretrain-per-seed``: seed s pretrains with seed s into its own files (the default
    pretraining seed, 2020, keeps the plain ones); the report pools those seeds, but not a seed
    that read another seed's pretraining. The pretrainer is stubbed as above."""
    import shutil

    from conftest import category_features

    from recbole_tpad.benchmark.report import main as report
    from recbole_tpad.data.features import write_feature_file
    from recbole_tpad.distill import runs
    from recbole_tpad.distill.settings import feature_path

    data = tmp_path / "data"
    shutil.copytree(demo_root / "demo", data / "demo")
    pretrained, threads = [], []

    def write(dataset, config_dict=None, config_file_list=None, views=()):
        seed, prefix = config_dict.get("seed", 2020), config_dict["feature_prefix"]
        pretrained.append((seed, prefix))
        threads.append(config_dict.get("threads"))
        ids, array = category_features(data / "demo", seed=seed)
        for view in views:
            write_feature_file(feature_path(data / "demo", "demo", view, prefix), array, ids, "demo",
                               data / "demo", {"name": "stub", "config": {"seed": seed}})
    monkeypatch.setattr(runs, "ensure_pretrained", write)

    out = tmp_path / "results"
    argv = ["--dataset=demo", "--models=TPAD-zU", f"--out={out}"] + [
        f"--{k}={v}" for k, v in dict(run_config, epochs=1, data_path=str(data)).items()]
    assert main(argv + ["--seeds=1,2020", "--pretrain-per-seed"]) == 0
    assert sorted(pretrained) == [(1, "tpad-s1"), (2020, "tpad")]
    s1, s2020 = (json.loads((out / "runs" / "demo" / f"TPAD-zU-s{s}.json").read_text()) for s in (1, 2020))
    assert s1["settings"]["feature_source"] == "tpad-s1-zU" and s1["pretrain_seed"] == 1
    assert s2020["settings"]["feature_source"] == "tpad-zU" and s2020["pretrain_seed"] == 2020
    assert s1["feature_sha256"] != s2020["feature_sha256"]
    assert "Each seed of TPAD-zU pretrained its own features" in (out / "demo.md").read_text()
    assert report(["--dataset=demo", "--models=TPAD-zU", f"--out={out}"]) == 0
    # a result stored before results recorded the pretraining seed gets it when found done
    path = out / "runs" / "demo" / "TPAD-zU-s2020.json"
    path.write_text(json.dumps({k: v for k, v in s2020.items() if k != "pretrain_seed"}))
    assert main(argv + ["--seeds=1,2020", "--pretrain-per-seed"]) == 0
    assert capsys.readouterr().out.count("done earlier") == 2
    assert json.loads(path.read_text())["pretrain_seed"] == 2020
    # seed 3 without the option reads seed 2020's pretraining: not a seed of that row
    pretrained.clear()
    assert main(argv + ["--seeds=3"]) == 0 and pretrained == [(2020, "tpad")]
    # the pretraining compare starts runs with compare's --threads, as its units do
    assert threads and set(threads) == {None}
    threads.clear()
    assert main(argv + ["--seeds=4", "--threads=1"]) == 0 and threads == [1]
    capsys.readouterr()
    assert report(["--dataset=demo", "--models=TPAD-zU", f"--out={out}"]) == 2
    assert "not seeds of one configuration (feature table sha256" in capsys.readouterr().err


def test_run_key_reads_properties_as_settings_and_finds_runs_keyed_by_bytes(tmp_path, monkeypatch):
    """A comment edited in a properties file neither reruns finished units nor strands an
    interrupted one; a changed value does start anew. Runs keyed by the files' bytes (earlier
    releases) are still found while the files are unchanged."""
    import shutil

    from recbole_tpad.benchmark import compare
    from recbole_tpad.paths import properties_dir

    props = tmp_path / "properties"
    shutil.copytree(properties_dir(), props)
    monkeypatch.setattr(compare, "properties_dir", lambda: props)
    model_yaml = props / "model" / "GRU4Rec.yaml"
    settings = {"checkpoint_dir": str(tmp_path / "saved")}

    def plan():
        (unit,) = compare.plan_units(["GRU4Rec"], "demo", settings, out_dir=tmp_path / "results")
        return unit

    first = plan()
    assert first["run_key"] != first["byte_key"]
    # an earlier release's finished result and interrupted checkpoint folder, keyed by bytes
    result = tmp_path / "results" / "runs" / "demo" / "GRU4Rec.json"
    result.parent.mkdir(parents=True)
    result.write_text(json.dumps({"run_key": first["byte_key"]}))
    legacy = tmp_path / "saved" / "compare" / "demo" / f"GRU4Rec-{first['byte_key'][:10]}"
    legacy.mkdir(parents=True)
    (legacy / "GRU4Rec-x-latest.pth").write_bytes(b"")
    unit = plan()
    assert compare.finished_result(unit) and unit["checkpoint_dir"] == str(legacy)

    # a comment and a reordering: the same settings, so the same key (the byte key moves on)
    text = model_yaml.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    model_yaml.write_text("# edited\n" + "\n".join(reversed(lines)) + "\n")
    edited = plan()
    assert edited["run_key"] == first["run_key"] and edited["byte_key"] != first["byte_key"]
    assert compare.finished_result(edited) is None  # the bytes-keyed result no longer matches
    result.write_text(json.dumps({"run_key": first["run_key"]}))
    assert compare.finished_result(edited)  # a result under the new key survives the edit

    # a changed value is another run
    model_yaml.write_text(text.replace("dropout_prob: 0.3", "dropout_prob: 0.4"))
    assert "dropout_prob: 0.3" in text and plan()["run_key"] != first["run_key"]


def test_a_unit_another_process_is_running_is_not_started_twice(run_config, tmp_path, capsys):
    """The same comparison typed again while the first runs: its running unit is left alone
    (not trained twice into one checkpoint folder), and --plan says it is running."""
    import socket
    import subprocess
    import sys

    from recbole_tpad.benchmark.compare import plan_units
    from recbole_tpad.folder_lock import LOCK_NAME

    settings = dict(run_config, epochs=1)
    argv = ["--dataset=demo", "--models=GRU4Rec", f"--out={tmp_path / 'results'}"] + [
        f"--{k}={v}" for k, v in settings.items()]
    (unit,) = plan_units(["GRU4Rec"], "demo", settings, out_dir=tmp_path / "results")
    folder = tmp_path / "saved" / "compare" / "demo" / f"GRU4Rec-{unit['run_key'][:10]}"
    assert unit["checkpoint_dir"] == str(folder)
    first = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder.mkdir(parents=True)
        (folder / LOCK_NAME).write_text(json.dumps({
            "pid": first.pid, "host": socket.gethostname(), "started": "2026-12-06 10:00:00",
            "what": "compare unit GRU4Rec"}))
        (folder / "unit.log").write_text("PROGRESS epoch 3 valid 0.2000\n")
        assert main(argv + ["--plan"]) == 0
        said = capsys.readouterr().out
        assert (f"GRU4Rec on demo: running now in process {first.pid} on " in said
                and "since 2026-12-06 10:00:00 (epoch 3 valid 0.2000" in said), said
        assert main(argv) == 1
        said = capsys.readouterr().out
        assert f"GRU4Rec on demo: not started twice: {folder} is in use by process {first.pid}" in said
        assert not (tmp_path / "results" / "runs").exists() and not list(folder.glob("*.pth"))
    finally:
        first.kill()
        first.wait()
    # once that process is gone, the unit runs (its lock is a dead process's, taken over)
    assert main(argv) == 0
    assert (tmp_path / "results" / "runs" / "demo" / "GRU4Rec.json").is_file()
    assert not (folder / LOCK_NAME).exists()


def test_a_raised_epoch_cap_continues_the_capped_run_instead_of_starting_anew(run_config, tmp_path,
                                                                               capsys):
    """A unit the epoch cap ended gets a new key when the cap is raised; it goes on from the
    capped run's last epoch (copied; the capped run's folder and result stay), not from epoch 1.
    Not when another setting changed, nor under a lowered cap, nor when the run ended by early
    stopping."""
    out = tmp_path / "results"
    base = ["--dataset=demo", "--models=GRU4Rec", f"--out={out}"] + [
        f"--{k}={v}" for k, v in run_config.items() if k != "epochs"]
    # the demo's properties cap it at 100 epochs; this run's settings cap it at 1
    assert main(base + ["--epochs=1"]) == 0
    result = out / "runs" / "demo" / "GRU4Rec.json"
    capped = json.loads(result.read_text())
    assert capped["stopped_by"] == "epoch cap"
    (earlier,) = (tmp_path / "saved" / "compare" / "demo").glob("GRU4Rec-*")
    capsys.readouterr()
    assert main(base + ["--epochs=2", "--learning_rate=0.002", "--plan"]) == 0
    said = capsys.readouterr().out
    assert "trains from epoch 1; not resuming the earlier run" in said
    # that run has ended: its result is named, and no command offers to "finish" it
    assert "that run has ended (epoch cap, after epoch 1 valid " in said and str(result) in said
    assert "To finish that one" not in said, said
    assert main(base + ["--epochs=3", "--stopping_step=1", "--plan"]) == 0  # a cap lowered
    assert "trains from epoch 1; not resuming the earlier run" in capsys.readouterr().out
    # no --epochs: the properties' cap (100), raised from 1 as well
    assert main(base + ["--plan"]) == 0
    said = capsys.readouterr().out
    assert "continues the earlier run of it in" in said and "under epochs 1 -> 100" in said, said
    assert main(base + ["--epochs=3", "--plan"]) == 0
    says = (f"GRU4Rec on demo: continues the earlier run of it in {earlier} after epoch 1 valid "
            f"{capped['valid_curve'][0]['valid_score']:.4f} (ended by the epoch cap; its test split "
            "was read then), under epochs 1 -> 3")
    assert says in capsys.readouterr().out
    assert main(base + ["--epochs=3"]) == 0
    assert says in capsys.readouterr().out
    continued = json.loads(result.read_text())
    assert continued["epochs_run"] == 3 and continued["continued_from"] == str(earlier)
    assert continued["valid_curve"][0] == capped["valid_curve"][0]
    assert continued["run_key"] != capped["run_key"]
    folder = Path(continued["saved_model_file"]).parent
    assert folder != earlier and {p.name for p in earlier.glob("*.pth")} <= {p.name for p in folder.glob("*.pth")}
    # a run that ended by early stopping is not continued under a raised cap (a fresh run would
    # have stopped there too): the capped run before it is
    result.write_text(json.dumps(dict(continued, stopped_by="early stopping")))
    assert main(base + ["--epochs=4", "--plan"]) == 0
    assert f"GRU4Rec on demo: continues the earlier run of it in {earlier} after epoch 1" in (
        capsys.readouterr().out)
