# Render the classification study's report: HTML, Markdown and the LaTeX tables.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.classification_report import classification_report

classification_report(
    metrics_paths=snakemake.input.metrics,
    checks=dict(zip(("train", "val", "test"), snakemake.input.checks)),
    comparisons_json=snakemake.input.comparisons,
    figures=snakemake.params.figures,
    cross_run_figures=snakemake.params.cross_run_figures,
    statistics_figures=snakemake.params.statistics_figures,
    out_html=snakemake.output.html,
    out_md=snakemake.output.markdown,
    out_tables=snakemake.params.tables,
    templates_dir=Path(snakemake.input.templates[0]).parents[1],  # report/templates
    title=snakemake.params.title,
    preview_width=snakemake.params.preview_width,
    jpeg_quality=snakemake.params.jpeg_quality,
)
