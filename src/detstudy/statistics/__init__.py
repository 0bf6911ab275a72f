"""Statistics over test images: bootstrap intervals, paired tests, Holm, seeds."""
