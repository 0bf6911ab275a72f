# Render the thesis report (HTML, Markdown, LaTeX tables) from every run's metrics and figures.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.logs import log_to

log_to(snakemake.log[0])
from detstudy.report import render_report, run_label

kinds = snakemake.params.figure_kinds
render_report(
    metrics_paths=snakemake.input.metrics,
    statistics_json=snakemake.input.statistics,
    statistics_png=snakemake.input.statistics_figure,
    figures={run_label(run): {kind: f"{run['dir']}figures/{kind}.png" for kind in kinds} for run in snakemake.params.runs},
    out_html=snakemake.output.html,
    out_md=snakemake.output.markdown,
    out_tables_dir=Path(snakemake.output.runs_table).parent,
    templates_dir=Path(snakemake.input.templates[0]).parent,
    title=snakemake.params.title,
)
