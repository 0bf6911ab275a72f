"""Class descriptions (a YAML file the user edits) and the prompts built from them.

Pure Python + PyYAML: the Snakefile checks the file while it parses the workflow, before
any job starts, so this module must not import torch.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import yaml

FIELDS = ("description", "keywords", "contrast")
PLACEHOLDERS = ("name", *FIELDS)
DEFAULT_PROMPT = "{description}. {contrast}. Keywords: {keywords}."


class DescriptionError(ValueError):
    """A class-descriptions file or prompt template that cannot be used."""


@dataclass(frozen=True)
class ClassDescription:
    name: str
    description: str
    keywords: tuple[str, ...]
    contrast: str

    def prompt(self, template: str = DEFAULT_PROMPT) -> str:
        # fields are sentences without their final period: the template places punctuation
        return template.format(name=self.name, description=_sentence(self.description),
                               keywords=", ".join(self.keywords), contrast=_sentence(self.contrast))


def _sentence(text: str) -> str:
    text = text.rstrip(". ")
    return text[:1].upper() + text[1:]


def _text(path: Path, name: str, key: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DescriptionError(f"{path}: classes.{name}.{key} must be a non-empty string, got {value!r}. "
                               f"Fix: write one English sentence for {key}.")
    return " ".join(value.split())


def load_descriptions(path: str | Path) -> dict[str, ClassDescription]:
    """Read and validate the file: ``classes: {NAME: {description, keywords, contrast}}``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DescriptionError(f"{path}: class-descriptions file not found. Fix: point multimodal.descriptions "
                               "to a file like config/class_descriptions.yaml.") from None
    except yaml.YAMLError as error:
        raise DescriptionError(f"{path}: not valid YAML ({error}). Fix: correct the syntax.") from None
    classes = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(classes, dict) or not classes:
        raise DescriptionError(f"{path}: expected a top-level `classes:` mapping of category name -> "
                               f"{{{', '.join(FIELDS)}}}. Fix: see config/class_descriptions.yaml.")
    descriptions = {}
    for name, entry in classes.items():
        if not isinstance(entry, dict):
            raise DescriptionError(f"{path}: classes.{name} must be a mapping with {', '.join(FIELDS)}.")
        unknown, missing = sorted(set(entry) - set(FIELDS)), [k for k in FIELDS if k not in entry]
        if unknown or missing:
            problems = "; ".join(p for p in (unknown and f"unknown keys {unknown}", missing and f"lacks {missing}") if p)
            raise DescriptionError(f"{path}: classes.{name}: {problems}. Fix: give exactly {', '.join(FIELDS)}.")
        keywords = entry["keywords"]
        if isinstance(keywords, str):
            keywords = [k.strip() for k in keywords.split(",")]
        if not isinstance(keywords, list) or not keywords:
            raise DescriptionError(f"{path}: classes.{name}.keywords must be a non-empty list of words.")
        descriptions[str(name)] = ClassDescription(
            name=str(name), description=_text(path, name, "description", entry["description"]),
            keywords=tuple(_text(path, name, "keywords", k) for k in keywords),
            contrast=_text(path, name, "contrast", entry["contrast"]))
    return descriptions


def check_template(template: str) -> None:
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as error:
        raise DescriptionError(f"multimodal.prompt {template!r}: {error}. Fix: balance the braces.") from None
    unknown = sorted(fields - set(PLACEHOLDERS))
    if unknown or not fields:
        raise DescriptionError(f"multimodal.prompt {template!r} uses {unknown or 'no placeholders'}. "
                               f"Fix: use only {{{'}, {'.join(PLACEHOLDERS)}}}.")


def prompts_for(descriptions: dict[str, ClassDescription], category_names: list[str], template: str,
                source: str | Path = "class descriptions") -> list[str]:
    """One prompt per dataset category, in the dataset's category order."""
    check_template(template)
    missing = [name for name in category_names if name not in descriptions]
    if missing:
        raise DescriptionError(f"{source}: no description for the dataset's categories {missing} (it describes "
                               f"{sorted(descriptions)}). Fix: add an entry under `classes:` for each of them, "
                               "spelled as in the annotation files.")
    return [descriptions[name].prompt(template) for name in category_names]
