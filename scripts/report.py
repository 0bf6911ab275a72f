# Render the thesis report (HTML, Markdown, LaTeX tables) from every run's metrics and figures.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.report import report

# the multimodal inputs are empty lists when the config has no multimodal extension
text_prompts = snakemake.input.text_prompts
report(
    metrics=snakemake.input.metrics,
    statistics_json=snakemake.input.statistics,
    statistics_png=snakemake.input.statistics_figure,
    comparisons_json=snakemake.input.comparisons,
    statistics_figures=snakemake.input.statistics_figures,
    cross_run_figures=snakemake.input.cross_run_figures,
    runs=snakemake.params.runs,
    multimodal_groups=snakemake.params.multimodal,
    text_prompts_json=text_prompts[0] if text_prompts else None,
    confusion_pair=snakemake.params.confusion_pair,
    templates_dir=Path(snakemake.input.templates[0]).parent,
    title=snakemake.params.title,
    out_html=snakemake.output.html,
    out_md=snakemake.output.markdown,
    out_tables_dir=Path(snakemake.output.tables[0]).parent,
    preview_width=snakemake.params.preview_width,
    jpeg_quality=snakemake.params.jpeg_quality,
    expected=snakemake.params.expected,
)
