"""Text-only item features: a frozen sentence encoder (MiniLM by default), the text baseline
producer of the feature-file contract. Not an MLLM, so it lives apart from ``mllm/``."""
