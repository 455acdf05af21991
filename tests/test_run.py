"""End to end through the run script's code path on the small demo dataset."""

import math
import sys
from pathlib import Path

import pytest

from recbole_tpad.quick_start import load_data_and_model, run

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import run_recbole_tpad  # noqa: E402


def finite_metrics(result):
    metrics = result["test_result"]
    assert {"recall@10", "ndcg@10", "mrr@10", "recall@20"} <= set(metrics)
    return all(math.isfinite(v) for v in metrics.values())


def test_run_script_trains_tpad_and_prints_the_table(run_config, capsys):
    argv = ["--model=TPAD", "--dataset=demo"] + [f"--{k}={v}" for k, v in run_config.items()]
    assert run_recbole_tpad.main(argv) == 0
    out = capsys.readouterr().out
    assert "| TPAD |" in out and "ndcg@10" in out


@pytest.mark.parametrize("model", ["SRGNN", "GRU4Rec"])
def test_builtin_models_run_under_the_same_protocol(model, run_config):
    result = run(model, "demo", config_dict=run_config, saved=False)
    assert result["model"] == model and result["epochs_run"] == 2
    assert finite_metrics(result)


def test_a_feature_aware_recbole_model_loads_its_selected_features(run_config, capsys):
    """SASRecF's ``selected_features`` are loaded from the ``.item`` file without restating the
    dataset's ``load_col`` (RecBole raised a KeyError in the model's constructor); a field the
    file lacks is refused by name, with the file's columns."""
    from recbole_tpad.quick_start import build_experiment

    config, _, trainer = build_experiment("SASRecF", "demo", config_dict=dict(run_config, selected_features=["category"]))
    assert config["load_col"] == {"inter": ["session_id", "item_id_list", "item_id"],
                                  "item": ["item_id", "category"]}
    layer = trainer.model.feature_embed_layer
    assert layer.token_field_names["item"] + layer.token_seq_field_names["item"] == ["category"]
    # saved: the test loads the run's own best checkpoint (SASRecF's feature layer, which
    # RecBole lists as an "other parameter", once made it unloadable), and so does recommend
    result = run("SASRecF", "demo", config_dict=dict(run_config, selected_features=["category"], epochs=1))
    assert finite_metrics(result)
    from recbole_tpad.recommend import Recommender

    recommender = Recommender.from_checkpoint(result["saved_model_file"])
    assert len(recommender.recommend(["i00001", "i00002"], k=5)) == 5
    argv = ["--model=SASRecF", "--dataset=demo", "--selected_features=['price']"] + [
        f"--{k}={v}" for k, v in run_config.items()]
    assert run_recbole_tpad.main(argv) == 2
    assert ("selected_features ['price'] (read by SASRecF): " in (err := capsys.readouterr().err)
            and "demo.item has no such column; its columns are ['item_id', 'title'" in err), err


def test_trained_tpad_beats_a_random_ranker(run_config):
    result = run("TPAD", "demo", config_dict=dict(run_config, epochs=4), saved=False)
    n_items = 320 + 1  # demo items + padding, all ranked
    random_recall = 10 / n_items
    assert finite_metrics(result)
    assert result["test_result"]["recall@10"] > 3 * random_recall, result["test_result"]


@pytest.mark.parametrize("encoder,fusion", [("gru", "sum"), ("gnn", "concat")])
def test_tpad_encoders_and_fusions(encoder, fusion, run_config):
    result = run("TPAD", "demo", config_dict=dict(run_config, encoder=encoder, fusion=fusion,
                                                  epochs=1, adapter="moe"), saved=False)
    assert finite_metrics(result)


def test_tpad_id_only_needs_no_feature_file(run_config):
    result = run("TPAD", "demo", config_dict=dict(run_config, use_features=False, epochs=1,
                                                  feature_file="/nonexistent.npy"), saved=False)
    assert finite_metrics(result)


def test_checkpoint_reloads_with_load_data_and_model(run_config):
    import torch

    result = run("TPAD", "demo", config_dict=dict(run_config, epochs=1))
    config, model, dataset, train_data, valid_data, test_data = load_data_and_model(
        result["saved_model_file"])
    assert type(model).__name__ == "TPAD" and config["model"] == "TPAD"
    saved = torch.load(result["saved_model_file"], weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], v.cpu()) for k, v in model.state_dict().items())
    assert Path(result["saved_model_file"]).with_suffix(".json").is_file()


