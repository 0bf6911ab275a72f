"""Dataset checks and statistics on tiny COCO datasets built in tmp_path."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from PIL import Image

from detstudy.tasks.dataset_errors import DatasetError, DatasetWarning
from detstudy.tasks.detection.data.checks import CheckReport, check_dataset
from detstudy.tasks.detection.data.coco import SplitPaths, split_checksum
from detstudy.tasks.detection.data.layout import image_files_stamp
from detstudy.tasks.detection.data.dataset_statistics import count_splits, plot_statistics
from detstudy.steps.check_split import check_split

SIZE = 32
CATEGORIES = [{"id": 1, "name": "scratch"}, {"id": 2, "name": "hole"}]


class TinyDataset:
    """Three splits of three 32x32 RGB PNGs, one box each. Corrupt, then ``write()``."""

    def __init__(self, root: Path, n_images: int = 3):
        self.root = root
        self.data: dict[str, dict] = {}
        for split in ("train", "val", "test"):
            folder = self.image_dir(split)
            folder.mkdir(parents=True)
            images, annotations = [], []
            for i in range(1, n_images + 1):
                file_name = f"img_{i:03d}.png"
                Image.new("RGB", (SIZE, SIZE), (10 * i, 100, 200)).save(folder / file_name)
                images.append({"id": i, "file_name": file_name, "width": SIZE, "height": SIZE})
                annotations.append({"id": 10 + i, "image_id": i, "category_id": 1 + i % 2,
                                    "bbox": [4, 4, 10, 12], "area": 120, "iscrowd": 0})
            self.data[split] = {"images": images, "annotations": annotations,
                                "categories": [dict(c) for c in CATEGORIES]}

    def image_dir(self, split: str) -> Path:
        return self.root / "images" / split

    def json_path(self, split: str) -> Path:
        return self.root / "annotations" / f"{split}.json"

    def image_path(self, split: str, file_name: str = "img_002.png") -> Path:
        return self.image_dir(split) / file_name

    def write(self) -> dict[str, SplitPaths]:
        splits = {}
        for split, data in self.data.items():
            path = self.json_path(split)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data))
            splits[split] = SplitPaths(path, self.image_dir(split))
        return splits

    def set_categories(self, categories: list[dict]) -> None:
        """Use these categories in every split, re-pointing the annotations onto them."""
        for data in self.data.values():
            data["categories"] = [dict(c) for c in categories]
            for n, annotation in enumerate(data["annotations"]):
                annotation["category_id"] = categories[n % len(categories)]["id"]


@pytest.fixture
def tiny(tmp_path) -> TinyDataset:
    return TinyDataset(tmp_path)


def expect_error(splits, *fragments: str, **kwargs) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        with pytest.raises(DatasetError) as info:
            check_dataset(splits, **kwargs)
    message = str(info.value)
    assert "Fix:" in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    return message


# --------------------------------------------------------------------------- passing datasets


def test_valid_dataset_passes(tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = check_dataset(tiny.write())
    assert isinstance(report, CheckReport)
    assert report.warnings == []
    assert report.categories == CATEGORIES
    for split in ("train", "val", "test"):
        info = report.splits[split]
        assert info["n_images"] == 3 and info["n_annotations"] == 3 and info["n_empty_images"] == 0
        assert info["converted_modes"] == {}
        assert info["annotations"] == str(tiny.json_path(split))
    json.dumps(report.to_dict())


def test_box_within_one_pixel_of_the_border_passes(tiny):
    tiny.data["train"]["annotations"][0]["bbox"] = [-0.5, -1, SIZE + 0.5, SIZE + 1]
    check_dataset(tiny.write())


def test_converted_modes_and_empty_images_are_warnings(tiny):
    Image.new("L", (SIZE, SIZE), 128).save(tiny.image_path("train", "img_001.png"))
    Image.new("RGBA", (SIZE, SIZE), (1, 2, 3, 4)).save(tiny.image_path("train", "img_002.png"))
    Image.new("P", (SIZE, SIZE), 3).save(tiny.image_path("val", "img_001.png"))
    Image.new("I;16", (SIZE, SIZE), 40000).save(tiny.image_path("test", "img_003.png"))
    tiny.data["val"]["annotations"] = tiny.data["val"]["annotations"][1:]  # image 1 has no box now
    with pytest.warns(DatasetWarning) as record:
        report = check_dataset(tiny.write())
    assert report.splits["train"]["converted_modes"] == {"L": 1, "RGBA": 1}
    assert report.splits["val"]["converted_modes"] == {"P": 1}
    test_modes = report.splits["test"]["converted_modes"]
    assert sum(test_modes.values()) == 1 and "RGB" not in test_modes  # 16-bit: 'I;16' or 'I'
    assert report.splits["val"]["n_empty_images"] == 1
    assert report.splits["train"]["n_empty_images"] == 0
    text = "\n".join(report.warnings)
    assert "2 image(s) of split 'train' are not RGB (1 L, 1 RGBA)" in text
    assert "1 of 3 image(s) of split 'val' have no boxes" in text
    assert {str(w.message) for w in record} >= set(report.warnings)
    json.dumps(report.to_dict())


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_wide_greyscale_loads_as_its_top_8_bits_in_rgb_not_saturated(tmp_path, mode):
    import numpy as np

    from detstudy.tasks.images import load_rgb

    ramp = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    pixels = {"I;16": ramp, "I;16B": ramp.astype(">u2"), "I": ramp.astype(np.int32)}[mode]
    Image.frombytes(mode, (8, 8), pixels.tobytes()).save(tmp_path / "wide.tif")
    assert Image.open(tmp_path / "wide.tif").mode == mode
    loaded = load_rgb(tmp_path / "wide.tif")
    assert loaded.mode == "RGB" and loaded.size == (8, 8)
    assert np.array_equal(np.asarray(loaded), np.repeat((ramp >> 8).astype(np.uint8)[..., None], 3, axis=2))


def test_duplicate_file_names_are_a_warning(tiny):
    tiny.data["train"]["images"][1]["file_name"] = "img_001.png"
    with pytest.warns(DatasetWarning, match="img_001.png"):
        report = check_dataset(tiny.write())
    assert any("file name" in w for w in report.warnings)


@pytest.mark.parametrize("as_xyxy", [True, False])
def test_boxes_written_as_xyxy_are_suspected(tmp_path, as_xyxy):
    dataset = TinyDataset(tmp_path, n_images=12)
    for i, annotation in enumerate(dataset.data["train"]["annotations"]):
        x1, y1, x2, y2 = 2 + i % 5, 3 + i % 4, 14 + i % 7, 16 + i % 9  # corners, all inside the image
        annotation["bbox"] = [x1, y1, x2, y2] if as_xyxy else [x1 + 10, y1 + 8, x2 - x1, y2 - y1]
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", DatasetWarning)
        report = check_dataset(dataset.write())
    suspected = [w for w in report.warnings if "split 'train' look like [x1, y1, x2, y2]" in w]
    assert bool(suspected) == as_xyxy  # a warning: the boxes are inside the images, nothing fails
    if as_xyxy:
        assert "train.json" in suspected[0] and "12 of 12 boxes" in suspected[0] and "Fix:" in suspected[0]


@pytest.mark.parametrize("ids", [(3, 7, 12), (1, 2, 3), (0, 1, 2)])
def test_non_contiguous_and_one_based_category_ids_pass(tiny, ids):
    categories = [{"id": i, "name": f"class_{i}"} for i in ids]
    tiny.set_categories(categories)
    report = check_dataset(tiny.write())
    assert report.categories == categories


def test_json_only_mode_does_not_open_images(tiny):
    tiny.image_path("train").unlink()
    report = check_dataset(tiny.write(), check_images=False)
    assert report.splits["train"]["n_images"] == 3


# --------------------------------------------------------------------------- one test per failure


def test_missing_image_file(tiny):
    tiny.image_path("train").unlink()
    expect_error(tiny.write(), "train.json", "image 2", "img_002.png", "not found")


def test_missing_images_folder(tiny):
    splits = tiny.write()
    splits["val"] = SplitPaths(splits["val"].annotations, tiny.root / "nowhere")
    expect_error(splits, "val.json", "nowhere", "not found")


def test_unreadable_image(tiny):
    tiny.image_path("val").write_bytes(b"this is not a png at all" * 10)
    expect_error(tiny.write(), "val.json", "image 2", "img_002.png", "cannot")


def test_truncated_image(tiny):
    path = tiny.image_path("test")
    Image.new("RGB", (SIZE, SIZE)).save(path)
    path.write_bytes(path.read_bytes()[:-20])
    expect_error(tiny.write(), "test.json", "img_002.png", "cannot be read")


def test_size_mismatch(tiny):
    Image.new("RGB", (48, SIZE)).save(tiny.image_path("train"))
    expect_error(tiny.write(), "train.json", "image 2", "img_002.png", "48x32", "32x32")


def test_box_outside_image(tiny):
    tiny.data["train"]["annotations"][2]["bbox"] = [20, 20, 20, 5]
    expect_error(tiny.write(), "train.json", "annotation 13", "image 3", "img_003.png", "outside")


def test_box_with_non_positive_size(tiny):
    tiny.data["val"]["annotations"][0]["bbox"] = [10, 5, 0, 12]
    expect_error(tiny.write(), "val.json", "annotation 11", "img_001.png",
                 "[10, 5, 0, 12]", "non-positive width")


def test_bbox_not_four_numbers(tiny):
    tiny.data["val"]["annotations"][0]["bbox"] = [10, 5, 12]
    expect_error(tiny.write(), "val.json", "annotation 11", "not 4 finite numbers")


def test_unknown_image_id(tiny):
    tiny.data["test"]["annotations"][1]["image_id"] = 999
    expect_error(tiny.write(), "test.json", "annotation 12", "image_id 999")


def test_unknown_category_id(tiny):
    tiny.data["train"]["annotations"][0]["category_id"] = 99
    expect_error(tiny.write(), "train.json", "annotation 11", "img_001.png", "category_id 99")


def test_duplicate_image_id(tiny):
    tiny.data["train"]["images"][2]["id"] = 1
    expect_error(tiny.write(), "train.json", "duplicate image id 1", "img_003.png")


def test_duplicate_annotation_id(tiny):
    tiny.data["val"]["annotations"][2]["id"] = 11
    expect_error(tiny.write(), "val.json", "duplicate annotation id 11", "img_003.png")


def test_duplicate_category_id(tiny):
    tiny.data["train"]["categories"].append({"id": 2, "name": "dent"})
    expect_error(tiny.write(), "train.json", "duplicate category id 2", "dent")


def test_categories_differ_between_splits(tiny):
    tiny.data["val"]["categories"][1]["name"] = "perforation"
    tiny.data["test"]["categories"].append({"id": 5, "name": "stain"})
    message = expect_error(tiny.write(), "val.json", "'val'", "'train'", "perforation", "'hole'",
                           "test.json", "'test'", "stain")
    assert "train.json: the categories" not in message


def test_one_split_is_checked_against_the_training_categories(tiny):
    tiny.data["val"]["categories"][1]["name"] = "perforation"
    splits = tiny.write()
    message = expect_error({"val": splits["val"]}, "val.json", "train.json", "perforation", "'hole'",
                           reference=("train", splits["train"].annotations))
    assert "test.json" not in message
    report = check_dataset({"test": splits["test"]}, reference=("train", splits["train"].annotations))
    assert set(report.splits) == {"test"} and report.categories == CATEGORIES


def test_split_check_report_records_the_checksums(tiny, tmp_path):
    splits = tiny.write()
    check = tmp_path / "checks" / "test.json"
    check_split("test", {"annotations": splits["test"].annotations, "images": splits["test"].images},
                check_json=check, reference=("train", str(splits["train"].annotations)))
    written = json.loads(check.read_text())
    assert written["ok"] and written["splits"]["test"]["n_images"] == 3
    assert written["checksum"] == split_checksum(splits["test"])


def test_failed_split_check_writes_no_report(tiny, tmp_path):
    splits = tiny.write()
    tiny.image_path("val").unlink()
    check = tmp_path / "checks" / "val.json"
    with pytest.raises(DatasetError, match="img_002.png"):
        check_split("val", {"annotations": splits["val"].annotations, "images": splits["val"].images},
                    check_json=check)
    assert not check.parent.exists() or not any(check.parent.iterdir())  # no report, no temporary file


def test_empty_split(tiny):
    tiny.data["test"]["images"] = []
    tiny.data["test"]["annotations"] = []
    expect_error(tiny.write(), "test.json", "split 'test' has no images")


def test_invalid_json_file(tiny):
    splits = tiny.write()
    tiny.json_path("val").write_text('{"images": [}')
    expect_error(splits, "val.json", "not valid JSON")


def test_missing_annotation_file(tiny):
    splits = tiny.write()
    tiny.json_path("test").unlink()
    expect_error(splits, "test.json", "not found")


def test_all_problems_are_listed_up_to_max_errors(tiny):
    tiny.image_path("train").unlink()
    tiny.data["val"]["annotations"][0]["bbox"] = [10, 5, 0, 12]
    for n, annotation in enumerate(tiny.data["test"]["annotations"]):
        annotation["image_id"] = 100 + n
    splits = tiny.write()
    message = expect_error(splits, "train.json", "val.json", "test.json", "5 problem(s)")
    assert "more" not in message
    message = expect_error(splits, "and 3 more", max_errors=2)
    assert message.count("\n  - ") == 2


# --------------------------------------------------------------------------- statistics


def test_statistics_counts_are_exact(tmp_path):
    categories = [{"id": 3, "name": "crack"}, {"id": 7, "name": "scratch"}, {"id": 12, "name": "unused"}]
    images = [{"id": i, "file_name": f"{i}.png", "width": 200, "height": 100} for i in (1, 2, 3, 4)]
    boxes = [  # (image, category, w, h) -> bucket
        (1, 3, 31, 33),  # 1023 small
        (1, 3, 32, 32),  # 1024 medium
        (1, 7, 95, 97),  # 9215 medium
        (2, 7, 96, 96),  # 9216 large
        (2, 7, 4, 4),    # 16 small
        (3, 3, 100, 100),  # large
    ]  # image 4 has no box
    annotations = [{"id": n, "image_id": i, "category_id": c, "bbox": [0, 0, w, h]}
                   for n, (i, c, w, h) in enumerate(boxes, start=1)]
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    empty = tmp_path / "val.json"
    empty.write_text(json.dumps({"images": images[:1], "annotations": [], "categories": categories}))

    stats = count_splits({"train": SplitPaths(path, tmp_path), "val": SplitPaths(empty, tmp_path)})
    json.dumps(stats)
    assert stats["categories"] == categories
    train = stats["splits"]["train"]
    assert (train["images"], train["boxes"], train["empty_images"]) == (4, 6, 1)
    assert (train["small"], train["medium"], train["large"]) == (2, 2, 2)
    rows = {row["id"]: row for row in train["per_class"]}
    assert [row["id"] for row in train["per_class"]] == [3, 7, 12]
    assert rows[3] | {} == {"id": 3, "name": "crack", "images": 2, "boxes": 3, "small": 1, "medium": 1,
                            "large": 1, "median_width": 32.0, "median_height": 33.0}
    assert (rows[7]["images"], rows[7]["boxes"], rows[7]["small"], rows[7]["medium"], rows[7]["large"]) \
        == (2, 3, 1, 1, 1)
    assert rows[12]["boxes"] == 0 and rows[12]["images"] == 0 and rows[12]["median_width"] is None
    assert train["box_width"]["median"] == pytest.approx(63.5)  # widths 4 31 32 95 96 100
    assert train["box_height"]["max"] == 100
    assert train["image_width"]["median"] == 200
    val = stats["splits"]["val"]
    assert (val["images"], val["boxes"], val["empty_images"]) == (1, 0, 1)
    assert val["box_width"]["median"] is None


def test_statistics_bucket_by_the_area_field_and_leave_crowd_regions_out_as_coco_does(tmp_path):
    """COCO's AP_S/M/L use the annotation's area (a mask's, smaller than its box) and ignore crowd."""
    categories = [{"id": 1, "name": "crack"}]
    images = [{"id": 1, "file_name": "1.png", "width": 200, "height": 200}]
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "area": 900.0},  # box medium, mask small
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40]},  # no area field: the box's, medium
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 150, 150], "area": 22500.0, "iscrowd": 1},
    ]
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    train = count_splits({"train": SplitPaths(path, tmp_path)})["splits"]["train"]
    assert (train["boxes"], train["crowd_regions"]) == (2, 1)
    assert (train["small"], train["medium"], train["large"]) == (1, 1, 0)
    assert train["per_class"][0]["boxes"] == 2


