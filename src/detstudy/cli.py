"""The ``detstudy`` command: what the workflow's results are used for outside Snakemake.

    detstudy predict --checkpoint results/runs/.../best.pt --images DIR --out DIR [--score-threshold T]

A detection checkpoint writes detections and box overlays; a segmentation checkpoint writes a
class-index mask and an overlay per image; a classification checkpoint writes each image's top-k
classes with their probabilities (the checkpoint says which it is).
"""

from __future__ import annotations

import argparse
import logging
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detstudy", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="detect, segment or classify new images with a run's checkpoint",
                                  description="Predict on every image of a folder with any run's best.pt. A "
                                              "detection checkpoint writes COCO detections (the checkpoint's "
                                              "category ids), the images and categories, and an overlay per "
                                              "image; a segmentation checkpoint writes masks/<stem>.png (class "
                                              "indices), overlays/ and classes.json; a classification checkpoint "
                                              "writes predictions.csv and predictions.json (the top-k classes and "
                                              "their probabilities per image).")
    predict.add_argument("--checkpoint", required=True, help="a run's best.pt")
    predict.add_argument("--images", required=True, help="a folder of images (jpg, png, bmp, tif, webp)")
    predict.add_argument("--out", required=True, help="the output folder (new or empty)")
    predict.add_argument("--score-threshold", type=float, default=0.3,
                         help="detection: the overlays draw detections at or above it (all are written; default 0.3)")
    predict.add_argument("--top-k", type=int, default=5, help="classification: classes per image (default 5)")
    predict.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, or auto (default)")
    predict.add_argument("--batch-size", type=int, default=4)
    predict.add_argument("--overwrite", action="store_true", help="replace the results in a non-empty --out")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "predict":
        from detstudy.tasks.prediction import PredictError, checkpoint_format
        from detstudy.tasks.classification import CHECKPOINT_FORMAT as CLASSIFICATION_FORMAT
        from detstudy.tasks.segmentation import CHECKPOINT_FORMAT as SEGMENTATION_FORMAT

        try:
            found = checkpoint_format(args.checkpoint)
            if found == CLASSIFICATION_FORMAT:
                from detstudy.tasks.classification.predict import predict_classes

                done = predict_classes(checkpoint=args.checkpoint, images=args.images, out=args.out,
                                       top_k=args.top_k, device=args.device, batch_size=args.batch_size,
                                       overwrite=args.overwrite)
                print(f"top-{min(args.top_k, len(done['classes']))} classes of {done['images']} images in {done['out']}")
                return 0
            if found == SEGMENTATION_FORMAT:
                from detstudy.tasks.segmentation.predict import predict_masks

                done = predict_masks(checkpoint=args.checkpoint, images=args.images, out=args.out,
                                     device=args.device, overwrite=args.overwrite)
                print(f"{done['images']} masks of {len(done['classes'])} classes in {done['out']}")
                return 0
            from detstudy.tasks.detection.predict import predict

            done = predict(checkpoint=args.checkpoint, images=args.images, out=args.out,
                           score_threshold=args.score_threshold, device=args.device, batch_size=args.batch_size,
                           overwrite=args.overwrite)
        except PredictError as error:
            print(f"detstudy predict: error: {error}", file=sys.stderr)
            return 2
        print(f"{done['detections']} detections on {done['images']} images in {done['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