def test_a_checkpoint_reloads_with_its_own_settings_after_the_defaults_change(run_config, tmp_path, monkeypatch):
    """A checkpoint records its model settings; when a later version changes TPAD's defaults
    (here: back to RecBole's item handling, which has no content head), the checkpoint still
    rebuilds the model it was trained as and loads."""
    import shutil

    import yaml

    import recbole_tpad.config

    result = run("TPAD", "demo", config_dict=dict(run_config, epochs=1))
    properties = tmp_path / "properties"
    shutil.copytree(recbole_tpad.config.properties_dir(), properties)
    model_yaml = properties / "model" / "TPAD.yaml"
    defaults = yaml.safe_load(model_yaml.read_text())
    assert defaults["cold_item_ids"] == "content"
    defaults.update(cold_item_ids="learned", id_dropout=0.0, embedding_size=16)
    model_yaml.write_text(yaml.safe_dump(defaults))
    monkeypatch.setattr(recbole_tpad.config, "properties_dir", lambda: properties)
    _, model, *_ = load_data_and_model(result["saved_model_file"])
    assert model.cold_item_ids == "content" and model.dim == 32 and hasattr(model, "content_head")


def test_run_script_takes_a_variant_by_its_label(run_config, capsys):
    # TPAD-ID is TPAD with use_features: False, so the missing feature file is never read;
    # plain TPAD with the same file refuses to run (test_missing_feature_file_is_a_clear_error)
    argv = ["--model=TPAD-ID", "--dataset=demo", "--feature_file=/nonexistent/f.npy"] + [
        f"--{k}={v}" for k, v in dict(run_config, epochs=1).items()]
    assert run_recbole_tpad.main(argv) == 0
    assert "| TPAD-ID |" in capsys.readouterr().out
    assert run_recbole_tpad.main(["--list-models"]) == 0
    assert "TPAD-zU-SS-default" in capsys.readouterr().out