def test_statistics_of_the_tiny_dataset_and_plot(tiny, tmp_path):
    stats = count_splits(tiny.write())
    assert set(stats["splits"]) == {"train", "val", "test"}
    for split in stats["splits"].values():
        assert split["boxes"] == 3 and split["small"] == 3  # 10x12 boxes
        assert sum(row["boxes"] for row in split["per_class"]) == 3
    out = tmp_path / "figures" / "statistics.png"
    plot_statistics(stats, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as image:
        assert image.size[0] > 300 and image.size[1] > 200


def test_image_stamp_changes_with_any_listed_image_and_only_then(tiny):
    splits = tiny.write()
    stamp = image_files_stamp(splits["test"].annotations, splits["test"].images)
    assert stamp == image_files_stamp(splits["test"].annotations, splits["test"].images)
    (splits["test"].images / "unlisted.png").write_bytes(b"not in the JSON")
    assert image_files_stamp(splits["test"].annotations, splits["test"].images) == stamp
    image = tiny.image_path("test")
    Image.new("RGB", (SIZE, SIZE), (1, 2, 3)).save(image)
    replaced = image_files_stamp(splits["test"].annotations, splits["test"].images)
    assert replaced not in (None, stamp)
    image.unlink()
    assert image_files_stamp(splits["test"].annotations, splits["test"].images) not in (None, stamp, replaced)
    tiny.json_path("test").write_text("{")
    assert image_files_stamp(splits["test"].annotations, splits["test"].images) is None  # the check reports it
