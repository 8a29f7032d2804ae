"""Model names as configured: an exact name (`gpt-4o`) or a family pattern (`aimlapi/*`)."""

from __future__ import annotations

from dataclasses import dataclass, field

FAMILY_SUFFIX = "/*"


@dataclass(frozen=True)
class ModelPattern:
    """One configured name. A family `prefix/*` matches `prefix/<anything non-empty>`; the
    part after the prefix is the variant (the upstream's model, or VLM Run's domain)."""

    text: str
    is_family: bool = field(init=False, compare=False)
    prefix: str = field(init=False, compare=False)  # `aimlapi/` for `aimlapi/*`, else the name

    def __post_init__(self) -> None:
        family = self.text.endswith(FAMILY_SUFFIX)
        object.__setattr__(self, "is_family", family)
        object.__setattr__(self, "prefix", self.text[:-1] if family else self.text)

    def matches(self, model: str) -> bool:
        if not self.is_family:
            return model == self.text
        return len(model) > len(self.prefix) and model.startswith(self.prefix)

    def variant(self, model: str) -> str | None:
        """What the `*` stands for in `model` (None for an exact name)."""
        return model[len(self.prefix) :] if self.is_family and self.matches(model) else None

    def member(self, variant: str) -> str:
        """The model id of one variant of a family: `aimlapi/` + `gpt-4o`."""
        return self.prefix + variant if self.is_family else self.text


def variant_problem(variant: str) -> str | None:
    """Why the part of a model id after a family's prefix can't name a variant: control
    characters, or `.`/`..` segments and backslashes, which a path built from it would
    follow. None when it is fine."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in variant):
        return "control characters"
    if "\\" in variant or any(segment in (".", "..") for segment in variant.split("/")):
        return "a dot segment or a backslash"
    return None
