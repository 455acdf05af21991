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
