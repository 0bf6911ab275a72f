"""The model families of the study, in the order every table and figure shows them."""

FAMILY_ORDER = ("cnn", "hybrid", "vit", "multimodal")
FAMILY_LABELS = {"cnn": "CNN", "hybrid": "Hybrid", "vit": "ViT", "multimodal": "Multimodal"}


def family_rank(family) -> tuple:
    """Sort key: the known families in study order, any other after them by name."""
    family = str(family or "").lower()
    if family in FAMILY_ORDER:
        return (FAMILY_ORDER.index(family), "")
    return (len(FAMILY_ORDER), family)


def family_label(family) -> str:
    return FAMILY_LABELS.get(str(family).lower(), str(family))
