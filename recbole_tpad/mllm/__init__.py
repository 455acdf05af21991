"""The multimodal LLM backbones (offline composed SmolLM2 + EfficientNet-Lite0, Hugging Face
LLaVA- and Qwen2-VL-family models, tiny random ones for tests) with named LoRA adapters, prompts,
and cached batched item encoding. The MiniLM text encoder is in ``recbole_tpad.text``."""