def test_unknown_model_lists_the_models(run_config, capsys):
    assert run_recbole_tpad.main(["--model=NoSuchModel", "--dataset=demo"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'NoSuchModel'" in err and "TPAD" in err and "SASRec" in err
    assert "variants.yaml" in err


def test_unknown_dataset_lists_the_datasets(run_config, capsys):
    argv = ["--model=SASRec", "--dataset=no-such-data", f"--data_path={run_config['data_path']}"]
    assert run_recbole_tpad.main(argv) == 2
    err = capsys.readouterr().err
    assert "dataset 'no-such-data' not found" in err and "demo" in err and "amazon-sports" in err


def test_missing_feature_file_is_a_clear_error(run_config, capsys):
    from recbole_tpad.data.features import FeatureFileError

    with pytest.raises(FeatureFileError, match="--stage=features --dataset=demo"):
        run("TPAD", "demo", config_dict=dict(run_config, feature_file="/nonexistent/f.npy"),
            saved=False)
    argv = ["--model=TPAD", "--dataset=demo", "--feature_file=/nonexistent/f.npy"] + [
        f"--{k}={v}" for k, v in run_config.items()]
    assert run_recbole_tpad.main(argv) == 2
    assert "error: feature file /nonexistent/f.npy does not exist" in capsys.readouterr().err


def test_invalid_dataset_stops_before_training(run_config, tmp_path, capsys):
    bad = tmp_path / "data" / "bad"
    bad.mkdir(parents=True)
    (bad / "bad.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\nu1\ti1\tmonday\n")
    argv = ["--model=SASRec", "--dataset=bad", f"--data_path={tmp_path / 'data'}", "--state=WARNING"]
    assert run_recbole_tpad.main(argv) == 2
    err = capsys.readouterr().err
    assert "bad.inter:2: field 'timestamp': 'monday' is not a number" in err


def test_settings_refused_against_the_data_are_errors_not_tracebacks(run_config, capsys):
    """What only the data can refuse (a whitening wider than the feature table, a top-k larger
    than the catalogue) ends the run script with the message, not a traceback."""
    base = ["--dataset=demo"] + [f"--{k}={v}" for k, v in run_config.items()]
    assert run_recbole_tpad.main(["--model=TPAD", "--feature_whitening=100000"] + base) == 2
    err = capsys.readouterr().err
    assert "error: TPAD cannot be built with these settings: feature_whitening=100000" in err
    assert "Traceback" not in err
    assert run_recbole_tpad.main(["--model=SASRec", "--topk=[5,100000]", "--valid_metric=ndcg@5"] + base) == 2
    assert "fewer than topk 100000: pass a smaller --topk" in capsys.readouterr().err


def test_bad_command_line_value(capsys):
    assert run_recbole_tpad.main(["--model=TPAD", "epochs=3"]) == 2
    assert "--key=value" in capsys.readouterr().err


def test_help_documents_the_script(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_recbole_tpad.main(["--help"])
    assert exit_info.value.code == 0
    assert "--config_files" in capsys.readouterr().out


def test_raw_amazon_files_to_trained_tpad(tmp_path, monkeypatch):
    """from-amazon output passes validation, gets text features built on demand, trains TPAD."""
    import gzip
    import json

    from dataset_tools.from_amazon import convert

    monkeypatch.chdir(tmp_path)
    reviews = [json.dumps({"reviewerID": f"U{u}", "asin": f"A{(u + 3 * k) % 30}", "overall": 5,
                           "unixReviewTime": 1_300_000_000 + 86400 * k}) for u in range(40) for k in range(5)]
    meta = [repr({"asin": f"A{i}", "title": f"item {i} of group {i % 3}",
                  "categories": [["Sports", f"group{i % 3}"]]}) for i in range(30)]
    (tmp_path / "reviews.json.gz").write_bytes(gzip.compress("\n".join(reviews).encode()))
    (tmp_path / "meta.json.gz").write_bytes(gzip.compress("\n".join(meta).encode()))
    convert(tmp_path / "reviews.json.gz", tmp_path / "meta.json.gz", tmp_path / "data" / "raw-toy",
            "raw-toy", progress=False)
    result = run("TPAD", "raw-toy", config_dict={
        "data_path": str(tmp_path / "data"), "checkpoint_dir": str(tmp_path / "saved"),
        "show_progress": False, "epochs": 1, "embedding_size": 16, "inner_size": 32,
        "state": "WARNING", "feature_source": "text-minilm"}, saved=False)
    assert finite_metrics(result)
    assert (tmp_path / "data" / "raw-toy" / "raw-toy.text-minilm.json").is_file()
    with pytest.raises(ValueError, match="fewer than topk 50"):
        run("SASRec", "raw-toy", config_dict={"data_path": str(tmp_path / "data"), "topk": [10, 50],
                                               "state": "WARNING", "show_progress": False}, saved=False)


def test_interrupted_run_resumes_after_its_last_epoch(run_config):
    import torch

    first = run("TPAD", "demo", config_dict=dict(run_config, epochs=2))
    latest = first["latest_checkpoint"]
    assert torch.load(latest, weights_only=True)["epoch"] == 1
    resumed = run("TPAD", "demo", config_dict=dict(run_config, epochs=3), resume_file=latest)
    # epoch index 2 was trained here; the result reports the whole run (the checkpoint's history)
    assert resumed["epochs_run"] == 3 and [p["epoch"] for p in resumed["valid_curve"]] == [0, 1, 2]
    assert resumed["epoch_times"][:2] == first["epoch_times"]
    assert resumed["stopped_by"] == "epoch cap"  # judged by the whole run, not this call's one epoch
    assert resumed["saved_model_file"] == first["saved_model_file"]  # best model stays apart
    assert torch.load(resumed["latest_checkpoint"], weights_only=True)["epoch"] == 2
    assert finite_metrics(resumed)


def test_a_time_budget_ends_training_and_tests_the_best_model(run_config):
    from recbole_tpad.quick_start import run

    result = run("GRU4Rec", "demo", config_dict=dict(run_config, epochs=50, max_train_minutes=1e-4))
    assert result["stopped_by"] == "time budget" and result["epochs_run"] == 1
    assert result["test_result"]["ndcg@10"] > 0 and result["valid_curve"][0]["epoch"] == 0
