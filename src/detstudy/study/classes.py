"""The study's six classes, as named in its annotation files (the synthetic demo draws them).

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
