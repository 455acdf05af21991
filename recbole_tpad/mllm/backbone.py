"""The one interface every MLLM backbone offers TPAD, and the named LoRA adapters they share.

A backbone encodes a batch of items into one hidden state per prompt (its last token's, or the
mean over its tokens: :data:`POOLINGS`), scores
target text for the generation loss, and carries named LoRA adapters (``knowledge`` and
``transfer``) on one frozen base model, switchable per call and saved as adapter files only.
"""

import contextlib
import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from recbole_tpad.mllm.prompts import ENCODE_PROMPT, PromptTemplate, read_length

ADAPTERS = ("knowledge", "transfer")
#: How a prompt's token states become one vector: ``last`` (the last token's, which has read
#: the whole prompt in a causal model: the method's reading) or ``mean`` (the average over the
#: prompt's real tokens, which weighs every word of the item alike).
POOLINGS = ("last", "mean")


class BackboneError(RuntimeError):
    """A backbone cannot be loaded or used as asked; the message says what to do."""


@dataclass
class LoraSettings:
    """LoRA on the language model: rank, scaling, target projections and (optionally) only the
    top layers, which lets the frozen lower layers' states be computed once and reused."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list = field(default_factory=lambda: ["q_proj", "v_proj"])
    lora_layers: list = None  # layer indices; None = every layer
    init_weights: bool = True  # False: random B as well (tests: adapters differ at once)


class Backbone(ABC):
    """Base class: subclasses set ``self.model`` (the frozen base, later a peft model),
    ``self.hidden_size`` and implement :meth:`encode` and :meth:`generation_loss`."""

    model = None
    hidden_size = None
    #: a trainable image projector trained in stage 1 (the composed backbone's), or None
    projector = None
    #: where the model's weights are; every input a method builds is put there
    device = torch.device("cpu")

    def extra_modules(self):
        """Modules outside ``self.model`` that compute on the inputs (projector, image encoder)."""
        return [m for m in (self.projector,) if m is not None]

    def to(self, device):
        """Move the frozen model, its adapters and the extra modules to ``device``; the
        backbone's methods put the inputs they build there too. Returns ``self``."""
        self.device = torch.device(device)
        self.model.to(self.device)
        for module in self.extra_modules():
            module.to(self.device)
        return self

    # ------------------------------------------------------------------ identity
    @abstractmethod
    def identity(self):
        """A dict naming the base weights exactly (files and checksums): part of cache keys."""

    def fingerprint(self):
        """Checksum of :meth:`identity` plus any trainable non-LoRA weights (the projector)."""
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode())
        for tensor in self.extra_state().values():
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    def extra_state(self):
        """Trainable weights outside LoRA (the composed backbone's projector), by name."""
        return {}

    def load_extra_state(self, state):
        if state:
            raise BackboneError(f"{type(self).__name__} has no extra weights to load")

    # ------------------------------------------------------------------ adapters
    def lora_host(self):
        """The module LoRA is added to (the language model, or the whole VLM)."""
        return self.model

    def lora_target_modules(self, settings):
        return settings.target_modules

    def lora_layers_to_transform(self, settings):
        return settings.lora_layers

    def add_adapters(self, settings=None, names=ADAPTERS):
        """Add one LoRA adapter per name, all on the same frozen base; the first is active."""
        from peft import LoraConfig, PeftModel, get_peft_model

        settings = settings or LoraSettings()
        config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha,
                            lora_dropout=settings.dropout,
                            target_modules=self.lora_target_modules(settings),
                            layers_to_transform=self.lora_layers_to_transform(settings),
                            init_lora_weights=settings.init_weights)
        host = self.lora_host()
        for name in names:
            if isinstance(host, PeftModel):
                host.add_adapter(name, config)
            else:
                host = get_peft_model(host, config, adapter_name=name)
                self._set_lora_host(host)
        host.set_adapter(names[0])
        self._all_lora_trainable()
        self.lora_settings = settings
        return host

    def _all_lora_trainable(self):
        # peft's set_adapter freezes every inactive adapter; here all adapters stay trainable
        # and a trainer picks what it optimises (adapter_parameters).
        for name, parameter in self.lora_host().named_parameters():
            if "lora_" in name:
                parameter.requires_grad_(True)

    def _set_lora_host(self, peft_model):
        self.model = peft_model

    def base_model(self):
        """The model under any peft wrapper (peft injects the LoRA layers into it in place)."""
        from peft import PeftModel

        return self.model.get_base_model() if isinstance(self.model, PeftModel) else self.model

    def adapter_names(self):
        host = self.lora_host()
        return list(getattr(host, "peft_config", {}) or {})

    @contextlib.contextmanager
    def using(self, adapter):
        """Run the block with ``adapter`` active (``None``: the frozen base alone)."""
        host = self.lora_host()
        if adapter is None:
            if not self.adapter_names():
                yield
                return
            with host.disable_adapter():
                yield
            return
        if adapter not in self.adapter_names():
            raise BackboneError(f"no adapter {adapter!r}; this backbone has {self.adapter_names()}: "
                                "call add_adapters() or load_adapter() first")
        previous = host.active_adapter
        host.set_adapter(adapter)
        # set_adapter just froze the other adapters; a graph built earlier through them must
        # still reach their weights in backward, so trainability is kept as it was.
        self._all_lora_trainable()
        try:
            yield
        finally:
            host.set_adapter(previous)
            self._all_lora_trainable()

    def adapter_parameters(self, adapter):
        """The trainable LoRA tensors of one adapter."""
        return [p for n, p in self.lora_host().named_parameters() if f".{adapter}." in n]

    def adapter_fingerprint(self, adapter):
        """Checksum of one adapter's weights (``None`` adapter: ``"base"``)."""
        if adapter is None:
            return "base"
        digest = hashlib.sha256(adapter.encode())
        for name, tensor in sorted(self.lora_host().named_parameters()):
            if f".{adapter}." in name:
                digest.update(name.encode() + tensor.detach().float().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    def save_adapter(self, adapter, folder):
        """Write one adapter (peft's adapter files) and the extra weights; not the base model."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.lora_host().save_pretrained(str(folder), selected_adapters=[adapter])
        extra = self.extra_state()
        if extra:
            save_file({k: v.detach().contiguous().cpu() for k, v in extra.items()},
                      str(folder / "extra_weights.safetensors"))
        (folder / "backbone.json").write_text(json.dumps(
            {"adapter": adapter, "backbone": self.identity(), "lora": asdict(self.lora_settings)},
            indent=1, default=str))
        return folder

    def load_adapter(self, adapter, folder):
        """Load an adapter written by :meth:`save_adapter` under the name ``adapter``."""
        from peft import PeftModel
        from safetensors.torch import load_file

        folder = Path(folder)
        source = folder / adapter if (folder / adapter / "adapter_config.json").is_file() else folder
        if not (source / "adapter_config.json").is_file():
            raise BackboneError(f"{folder} holds no adapter files (adapter_config.json); "
                                "write them with save_adapter()")
        meta = json.loads((folder / "backbone.json").read_text()) if (folder / "backbone.json").is_file() else {}
        if meta.get("backbone") and meta["backbone"] != self.identity():
            raise BackboneError(f"adapter in {folder} was trained on backbone {meta['backbone']}, "
                                f"not on this one ({self.identity()})")
        host = self.lora_host()
        if isinstance(host, PeftModel):
            if adapter in self.adapter_names():
                host.delete_adapter(adapter)
            host.load_adapter(str(source), adapter_name=adapter)
        else:
            host = PeftModel.from_pretrained(host, str(source), adapter_name=adapter)
            self._set_lora_host(host)
        self.lora_settings = LoraSettings(**meta["lora"]) if meta.get("lora") else LoraSettings()
        if (folder / "extra_weights.safetensors").is_file():
            self.load_extra_state(load_file(str(folder / "extra_weights.safetensors")))
        self._all_lora_trainable()

    # ------------------------------------------------------------------ the work
    @abstractmethod
    def encode(self, items, prompt=None, adapter=None, pooling="last"):
        """Hidden states ``[len(items), hidden_size]`` of ``prompt`` around each item, pooled
        over its tokens as ``pooling`` says (:func:`pooled_states`)."""

    @abstractmethod
    def generation_loss(self, items, targets, prompt=None, adapter=None):
        """Mean token cross-entropy of ``targets`` (one string per item) after each item's prompt."""

    def template(self, prompt):
        return prompt if isinstance(prompt, PromptTemplate) else PromptTemplate(prompt or ENCODE_PROMPT)

    def read_lengths(self, items, prompt=None):
        """How long each item's prompt is to read: the sort key of length-sorted batches
        (:func:`~recbole_tpad.mllm.prompts.length_batches`). This default counts characters;
        a backbone that can count its tokens cheaply does so (padding follows tokens)."""
        return [read_length(item) for item in items]

    # ------------------------------------------------------------------ what the pretrainer calls
    #: A declared capability: the backbone can run its decoder in two parts (the frozen layers
    #: ``0:upto`` once per item, :meth:`lower_states`; the LoRA layers ``upto:`` every step,
    #: :meth:`encode_from_lower`), the pretrainer's cached-lower-layers speed path. Backbones
    #: without it are pretrained through their full forward (:meth:`encode` every step).
    split_forward = False

    @property
    @abstractmethod
    def n_layers(self):
        """Decoder layers of the language model (LoRA goes on the top ``lora_top_layers``)."""

    def lower_states(self, items, prompt=None, upto=0):
        """Layer-``upto`` states of each item's prompt: a list of ``[L_i, hidden_size]``
        (``split_forward`` backbones only)."""
        raise BackboneError(f"{type(self).__name__} has no split forward (split_forward=False)")

    @abstractmethod
    def encode_from_lower(self, states, upto, adapter=None, pooling="last"):
        """Pooled states ``[len(states), hidden_size]`` (:func:`pooled_states`; the pretrainer's
        session pass keeps ``last``, which has read the whole session) of the language model's layers
        ``upto:`` run on ``states``: sequences of layer-``upto`` vectors (lower states, or any
        input vectors such as the pretrainer's soft tokens of a session). ``upto`` 0 (input
        embeddings) works on every backbone; above 0 needs ``split_forward``."""

    @staticmethod
    def pad_left(sequences):
        """Left-pad ``[L_i, H]`` sequences into ``[B, L, H]`` plus mask and position ids."""
        length = max(s.shape[0] for s in sequences)
        hidden = sequences[0].shape[1]
        batch = sequences[0].new_zeros(len(sequences), length, hidden)
        mask = torch.zeros(len(sequences), length, dtype=torch.long, device=batch.device)
        for row, sequence in enumerate(sequences):
            batch[row, length - sequence.shape[0]:] = sequence
            mask[row, length - sequence.shape[0]:] = 1
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        return batch, mask, positions


def last_token_states(hidden, attention_mask):
    """The last real token's state of each row, for left or right padding alike."""
    positions = attention_mask.long().cumsum(1).argmax(1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), positions]


def pooled_states(hidden, attention_mask, pooling="last"):
    """One vector per row of ``hidden`` ``[B, L, H]``: see :data:`POOLINGS`. Padding (mask 0)
    never enters, whichever side it is on."""
    if pooling == "last":
        return last_token_states(hidden, attention_mask)
    if pooling == "mean":
        weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
    raise BackboneError(f"pooling={pooling!r}: use one of {', '.join(POOLINGS)}")
