"""Each RecBole shim in recbole_tpad.compat does its one job."""

import importlib
import pickle

import numpy as np
import pytest
import torch

from recbole_tpad import compat


def test_numpy_aliases_restored():
    for name in ("float", "int", "bool", "object", "str", "long", "float_", "complex_", "unicode_"):
        assert hasattr(np, name), name
    assert np.float_ is np.float64
    assert np.float in (float, np.float64)  # RecBole's own Config re-sets it to np.float64


def test_anomaly_detection_off_after_importing_recbole_models():
    importlib.import_module("recbole.model.sequential_recommender.sine")
    assert not torch.is_anomaly_enabled()


class Opaque:  # stands for RecBole's Config, which its own checkpoints pickle
    pass


def test_torch_load_keeps_its_safe_default_after_import():
    import io

    buffer = io.BytesIO()
    torch.save({"config": Opaque()}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buffer)  # the plugin never switches weights_only off


def test_hyperopt_exhaustive_search_runs():
    from hyperopt import hp
    from recbole.trainer.hyper_tuning import HyperTuning

    def objective(config_dict, config_file_list):
        return {"model": "toy", "best_valid_score": 10 - abs(config_dict["x"] - 2),
                "valid_score_bigger": True, "best_valid_result": {}, "test_result": {}}

    def search():
        tuner = HyperTuning(objective, space={"x": hp.choice("x", [0, 1, 2, 3])},
                            algo="exhaustive", max_evals=4)
        tuner.run()
        return tuner

    assert search().best_params == {"x": 2}
    module = importlib.import_module("recbole.trainer.hyper_tuning")
    shimmed, module.np = module.np, np
    try:  # without the shim, hyperopt 0.3 fails on RandomState
        with pytest.raises(AttributeError, match="integers"):
            search()
    finally:
        module.np = shimmed


def test_tpad_registered_for_recbole_get_model():
    from recbole.utils import get_model

    from recbole_tpad.model.tpad import TPAD

    assert get_model("TPAD") is TPAD


def test_apply_is_idempotent():
    import recbole.trainer.hyper_tuning as tuning

    compat.apply()
    shimmed = tuning.np
    compat.fix_hyperopt_rng()
    compat.apply()
    assert tuning.np is shimmed  # not wrapped twice


def test_only_recbole_future_warnings_are_hidden():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        compat.quiet_recbole_future_warnings()
        warnings.warn_explicit("chained fillna", FutureWarning, "dataset.py", 648,
                               module="recbole.data.dataset.dataset")
        warnings.warn_explicit("ours", FutureWarning, "x.py", 1, module="recbole_tpad.x")
        warnings.warn_explicit("theirs", DeprecationWarning, "y.py", 1, module="recbole.y")
    assert [str(w.message) for w in caught] == ["ours", "theirs"]


def test_ensure_dir_tolerates_a_folder_made_in_between(tmp_path, monkeypatch):
    # RecBole checks, then creates: a second run starting at once makes the folder in between.
    # Replay that interleaving: the check says "missing", the folder is already there.
    import os

    import recbole.utils.logger
    import recbole.utils.utils

    target = tmp_path / "log"
    target.mkdir()
    monkeypatch.setattr(os.path, "exists", lambda path: False)
    for module in (recbole.utils.utils, recbole.utils.logger):
        module.ensure_dir(str(target))  # RecBole's own raised FileExistsError here
    monkeypatch.undo()
    recbole.utils.logger.ensure_dir(str(tmp_path / "new" / "deeper"))
    assert (tmp_path / "new" / "deeper").is_dir()


def test_item_files_with_quotes_in_titles_load_for_recboles_own_models(tmp_path):
    """An ``.item`` file whose titles hold double quotes, at the start of a field or inside it,
    loads for a RecBole model that reads item fields (SASRecF's ``selected_features``): every
    row, each value whole (RecBole's own reading raised ParserError, issue #2017)."""
    from recbole.config import Config
    from recbole.data import create_dataset

    folder = tmp_path / "quoted"
    folder.mkdir()
    rows = ["user_id:token\titem_id:token\ttimestamp:float"]
    rows += [f"u{u}\ti{(u + k) % 6}\t{k}" for u in range(8) for k in range(5)]
    (folder / "quoted.inter").write_text("\n".join(rows) + "\n")
    titles = ['"Pro" ruler', '12" ruler', 'plain', 'a "quoted" word', 'end quote"', 'x']
    items = ["item_id:token\ttitle:token_seq\tbrand:token"]
    items += [f"i{k}\t{title}\tb{k % 2}" for k, title in enumerate(titles)]
    (folder / "quoted.item").write_text("\n".join(items) + "\n")
    config = Config(model="SASRecF", dataset="quoted", config_dict={
        "data_path": str(tmp_path), "load_col": {"inter": ["user_id", "item_id", "timestamp"],
                                                 "item": ["item_id", "title", "brand"]},
        "selected_features": ["brand"], "train_neg_sample_args": None, "show_progress": False,
        "state": "ERROR"})
    dataset = create_dataset(config)
    tokens = dataset.field2id_token
    by_item = {tokens["item_id"][int(i)]: (tokens["brand"][int(b)],
                                           " ".join(tokens["title"][int(t)] for t in row if t))
               for i, b, row in zip(dataset.item_feat["item_id"], dataset.item_feat["brand"],
                                    dataset.item_feat["title"]) if int(i)}
    assert by_item == {f"i{k}": (f"b{k % 2}", title) for k, title in enumerate(titles)}
