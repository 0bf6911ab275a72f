"""Datasets: the synthetic demo generator, COCO loading, checks and statistics."""
