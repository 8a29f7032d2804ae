"""vision-gateway: an OpenAI-compatible gateway for vision-language models."""
