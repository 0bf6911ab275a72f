"""The files the report writes and the templates it reads: plain names, no dependencies, so
that the Snakefile lists the report rule's outputs from the same list the renderer writes."""

#: The LaTeX tables the report writes: file stem -> template. The workflow's outputs
#: (``rules/common.smk``) and the renderer both read this one list.
LATEX_TABLES = {
    "runs": "runs_table.tex.j2",
    "per_class_ap50": "per_class_ap50.tex.j2",
    "multimodal": "multimodal.tex.j2",
    "strategies": "strategies.tex.j2",
    "errors": "errors_table.tex.j2",
    "costs": "costs_table.tex.j2",
}
#: The segmentation report's LaTeX tables: file stem -> template (in ``report/templates/segmentation``).
SEGMENTATION_LATEX_TABLES = {"segmentation_results": "results.tex.j2", "segmentation_per_class": "per_class.tex.j2",
                             "segmentation_costs": "costs.tex.j2"}
#: Every template the segmentation report renders (its own folder; the shared partials beside it).
SEGMENTATION_TEMPLATES = ("index.html.j2", "report.md.j2", *SEGMENTATION_LATEX_TABLES.values())
#: The classification report's LaTeX tables: file stem -> template (in ``report/templates/classification``).
CLASSIFICATION_LATEX_TABLES = {"classification_results": "results.tex.j2",
                               "classification_train_val_test": "train_val_test.tex.j2",
                               "classification_tests": "tests.tex.j2",
                               "classification_per_class": "per_class.tex.j2", "classification_costs": "costs.tex.j2"}
CLASSIFICATION_TEMPLATES = ("index.html.j2", "report.md.j2", *CLASSIFICATION_LATEX_TABLES.values())
#: Every template the report renders (partials included), checked before anything is read.
TEMPLATES = ("index.html.j2", "report.md.j2", "_style.css.j2", "_table.html.j2", "_table.md.j2", "_table.tex.j2",
             *LATEX_TABLES.values())

__all__ = ["CLASSIFICATION_LATEX_TABLES", "CLASSIFICATION_TEMPLATES", "LATEX_TABLES", "SEGMENTATION_LATEX_TABLES",
           "SEGMENTATION_TEMPLATES", "TEMPLATES"]
