"""How one pair of classes is confused, read off a confusion matrix (no dependencies: the figures
and the report both use it, in the report's environment)."""

from __future__ import annotations


def pair_confusion(confusion: dict, pair) -> dict[str, dict[str, int]]:
    """For each ground-truth class of ``pair`` = (a, b): its test boxes detected as a, as b, as
    another class (``other``) and not at all (``missed``), from a confusion matrix (rows GT)."""
    labels = [str(label) for label in confusion["labels"]]
    classes, background = labels[:-1], labels[-1]
    pair = [str(name) for name in pair or []]
    if len(pair) != 2 or pair[0] == pair[1]:
        raise ValueError(f"confusion pair {pair}: needs two different class names. "
                         "Fix: set multimodal.confusion_pair in the config to two of " + ", ".join(classes))
    for name in pair:
        if name not in classes:
            raise ValueError(f"confusion pair class {name!r} is not a class of the confusion matrix "
                             f"(classes: {', '.join(classes)}). Fix: set multimodal.confusion_pair in the "
                             "config to two of these names.")
    matrix = confusion["matrix"]
    out = {}
    for gt in pair:
        row = [int(v) for v in matrix[labels.index(gt)]]
        counts = {name: row[labels.index(name)] for name in pair}
        counts["missed"] = row[labels.index(background)]
        counts["other"] = sum(row) - sum(counts.values())
        out[gt] = counts
    return out
