"""The plugin's Config: no string is evaluated, unknown keys and impossible values are refused
before any data is read."""

import sys
from pathlib import Path

import pytest

from recbole_tpad.config import Config, ConfigError, parse_cli_values, read_value

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import run_recbole_tpad  # noqa: E402


def test_values_are_literals_never_code(tmp_path):
    marker = tmp_path / "ran"
    code = f"__import__('os').mkdir({str(marker)!r})"
    assert read_value(code) == code and not marker.exists()
    assert read_value("[5, 10]") == [5, 10] and read_value("1e-3") == 0.001
    assert read_value("True") is True and read_value("false") is False and read_value("~") == "~"
    assert parse_cli_values(["--fusion=gate", "--topk=[5,10]"]) == {"fusion": "gate", "topk": [5, 10]}
    # lists and mappings of bare words, as the yaml files write them (once a string, which
    # RecBole's SASRecF would have read letter by letter)
    assert read_value("[brand, categories]") == ["brand", "categories"]
    assert read_value("{item: [item_id, brand]}") == {"item": ["item_id", "brand"]}
    assert read_value("[unclosed, {") == "[unclosed, {"
    assert read_value(f"[{code}]") == [code] and not marker.exists()
    # a string in a config_dict (what Ray trials and --key=value give) reaches RecBole as text
    config = Config(model="SASRec", dataset="demo", config_dict={"hidden_act": code, "state": "WARNING"})
    assert config["hidden_act"] == code and not marker.exists()


@pytest.mark.parametrize("argument,says", [
    ("--learnign_rate=0.1", "did you mean 'learning_rate'"),
    ("--epochs=-1", "epochs=-1: give a whole number of at least 1"),
    ("--train_batch_size=0", "train_batch_size=0"),
    ("--learning_rate=abc", "learning_rate='abc': give a positive number"),
    ("--topk=[0,10]", "topk=[0, 10]"),
    ("--topk=[500]", "valid_metric NDCG@10 needs 10 in topk"),
    ("--encoder=lstm", "encoder='lstm': use one of transformer, sasrec, gru, gnn"),
    ("--fusion=foo", "fusion='foo': use one of"),
    ("--content_head_training=sometimes", "content_head_training='sometimes': use one of dropout, auxiliary"),
    ("--content_head_negatives=all", "content_head_negatives='all': use one of same, shared"),
    ("--feature_dropout_on=hidden", "feature_dropout_on='hidden': use one of table, adapter"),
    ("--feature_whitening=0", "feature_whitening=0: give a whole number of dimensions"),
    ("--config_files=missing.yaml", "missing.yaml does not exist"),
    ("--resume=missing.pth", "no such checkpoint"),
])
def test_bad_settings_get_one_line_before_any_work(argument, says, run_config, capsys):
    argv = ["--model=SASRec", "--dataset=demo", argument, f"--data_path={run_config['data_path']}"]
    assert run_recbole_tpad.main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_a_config_file_with_an_unknown_key_is_refused(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("learning_rate: 0.01\nembeding_size: 32\n")
    with pytest.raises(ConfigError, match="--config_files: unknown setting 'embeding_size'"):
        Config(model="TPAD", dataset="demo", config_file_list=[str(path)])


@pytest.mark.parametrize("setting,says", [
    ({"stage1_steps": -5}, "stage1_steps=-5: give a whole number of at least 0"),
    ({"stage2_batch": 0}, "stage2_batch=0"),
    ({"stage1_steps": "abc"}, "stage1_steps='abc'"),
    ({"stage2_lr": -0.1}, "stage2_lr=-0.1: give a positive number"),
    ({"stage2_targets": "all"}, "stage2_targets='all': use one of last, every"),
    ({"session_query": "mean"}, "session_query='mean': use one of state, last_item"),
])
def test_impossible_pretrain_settings_are_refused_before_any_model_loads(setting, says, capsys):
    key, value = next(iter(setting.items()))
    assert run_recbole_tpad.main(["--stage=pretrain", "--dataset=demo", f"--{key}={value}"]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err, err
