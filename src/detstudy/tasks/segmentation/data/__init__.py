"""Segmentation data: the images/ + masks/ layout, its checks, the dataset statistics and the demo."""
