"""The image classification task: images with one class each.

Data (``data``): torchvision's ``ImageFolder`` layout (a folder per split, a sub-folder per
class) or a ``path,label`` CSV per split, checked before training (leakage between splits by
content hash included); the demo crops the synthetic defect world's objects. Models
(``models``): ResNet (CNN, torchvision), MobileViT (hybrid, transformers), a DINOv3 ViT with a
linear head (ViT, transformers), fine-tuned in full, head only or the last n blocks, from
pretrained weights loaded loudly (``weights``: a file, a torchvision weights name, a hub id).
Training (``training``) on the engine: cross-entropy with label smoothing, MixUp/CutMix, the
best epoch by validation accuracy. The protocol (``metrics``): accuracy, top-5, macro and
weighted precision/recall/F1, per-class scores, the confusion matrix and calibration, as
scikit-learn computes them. ``evaluation`` keeps every test image's probabilities beside the
metrics (the bootstrap resamples them: ``detstudy.statistics.classification``); ``predict``
gives the top-k classes of new images. Its rules are ``rules/classification.smk``.
"""

#: The ``format`` entry of every classification checkpoint (``checkpoint.py``), here so that
#: ``detstudy predict`` can tell the tasks apart without importing the models.
CHECKPOINT_FORMAT = "detstudy-classification-1"
