"""Evaluation with one protocol for every model: COCO AP, operating points and confusion matrices."""
