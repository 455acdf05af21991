"""Any local Hugging Face vision-language model as a TPAD backbone (LLaVA and Qwen2-VL families).

``from_pretrained(folder)`` loads the model, its tokenizer and its image processor; a hub id
works where a hub is reachable. Inputs are built here rather than by the model's ``Processor``
(which needs torchvision for Qwen2-VL): the tokenizer for text, the image processor for pixels,
and each family's own image-token expansion. LoRA goes on the language model's attention only,
never on the vision tower.
"""

from pathlib import Path

import torch

from recbole_tpad.mllm.backbone import Backbone, BackboneError, pooled_states
from recbole_tpad.mllm.offline import file_sha256

FAMILIES = ("llava", "qwen2_vl")


class HFVisionLanguageBackbone(Backbone):
    """A LLaVA- or Qwen2-VL-family model from a folder (or hub id), frozen, with LoRA adapters."""

    def __init__(self, name_or_path, dtype=torch.float32):
        from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        self.name_or_path = str(name_or_path)
        try:
            config = AutoConfig.from_pretrained(self.name_or_path)
        except OSError as error:
            raise BackboneError(f"cannot load a model config from {self.name_or_path!r}: give a "
                                f"local model folder (or a hub id where a hub is reachable)") from error
        self.family = config.model_type
        if self.family not in FAMILIES:
            raise BackboneError(f"{self.name_or_path}: model type {self.family!r} is not supported; "
                                f"supported families: {', '.join(FAMILIES)}")
        self.config = config
        self.tokenizer = AutoTokenizer.from_pretrained(self.name_or_path)
        self.tokenizer.padding_side = "left"
        self.image_processor = AutoImageProcessor.from_pretrained(self.name_or_path)
        self.model = AutoModelForImageTextToText.from_pretrained(self.name_or_path, dtype=dtype).eval()
        self.model.requires_grad_(False)
        self.hidden_size = config.text_config.hidden_size
        self.image_token_id = config.image_token_id
        self._identity = None

    def identity(self):
        # Hashing the weight files is the slow part; they do not change under a loaded model,
        # and every cache key and adapter save asks for the identity again.
        if self._identity is None:
            folder = Path(self.name_or_path)
            files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
            self._identity = {"kind": "hf", "family": self.family,
                              "model": folder.name or self.name_or_path,
                              "weights_sha256": [file_sha256(f)[:16] for f in files] or None}
        return self._identity

    def lora_target_modules(self, settings):
        layers = r"\d+" if settings.lora_layers is None else "|".join(map(str, settings.lora_layers))
        targets = "|".join(settings.target_modules)
        return rf".*language_model\.layers\.({layers})\..*\.({targets})"

    def lora_layers_to_transform(self, settings):
        return None  # the layers are in the target regex (peft takes them only with a list)

    # ------------------------------------------------------------------ inputs
    def _image_inputs(self, items):
        from PIL import Image

        paths = [item.image for item in items if item.has_image()]
        if not paths:
            return {}, []
        images = []
        for path in paths:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        pixels = dict(self.image_processor(images=images, return_tensors="pt"))
        if self.family == "qwen2_vl":
            merge = self.image_processor.merge_size ** 2
            counts = [int(t.prod()) // merge for t in pixels["image_grid_thw"]]
        else:
            vision = self.config.vision_config
            counts = [(vision.image_size // vision.patch_size) ** 2
                      + (1 if getattr(self.config, "vision_feature_select_strategy", "default") == "full" else 0)
                      ] * len(paths)
        return pixels, counts

    def _image_ids(self, count):
        if self.family == "qwen2_vl":
            ids = self.tokenizer.convert_tokens_to_ids
            return [ids("<|vision_start|>")] + [self.image_token_id] * count + [ids("<|vision_end|>")]
        return [self.image_token_id] * count

    def _batch(self, items, template, targets=None):
        pixels, counts = self._image_inputs(items)
        counts = iter(counts)
        rows, labels = [], []
        for index, item in enumerate(items):
            before, after = template.split(item)
            ids = self.tokenizer(before, add_special_tokens=False)["input_ids"]
            if item.has_image():
                ids += self._image_ids(next(counts))
            ids += self.tokenizer(after, add_special_tokens=False)["input_ids"]
            label = [-100] * len(ids)
            if targets is not None:
                target = self.tokenizer(" " + targets[index], add_special_tokens=False)["input_ids"]
                target.append(self.tokenizer.eos_token_id)
                ids, label = ids + target, label + target
            rows.append(ids)
            labels.append(label)
        length = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.tensor([[pad] * (length - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (length - len(r)) + [1] * len(r) for r in rows])
        batch = {"input_ids": input_ids, "attention_mask": mask, **pixels}
        if self.family == "qwen2_vl":
            batch["mm_token_type_ids"] = (input_ids == self.image_token_id).int()
        if targets is not None:
            batch["labels"] = torch.tensor([[-100] * (length - len(l)) + l for l in labels])
        return {key: value.to(self.device) if torch.is_tensor(value) else value
                for key, value in batch.items()}

    # ------------------------------------------------------------------ the work
    def encode(self, items, prompt=None, adapter=None, pooling="last"):
        template = self.template(prompt)
        with self.using(adapter):
            batch = self._batch(items, template)
            output = self.base_model().model(**batch)
        return pooled_states(output.last_hidden_state, batch["attention_mask"], pooling)

    @property
    def n_layers(self):
        return self.config.text_config.num_hidden_layers

    def encode_from_lower(self, states, upto, adapter=None, pooling="last"):
        """Input-embedding sequences (``upto`` 0) through the language model, pooled states:
        the pretrainer's session pass over soft tokens. No split forward here."""
        if upto != 0:
            raise BackboneError(f"{type(self).__name__} has no split forward: encode_from_lower "
                                f"takes input embeddings (upto=0), not layer-{upto} states")
        with self.using(adapter):
            batch, mask, positions = self.pad_left(states)
            output = self.base_model().model.language_model(
                inputs_embeds=batch, attention_mask=mask, position_ids=positions)
        return pooled_states(output.last_hidden_state, mask, pooling)

    def generation_loss(self, items, targets, prompt=None, adapter=None):
        from recbole_tpad.mllm.prompts import GENERATE_PROMPT

        template = self.template(prompt or GENERATE_PROMPT)
        with self.using(adapter):
            batch = self._batch(items, template, targets)
            return self.base_model()(**batch).loss
