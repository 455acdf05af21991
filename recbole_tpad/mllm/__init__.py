"""Item-feature producers: the frozen text encoder now, the multimodal LLM backbones later."""
