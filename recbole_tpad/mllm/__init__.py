"""The multimodal LLM backbones (offline composed SmolLM2 + EfficientNet-Lite0, Hugging Face
LLaVA- and Qwen2-VL-family models, tiny random ones for tests) with named LoRA adapters, prompts,
and cached batched item encoding; also the MiniLM text encoder, the text-only feature producer."""
