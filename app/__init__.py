"""vision-gateway: an OpenAI-compatible gateway for vision-language models."""

__version__ = "0.1.0"
