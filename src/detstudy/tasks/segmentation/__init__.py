"""The semantic segmentation task: images and per-pixel class masks (one value for "ignore").

Data (``data``): a split is a folder of images and a folder of single-channel PNG masks with
the same file stems; checks name every problem before training. Models (``models``): UPerNet
on ConvNeXt (CNN) and on MaxViT (hybrid, a timm encoder), SegFormer (ViT). The protocol
(``metrics``): one confusion matrix over the test split, mIoU as mmsegmentation computes it;
its per-image confusion matrices are what the bootstrap resamples. Its rules are
``rules/segmentation.smk`` (``task: segmentation``).
"""

#: The ``format`` entry of every segmentation checkpoint (``checkpoint.py``), here so that
#: ``detstudy predict`` can tell the tasks apart without importing the models.
CHECKPOINT_FORMAT = "detstudy-segmentation-1"
