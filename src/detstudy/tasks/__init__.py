"""The tasks a study can run (the config's ``task:``), behind one seam: ``detection``,
``segmentation`` and ``classification``. Each task has its rules file(s), which the
Snakefile includes by ``task:``; the comparisons and their figures are shared (any task's
statistics.json: its summary metrics and one per-class statistic).

What a task supplies, and where the detection task keeps it:

========================  =========================================  ============================
supplied                  meaning                                    detection
========================  =========================================  ============================
dataset format, checks    a split's files; every problem named       ``data.coco``, ``data.checks``
                          (file, item, fix) before any training
synthetic demo            the generated world of the six classes     ``data.synthetic``
model families            builders keyed by the architecture         ``models.BUILDERS``
                          registry (``detstudy.study.architectures``)
training parts            :class:`detstudy.engine.training.          ``training.train_run``
                          TrainingParts`: data, adapter, batch
                          transfer, validation metrics, saving
evaluation protocol       the ``metrics`` block of metrics.json and  ``evaluation.metrics``
                          the headline metric                        (COCO AP / AP50)
per-image statistic       what the bootstrap resamples over test     ``evaluation.resampled_ap``
                          images                                     (COCOeval re-accumulated)
per-run figures           drawn with ``detstudy.engine.figure_style``  ``plots``, ``attention_plots``
========================  =========================================  ============================

``segmentation`` supplies the same (rules/segmentation.smk): ``data.layout``/``data.checks``
(images/ + masks/, 255 ignore), ``data.synthetic`` (the same world as masks), ``models``
(``SEGMENTATION_VARIANTS``), ``training.train_run``, ``metrics`` (mIoU as mmsegmentation) and
a confusion matrix per image as the per-image statistic (``metrics.resampled_statistics``,
through :func:`detstudy.statistics.bootstrap.resample` like detection's), ``plots`` and
``samples`` (the overlays' predicted masks, kept by the evaluation). ``classification``
(rules/classification.smk): ``data.layout``/``data.checks`` (ImageFolder tree or path,label
CSV, leakage by content hash), ``data.synthetic`` (the world's objects as crops), ``models``
(``CLASSIFICATION_VARIANTS``), ``training.train_run``, ``metrics`` (accuracy, macro F1 as
scikit-learn) and every test image's probabilities as the per-image statistic
(:mod:`detstudy.statistics.classification`: exact from drawn image indices), ``plots``,
``predict``. Shared by the tasks: ``synthetic_defects`` (the demo world), ``images``
(the decoder), ``dataset_errors``. A task imports only ``study``, ``engine`` and ``tasks``
(tests/test_import_graph.py).
"""
