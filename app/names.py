"""Model names as configured: an exact name (`gpt-4o`) or a family pattern (`aimlapi/*`)."""

from __future__ import annotations

from dataclasses import dataclass

FAMILY_SUFFIX = "/*"


@dataclass(frozen=True)
class ModelPattern:
    """One configured name. A family `prefix/*` matches `prefix/<anything non-empty>`; the
    part after the prefix is the variant (the upstream's model, or VLM Run's domain)."""

    text: str

    @property
    def is_family(self) -> bool:
        return self.text.endswith(FAMILY_SUFFIX)

    @property
    def prefix(self) -> str:
        """`aimlapi/` for `aimlapi/*`; the whole name for an exact one."""
        return self.text[:-1] if self.is_family else self.text

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


def most_specific(patterns: list[ModelPattern], model: str) -> ModelPattern | None:
    """The pattern that routes `model`: an exact name beats a family, a longer prefix a
    shorter one."""
    found = [pattern for pattern in patterns if pattern.matches(model)]
    return max(found, key=lambda p: (not p.is_family, len(p.prefix))) if found else None
