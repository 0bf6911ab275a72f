"""The study's six classes, as named in its annotation files (the synthetic demos draw them:
as boxes for detection, as masks over a background class for segmentation).

Dependency-free, so the Snakefile can check class descriptions against them while parsing.
"""

CATEGORIES = [
    {"id": 1, "name": "NORMAL"},
    {"id": 2, "name": "DEFORMACIONES"},
    {"id": 3, "name": "ROTURA_FRACTURA"},
    {"id": 4, "name": "RAYONES_ARANAZOS"},
    {"id": 5, "name": "PERFORACIONES"},
    {"id": 6, "name": "CONTAMINACION"},
]

#: Index 0 of the segmentation demo's masks: the intact surface.
BACKGROUND = "background"


def synthetic_class_names() -> list[str]:
    """The segmentation demo's classes: index 0 the intact surface, then the six (their ids)."""
    return [BACKGROUND] + [category["name"] for category in CATEGORIES]
