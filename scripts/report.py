# Render the thesis report (HTML, Markdown, LaTeX tables) from every run's metrics and figures.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.logs import log_to

log_to(snakemake.log[0])
from detstudy.report import MULTIMODAL_FIGURE_KINDS, multimodal_label, render_report, run_label


def as_list(value):
    """A named input/param as a list: absent -> [], one path -> [path]."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


kinds = snakemake.params.figure_kinds
# the multimodal inputs are optional: a config without the extension gives the rule none of them
text_prompts = as_list(snakemake.input.get("text_prompts"))
tables_dir = Path(snakemake.output.runs_table).parent
render_report(
    metrics_paths=snakemake.input.metrics,
    statistics_json=snakemake.input.statistics,
    statistics_png=snakemake.input.statistics_figure,
    figures={run_label(run): {kind: f"{run['dir']}figures/{kind}.png" for kind in kinds} for run in snakemake.params.runs},
    out_html=snakemake.output.html,
    out_md=snakemake.output.markdown,
    out_tables_dir=tables_dir,
    templates_dir=Path(snakemake.input.templates[0]).parent,
    title=snakemake.params.title,
    multimodal_figures={multimodal_label(run): {kind: str(Path(run["dir"]) / f"{kind}.png")
                                                for kind in MULTIMODAL_FIGURE_KINDS}
                        for run in as_list(snakemake.params.get("multimodal"))},
    text_prompts_json=text_prompts[0] if text_prompts else None,
    confusion_pair=as_list(snakemake.params.get("confusion_pair")) or None,
    out_multimodal_tex=snakemake.output.get("multimodal_table") or tables_dir / "multimodal.tex",
)
