"""Named variants (properties/variants.yaml): a label stands for a model and its settings
wherever a model name is taken, and its own pretraining settings make its features."""

import pytest

from recbole_tpad import variants as variants_module
from recbole_tpad.registry import UnknownModelError
from recbole_tpad.variants import (check_labels, pretrain_only_keys, prepare_variant,
                                   pretrained_views, resolve_variant, with_pretrained_source)


def test_variants_name_a_model_and_its_settings():
    assert resolve_variant("TPAD-zU") == ("TPAD", {"feature_source": "tpad-zU"})
    assert resolve_variant("TPAD-ID") == ("TPAD", {"use_features": False})
    assert resolve_variant("SASRec") == ("SASRec", {})
    assert pretrained_views({"feature_source": "tpad-zK"}) == ({"feature_prefix": "tpad"}, "zK")
    assert pretrained_views({"feature_source": "tpad-noHMIE-zU", "pretrain": {"use_hmie": False}}) == (
        {"use_hmie": False, "feature_prefix": "tpad-noHMIE"}, "zU")
    assert pretrained_views({"feature_source": "text-minilm"}) is None
    # a plain TPAD reads its yaml default, the pretrainer's z_U: made explicit, so the comparison
    # pretrains once before its units; the command line's source or an ID-only run wins
    assert with_pretrained_source("TPAD", {}) == {"feature_source": "tpad-zU"}
    assert with_pretrained_source("TPAD", {}, {"feature_source": "text-minilm"}) == {}
    assert with_pretrained_source("TPAD", {}, {"feature_source": "tpad-zK"}) == {"feature_source": "tpad-zK"}
    assert with_pretrained_source("TPAD", {"use_features": False}) == {"use_features": False}
    assert with_pretrained_source("ContentKNN", {}) == {} and with_pretrained_source("SASRec", {}) == {}
    # pretrain-only settings never reach RecBole's Config; shared ones reach both
    pretrain_only = pretrain_only_keys()
    assert "stage2_steps" in pretrain_only and "seed" not in pretrain_only
    assert "epochs" not in pretrain_only


def test_a_variant_runs_with_its_settings_under_the_command_lines():
    model, settings = prepare_variant("TPAD-text-SS", "demo", {"epochs": 1, "n_negatives": 8})
    assert model == "TPAD" and settings["encoder"] == "sasrec" and settings["loss_type"] == "SS"
    assert settings["epochs"] == 1 and settings["n_negatives"] == 8  # the command line wins
    assert prepare_variant("SASRec", "demo", {"epochs": 1}) == ("SASRec", {"epochs": 1})
    # the comparison's rows: the variant wins over the shared command line
    assert prepare_variant("TPAD-text-SS", "demo", {"epochs": 1}, variant_wins=True)[1]["epochs"] == 200


def test_a_variants_own_pretrain_settings_make_its_features(monkeypatch):
    calls = []
    monkeypatch.setattr("recbole_tpad.distill.runs.ensure_pretrained", lambda *a: calls.append(a))
    model, settings = prepare_variant("TPAD-noHMIE", "demo", {"epochs": 1, "stage2_steps": 3})
    assert calls == [("demo", {"epochs": 1, "stage2_steps": 3, "use_hmie": False,
                               "feature_prefix": "tpad-noHMIE"}, None, ("zU",))]
    # the pretrain-only key went to the pretraining, the rest to RecBole
    assert (model, settings) == ("TPAD", {"feature_source": "tpad-noHMIE-zU", "epochs": 1})
    calls.clear()
    # the default pretrain settings are TPAD's dataset's own job; there a pretrain-only key is
    # kept, so that RecBole's Config refuses it by name instead of it being dropped unread
    assert prepare_variant("TPAD-zU", "demo", {"stage2_steps": 3}) == (
        "TPAD", {"feature_source": "tpad-zU", "stage2_steps": 3})
    # the command line's MiniLM features need no pretraining, whatever the variant's block says
    assert prepare_variant("TPAD-noHMIE", "demo", {"feature_source": "text-minilm"}) == (
        "TPAD", {"feature_source": "text-minilm"})
    assert calls == []


def test_labels_that_name_nothing_are_refused_before_anything_runs(monkeypatch):
    check_labels(["TPAD-zU", "SASRec", "SASRecF-attr", "GRU4Rec"])  # every listed label resolves
    check_labels(list(variants_module.variants()))
    with pytest.raises(UnknownModelError, match="'SASRek' is not a variant of properties/variants.yaml, "
                                                "nor a known model: unknown model 'SASRek'"):
        check_labels(["TPAD", "SASRek"])
    monkeypatch.setattr(variants_module, "variants",
                        lambda: {"Mine": {"model": "SASRecc", "hidden_size": 32}})
    with pytest.raises(UnknownModelError, match="the variant 'Mine' of properties/variants.yaml "
                                                "names an unknown model 'SASRecc'"):
        check_labels(["Mine"])
