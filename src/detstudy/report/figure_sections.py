"""The report's figures: which kinds, in which order and under which title, and how they are
referenced (embedded in the HTML as ``data:`` URIs of downsized previews that link to the full
files, linked relative to the Markdown)."""

from __future__ import annotations

import base64
import io
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from detstudy.study.figure_kinds import FIGURE_KINDS, MULTIMODAL_FIGURE_KINDS, VIT_FIGURE_KINDS  # noqa: F401 (re-exported)
from detstudy.study.grid import run_label
from detstudy.report.formatting import fmt_number, slug
from detstudy.report.tables import as_number

#: Figures that are photographs (test images under the boxes): their previews are JPEG; the
#: plots' are palette PNG, which keeps their flat colours and sharp text at a fraction of the size.
PHOTO_KINDS = frozenset({"predictions", *VIT_FIGURE_KINDS})


@dataclass(frozen=True)
class Preview:
    """How the HTML embeds a figure: at most ``width`` pixels wide (``None``: as it is)."""
    width: int | None = 1000
    jpeg_quality: int = 80


def relative_link(path, folder) -> str:
    """``path`` relative to ``folder`` as a URL-quoted POSIX path (a Markdown link target)."""
    relative = Path(os.path.relpath(Path(path).resolve(), Path(folder).resolve())).as_posix()
    return quote(relative)


def data_uri(path) -> str:
    path = Path(path)
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix.lower() == ".svg":
        mime = "image/svg+xml"
    payload = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{mime};base64,{payload}"


def preview_uri(path, kind: str, preview: Preview) -> str:
    """A ``data:`` URI of ``path`` scaled down to ``preview.width``: JPEG for a photograph,
    a 256-colour PNG for a plot (SVG as it is)."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() == ".svg":
        return data_uri(path)
    with Image.open(path) as image:
        image.load()
    if preview.width and image.width > preview.width:
        height = max(1, round(image.height * preview.width / image.width))
        image = image.resize((preview.width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if kind in PHOTO_KINDS:
        image.convert("RGB").save(buffer, format="JPEG", quality=preview.jpeg_quality, optimize=True)
        mime = "image/jpeg"
    else:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
            buffer, format="PNG", optimize=True)
        mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def figure_item(kind: str, title: str, path, md_dir: Path, preview: Preview | None = Preview()) -> dict:
    """One figure: its file, its link from the report's folder, and what the HTML embeds
    (its ``preview``; ``None``: nothing, for the Markdown, which links the files)."""
    path = Path(path)
    exists = path.is_file()
    uri = preview_uri(path, kind, preview) if exists and preview is not None else None
    return {
        "kind": kind,
        "title": title,
        "uri": uri,
        "missing": not exists,
        "path": str(path),
        "relpath": relative_link(path, md_dir),
    }


def without_uris(sections: list[dict]) -> list[dict]:
    """Figure sections for the Markdown, which links the files and never uses the data URIs."""
    return [dict(s, figures=[dict(f, uri=None) for f in s["figures"]]) for s in sections]


def multimodal_sections(figures: dict, md_dir: Path, preview: Preview | None = Preview()) -> list[dict]:
    """One section per (model, resolution, seed) label with its two cross-run figures, in the given order."""
    sections = []
    for label, kinds in (figures or {}).items():
        items = [figure_item(kind, title, kinds[kind], md_dir, preview)
                 for kind, title in MULTIMODAL_FIGURE_KINDS.items() if (kinds or {}).get(kind)]
        sections.append({"label": label, "id": "multimodal-" + slug(label), "figures": items})
    return sections


def figure_sections(figures: dict, runs: list[dict], md_dir: Path, summaries: dict,
                    preview: Preview | None = Preview()) -> list[dict]:
    order = {run_label(run): i for i, run in enumerate(runs)}
    labels = sorted(figures or {}, key=lambda lab: (order.get(lab, len(order)), list(figures).index(lab)))
    sections = []
    used_ids = set()
    for label in labels:
        kinds = figures[label] or {}
        known = {**FIGURE_KINDS, **VIT_FIGURE_KINDS}
        ordered = [k for k in known if k in kinds] + [k for k in kinds if k not in known]
        items = []
        for kind in ordered:
            path = kinds[kind]
            if path is None:
                continue
            title = known.get(kind, str(kind).replace("_", " ").capitalize())
            items.append(figure_item(kind, title, path, md_dir, preview))
        anchor = "run-" + slug(label)
        while anchor in used_ids:
            anchor += "-x"
        used_ids.add(anchor)
        sections.append({"label": label, "id": anchor, "figures": items, "summary": summaries.get(label)})
    return sections


def run_summaries(runs: list[dict]) -> dict[str, str]:
    out = {}
    for run in runs:
        coco = run.get("coco") or {}
        best = (run.get("operating_points") or {}).get("best_f1") or {}
        parts = [
            f"mAP {fmt_number(as_number(coco.get('AP')))}",
            f"AP50 {fmt_number(as_number(coco.get('AP50')))}",
            f"AR@100 {fmt_number(as_number(coco.get('AR100')))}",
        ]
        if best:
            parts.append(
                f"best F1 {fmt_number(as_number(best.get('f1')))} at score ≥ {fmt_number(as_number(best.get('score_threshold')), 2)}"
            )
        out[run_label(run)] = " · ".join(parts)
    return out


def statistics_figure(path, md_dir: Path, preview: Preview | None = Preview()) -> dict | None:
    """The dataset statistics figure (``None`` when the report has none)."""
    if path is None:
        return None
    return figure_item("statistics", "Dataset statistics", path, md_dir, preview)
