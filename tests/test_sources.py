"""FeatureSource: the one place a feature file's name is made (parse, name, path)."""

from pathlib import Path

import pytest

from recbole_tpad.data.sources import FeatureSource, feature_file


@pytest.mark.parametrize("name,producer,view,pretrained", [
    ("text-minilm", "text-minilm", "", False),
    ("tpad-zU", "tpad", "zU", True),
    ("tpad-noHMIE-zU", "tpad-noHMIE", "zU", True),
    ("tpad-zQ", "tpad-zQ", "", False),       # not a pretrainer view: a producer's own name
    ("mine-zU", "mine-zU", "", False),       # a view suffix on another producer is just its name
])
def test_parse_name_round_trip(name, producer, view, pretrained):
    source = FeatureSource.parse(name)
    assert (source.producer, source.view, source.pretrained) == (producer, view, pretrained)
    assert source.name == name
    assert source.path("/d/x", "x") == Path(f"/d/x/x.{name}.npy")


def test_feature_file_prefers_an_explicit_file():
    config = {"feature_file": None, "feature_source": "tpad-zK", "data_path": "/data/shop",
              "dataset": "shop"}
    assert feature_file(config) == Path("/data/shop/shop.tpad-zK.npy")
    assert feature_file(dict(config, feature_file="/x/y.npy")) == Path("/x/y.npy")


def test_the_pretrainer_writes_where_the_model_reads(tmp_path):
    from recbole_tpad.distill.settings import feature_path

    written = feature_path(tmp_path, "demo", "zK", "tpad-noAMIE")
    read = feature_file({"feature_file": None, "feature_source": "tpad-noAMIE-zK",
                         "data_path": str(tmp_path), "dataset": "demo"})
    assert written == read


def test_a_pretraining_seed_names_its_own_files_and_is_read_back():
    """``compare --pretrain-per-seed``: seed 2021 reads ``tpad-s2021-*``; the default pretraining
    seed and sources not made by the pretrainer keep their names."""
    source = FeatureSource.parse("tpad-noHMIE-zU")
    seeded = source.for_pretrain_seed(2021, default_seed=2020)
    assert seeded.name == "tpad-noHMIE-s2021-zU" and FeatureSource.parse(seeded.name) == seeded
    assert seeded.without_pretrain_seed(2021) == source
    assert seeded.without_pretrain_seed(2022) == seeded  # another seed's files are not this row's
    assert source.for_pretrain_seed(2020, default_seed=2020) == source
    assert FeatureSource.parse("text-minilm").for_pretrain_seed(2021, 2020).name == "text-minilm"
