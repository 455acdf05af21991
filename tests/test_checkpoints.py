"""Checkpoints are read without unpickling (issue: a crafted --resume file ran code)."""

import os
import sys
from pathlib import Path

import pytest
import torch

from recbole_tpad.checkpoints import CheckpointError, load_checkpoint
from recbole_tpad.quick_start import run

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import run_recbole_tpad  # noqa: E402


class _Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_crafted_resume_file_is_refused_and_runs_nothing(run_config, tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil-latest.pth"
    torch.save({"config": _Payload(marker), "epoch": 0}, evil)
    argv = ["--model=GRU4Rec", "--dataset=demo", f"--resume={evil}"] + \
        [f"--{k}={v}" for k, v in dict(run_config, epochs=1).items()]
    assert run_recbole_tpad.main(argv) == 2
    err = capsys.readouterr().err
    assert "refused" in err and str(evil) in err and "Traceback" not in err
    assert not marker.exists()
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)
    assert not marker.exists()


def test_plugin_checkpoints_load_with_weights_only(run_config):
    result = run("GRU4Rec", "demo", config_dict=dict(run_config, epochs=1))
    for path in (result["saved_model_file"], result["latest_checkpoint"]):
        state = torch.load(path, weights_only=True)  # no pickle of objects at all
        assert state["format"].startswith("recbole-tpad-checkpoint")
        assert load_checkpoint(path)["config"]["model"] == "GRU4Rec"
    assert not list(Path(result["latest_checkpoint"]).parent.glob("*.part"))


def test_runs_started_in_the_same_second_keep_their_own_checkpoints(run_config, monkeypatch):
    """RecBole names a checkpoint by model and second: the second run takes the next free name
    instead of overwriting the first one's model."""
    import recbole.trainer.trainer as recbole_trainer

    monkeypatch.setattr(recbole_trainer, "get_local_time", lambda: "Dec-02-2026_10-00-00")
    first = run("GRU4Rec", "demo", config_dict=dict(run_config, epochs=1))
    second = run("GRU4Rec", "demo", config_dict=dict(run_config, epochs=1, learning_rate=0.05))
    assert Path(first["saved_model_file"]).name == "GRU4Rec-Dec-02-2026_10-00-00.pth"
    assert Path(second["saved_model_file"]).name == "GRU4Rec-Dec-02-2026_10-00-00-2.pth"
    assert Path(second["latest_checkpoint"]).name == "GRU4Rec-Dec-02-2026_10-00-00-2-latest.pth"
    assert load_checkpoint(first["saved_model_file"])["config"]["learning_rate"] != 0.05
    assert load_checkpoint(second["saved_model_file"])["config"]["learning_rate"] == 0.05


def test_truncated_missing_and_mismatched_resume_files_get_one_clear_line(run_config, tmp_path, capsys):
    first = run("GRU4Rec", "demo", config_dict=dict(run_config, epochs=1))
    latest = Path(first["latest_checkpoint"])
    cut = tmp_path / "cut-latest.pth"
    cut.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])
    base = [f"--{k}={v}" for k, v in dict(run_config, epochs=2).items()]
    cases = [(cut, [], "cut short"), (tmp_path / "missing.pth", [], "no such checkpoint"),
             (latest, ["--learning_rate=0.05"], "learning_rate: 0.005 in the checkpoint, 0.05 now")]
    for path, extra, says in cases:
        assert run_recbole_tpad.main(["--model=GRU4Rec", "--dataset=demo", f"--resume={path}"]
                                     + base + extra) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err


def test_pickle_is_what_is_refused(tmp_path):
    path = tmp_path / "recbole-style.pth"
    torch.save({"config": _Payload(tmp_path / "x")}, path)
    with pytest.raises(CheckpointError, match="never loads such files"):
        load_checkpoint(path)


def test_a_resumed_run_reproduces_the_uninterrupted_one(run_config, tmp_path):
    settings = dict(run_config, epochs=3, stopping_step=10)
    whole = run("GRU4Rec", "demo", config_dict=dict(settings, checkpoint_dir=str(tmp_path / "a")))
    first = run("GRU4Rec", "demo", config_dict=dict(settings, epochs=2, checkpoint_dir=str(tmp_path / "b")))
    resumed = run("GRU4Rec", "demo", config_dict=dict(settings, checkpoint_dir=str(tmp_path / "b")),
                  resume_file=first["latest_checkpoint"])
    # the resumed run reports the whole run: the checkpoint carries the epochs before it
    assert resumed["epochs_run"] == whole["epochs_run"] == 3
    assert [p["epoch"] for p in resumed["valid_curve"]] == [0, 1, 2]
    assert [round(p["valid_score"], 6) for p in resumed["valid_curve"]] == \
        [round(p["valid_score"], 6) for p in whole["valid_curve"]]
    assert resumed["epoch_times"][:2] == first["epoch_times"]
    assert resumed["test_result"] == whole["test_result"]


def test_a_checkpoint_from_before_a_setting_existed_resumes_at_its_neutral_value(run_config):
    """A TPAD checkpoint written before ``time_gaps`` existed resumes under the settings that
    do what its absence did (the yaml defaults), and is refused once the run switches it on."""
    import yaml
    from types import SimpleNamespace

    from recbole_tpad.checkpoints import ADDED_SETTINGS, differing_settings, plain_settings
    from recbole_tpad.config import Config
    from recbole_tpad.paths import properties_dir

    defaults = yaml.safe_load((properties_dir() / "model" / "TPAD.yaml").read_text())
    assert ADDED_SETTINGS == {k: defaults[k] for k in ADDED_SETTINGS}  # the defaults, not a copy that drifts
    config = Config(model="TPAD", dataset="demo", config_dict=run_config)
    before = {k: v for k, v in plain_settings(config).items() if k not in ADDED_SETTINGS}
    assert differing_settings(before, config) == {}
    switched = SimpleNamespace(final_config_dict=dict(config.final_config_dict, time_gaps=True))
    assert differing_settings(before, switched) == {"time_gaps": (None, True)}
    # a key the checkpoint holds is compared as always
    assert differing_settings(dict(before, time_gaps=True), config) == {"time_gaps": (True, False)}
