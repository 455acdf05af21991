"""Tiny random vision-language models built from a config: real architectures, no downloads.

They are what the tests (and anyone without weights) run the HF loading, encoding and LoRA
code on: each builder writes an ordinary ``save_pretrained`` folder (model, tokenizer, image
processor) that :class:`recbole_tpad.mllm.hf_vlm.HFVisionLanguageBackbone` then loads exactly
as it loads a downloaded LLaVA or Qwen2-VL.
"""

from pathlib import Path

import torch

#: Special tokens every tiny tokenizer has (LLaVA's ``<image>``, Qwen2-VL's vision tokens).
SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", "<image>", "<|vision_start|>",
                  "<|vision_end|>", "<|image_pad|>", "<mask>"]
_CORPUS = [
    "The capital of France is Paris. Items: running shoes, tennis racket, yoga mat, bike helmet,",
    "water bottle, camping tent, fishing rod, golf balls, football, basketball, swimming goggles.",
    "Category brand title colour size sport outdoor fitness cycling hiking 0123456789 red blue.",
]


def build_tiny_tokenizer(vocab_size=400):
    """A byte-level BPE tokenizer trained in milliseconds on a fixed corpus (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(_CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>",
                                   unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   mask_token="<mask>", padding_side="left")


def _tiny_text_config(vocab_size):
    return dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128,
                num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                max_position_embeddings=512, tie_word_embeddings=False)


def build_tiny_llava(folder, seed=0):
    """A random LLaVA (CLIP vision tower + Llama text model) saved to ``folder``."""
    from transformers import (CLIPImageProcessorPil, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration)

    torch.manual_seed(seed)
    folder = Path(folder)
    tokenizer = build_tiny_tokenizer()
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=28, patch_size=14),
        text_config=LlamaConfig(**_tiny_text_config(len(tokenizer))),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        pad_token_id=tokenizer.pad_token_id)
    model = LlavaForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
                          ).save_pretrained(folder)
    return folder


def build_tiny_qwen2_vl(folder, seed=0):
    """A random Qwen2-VL (ViT with 2x2 patch merging + Qwen2 text model) saved to ``folder``."""
    from transformers import (Qwen2VLConfig, Qwen2VLForConditionalGeneration,
                              Qwen2VLImageProcessorPil)

    torch.manual_seed(seed)
    folder = Path(folder)
    tokenizer = build_tiny_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    text = _tiny_text_config(len(tokenizer))
    text.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0,
                               "mrope_section": [2, 3, 3]}  # sums to head_dim / 2 = 8
    config = Qwen2VLConfig(
        vision_config=dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        text_config=text,
        image_token_id=ids("<|image_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"), video_token_id=ids("<unk>"),
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id)
    model = Qwen2VLForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 56, patch_size=14,
                             merge_size=2, temporal_patch_size=2).save_pretrained(folder)
    return folder


def build_tiny_llm(folder, seed=0):
    """A random Llama causal LM (the composed backbone's language model) saved to ``folder``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    folder = Path(folder)
    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(**_tiny_text_config(len(tokenizer)), pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


class TinyImageTokens(torch.nn.Module):
    """A fixed random conv net standing in for EfficientNet: image file -> 4 tokens of 16 dims."""

    def __init__(self, seed=0, grid=2):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(16, 3, 4, 4, generator=generator) * 0.1,
                                         requires_grad=False)
        self.grid, self.dim, self.seed = grid, 16, seed

    @torch.no_grad()
    def forward(self, paths):
        import numpy as np
        from PIL import Image

        images = []
        for path in paths:
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB").resize((32, 32)), dtype=np.float32))
        x = (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(self.weight.device) - 127.0) / 128.0
        features = torch.nn.functional.conv2d(x, self.weight, stride=4)
        pooled = torch.nn.functional.adaptive_avg_pool2d(features, self.grid)
        return pooled.flatten(2).transpose(1, 2)

    def identity(self):
        return {"image_encoder": "tiny-random", "seed": self.seed}
