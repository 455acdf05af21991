"""The comparison driver: one table, one chart, one result file per model; finished runs skipped."""

import json

from recbole_tpad.benchmark.compare import main


def test_compare_writes_table_chart_and_resumes(run_config, tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["--dataset=demo", "--models=TPAD,GRU4Rec", f"--out={out}"] + [
        f"--{k}={v}" for k, v in dict(run_config, epochs=1).items()]
    assert main(argv) == 0
    table = (out / "demo.md").read_text()
    assert "| TPAD |" in table and "| GRU4Rec |" in table and "Command:" in table
    assert (out / "demo.png").read_bytes()[:4] == b"\x89PNG"
    stored = json.loads((out / "runs" / "demo" / "TPAD.json").read_text())
    assert stored["epochs_run"] == 1 and stored["run_key"]
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out.count("done earlier") == 2


def test_epoch_time_benchmark_writes_ratios(run_config, tmp_path):
    from recbole_tpad.benchmark.epoch_time import main as epoch_time

    out = tmp_path / "bench"
    argv = ["--dataset=demo", "--models=SASRec,TPAD", f"--out={out}"] + [
        f"--{k}={v}" for k, v in run_config.items()]
    assert epoch_time(argv) == 0
    table = (out / "epoch_time-demo.md").read_text()
    assert "| SASRec |" in table and "| TPAD |" in table and "| 1.00 |" in table
    runs = json.loads((out / "epoch_time-demo.json").read_text())["runs"]
    assert runs["TPAD"][0]["epoch_seconds"] > 0 and runs["TPAD"][0]["test_cases"] == 150
