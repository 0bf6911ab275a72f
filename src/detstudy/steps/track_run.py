"""Experiment tracking, optional: every finished run in MLflow and in TensorBoard.

Tracking reads the results and writes only its own files: a run's history (per-epoch losses,
learning rate, validation metrics), its test metrics (either task's), its timings and its figures are replayed into

* MLflow (``tracking.mlflow.uri``: a server, or ``sqlite:///mlflow.db``): one MLflow run per
  (model, resolution, phase, seed), nested under one parent run per workflow invocation
  (started by :func:`start_parent` when Snakemake starts), with the run's settings as params,
  the epochs as steps, the test metrics, and the figures as artefacts;
* TensorBoard (``tracking.tensorboard: true``): event files under
  ``results/tensorboard/<model>/<res>px/<phase>/seed<seed>/``, the epochs as steps.

A tracking server that cannot be reached is a warning, never a failed job: the job records
what it could not log in its ``tracked.json`` and the workflow goes on. Nothing here changes a
result file (the metrics are byte-identical with tracking on or off; tested).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from detstudy.engine.history import read_history
from detstudy.engine.io import read_json, write_json

log = logging.getLogger("detstudy.tracking")

#: Fail fast when the server is down: MLflow's own default retries for minutes.
QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
TEST_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")
SEGMENTATION_TEST_METRICS = ("mIoU", "mDice", "aAcc", "mAcc")
CLASSIFICATION_TEST_METRICS = ("accuracy", "macro_F1", "macro_precision", "macro_recall", "weighted_F1",
                               "weighted_precision", "weighted_recall", "top5", "ECE")


def test_metrics(metrics: dict) -> dict[str, float]:
    """A run's test numbers as ``{name: value}``: detection's COCO block, segmentation's summary
    and each class's IoU (``IoU/<class>``), classification's summary, ECE and each class's F1
    (``F1/<class>``); undefined values left out."""
    if "coco" in metrics:
        return {key: float(metrics["coco"][key]) for key in TEST_METRICS if metrics["coco"].get(key) is not None}
    block = metrics["metrics"]
    if metrics.get("task") == "classification":
        found = {key: float(block[key]) for key in CLASSIFICATION_TEST_METRICS if block.get(key) is not None}
        found.update({f"F1/{entry['name']}": float(entry["F1"]) for entry in block["per_class"]})
        return found
    found = {key: float(block[key]) for key in SEGMENTATION_TEST_METRICS if block.get(key) is not None}
    found.update({f"IoU/{entry['name']}": float(entry["IoU"]) for entry in block["per_class"] if entry["IoU"] is not None})
    return found


def _quick_http() -> None:
    for key, value in QUICK_HTTP.items():
        os.environ.setdefault(key, value)


def _flat(prefix: str, value: Any, out: dict[str, str]) -> dict[str, str]:
    """A nested dict as MLflow params (``model.training.lr``: "0.005"), values at most 500 chars."""
    if isinstance(value, dict):
        for key, inner in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, (list, bool)) or value is None else str(value)
        out[prefix] = out[prefix][:500]
    return out


def start_parent(settings: dict, parent_json, name: str) -> str | None:
    """Open this workflow invocation's parent MLflow run and write its id to ``parent_json``;
    ``None`` (and a warning) when tracking is off or the server cannot be reached."""
    uri = (settings.get("mlflow") or {}).get("uri")
    if not uri:
        return None
    Path(parent_json).unlink(missing_ok=True)  # never nest under an earlier invocation's run
    _quick_http()
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        experiment = _experiment(client, settings)
        run = client.create_run(experiment, run_name=name, tags={"detstudy.kind": "workflow"})
    except Exception as error:  # noqa: BLE001 - any failure of the tracking server is a warning
        log.warning("MLflow at %s: cannot start the workflow's run (%s); the runs are not tracked there", uri, error)
        return None
    write_json(parent_json, {"uri": uri, "run_id": run.info.run_id, "experiment_id": experiment,
                             "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return run.info.run_id


def finish_parent(parent_json, status: str = "FINISHED") -> None:
    """Close this invocation's parent run (``FINISHED`` or ``FAILED``) when Snakemake ends."""
    if not Path(parent_json).is_file():
        return
    parent = read_json(parent_json)
    try:
        from mlflow.tracking import MlflowClient

        MlflowClient(parent["uri"]).set_terminated(parent["run_id"], status=status)
    except Exception as error:  # noqa: BLE001 - the tracking server is never the workflow's failure
        log.warning("MLflow at %s: cannot close the workflow's run (%s)", parent["uri"], error)


def _experiment(client, settings: dict) -> str:
    name = (settings.get("mlflow") or {}).get("experiment") or "detstudy"
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _to_mlflow(settings, metrics, speed, history, figures, parent_json) -> dict:
    from mlflow.tracking import MlflowClient

    uri = settings["mlflow"]["uri"]
    client = MlflowClient(uri)
    parent = read_json(parent_json) if parent_json and Path(parent_json).is_file() else None
    tags = {"detstudy.kind": "run", **{f"detstudy.{k}": str(v) for k, v in metrics["run"].items()}}
    if parent and parent.get("uri") == uri:
        tags["mlflow.parentRunId"] = parent["run_id"]
    run = metrics["run"]
    name = f"{run['model']} {run['resolution']}px {run['phase']} seed {run['seed']}"
    created = client.create_run(_experiment(client, settings), run_name=name, tags=tags)
    run_id = created.info.run_id
    try:
        _log_run(client, run_id, metrics, speed, history, figures)
    except Exception:
        client.set_terminated(run_id, status="FAILED")  # not left RUNNING when the server drops mid-way
        raise
    client.set_terminated(run_id)
    return {"logged": True, "run_id": run_id, "parent_run_id": tags.get("mlflow.parentRunId")}


def _log_run(client, run_id: str, metrics, speed, history, figures) -> None:
    from mlflow.entities import Metric, Param

    run = metrics["run"]
    params = _flat("", {"run": run, "config": (metrics.get("provenance") or {}).get("config", {})}, {})
    now = int(time.time() * 1000)
    points = [Metric(f"train/{key}", value, now, int(row["epoch"]))
              for row in history for key, value in row.items() if key != "epoch"]
    points += [Metric(f"test/{key}", value, now, 0) for key, value in test_metrics(metrics).items()]
    for key in ("latency_ms_per_image", "gflops", "peak_memory_mb"):
        if (speed.get("speed") or {}).get(key) is not None:
            points.append(Metric(f"cost/{key}", float(speed["speed"][key]), now, 0))
    param_items = [Param(k, v) for k, v in params.items()]
    for start in range(0, len(param_items), 100):  # MLflow's batch limits: 100 params, 1000 metrics
        client.log_batch(run_id, params=param_items[start:start + 100])
    for start in range(0, len(points), 1000):
        client.log_batch(run_id, metrics=points[start:start + 1000])
    for figure in figures:
        client.log_artifact(run_id, str(figure), artifact_path="figures")


def _to_tensorboard(folder, metrics, history) -> dict:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    Path(folder).mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(folder))
    now = time.time()
    last = 0
    for row in history:
        step = int(row["epoch"])
        last = max(last, step)
        values = [Summary.Value(tag=f"train/{key}", simple_value=value) for key, value in row.items() if key != "epoch"]
        writer.add_event(Event(wall_time=now, step=step, summary=Summary(value=values)))
    test = [Summary.Value(tag=f"test/{key}", simple_value=value) for key, value in test_metrics(metrics).items()]
    writer.add_event(Event(wall_time=now, step=last, summary=Summary(value=test)))
    writer.close()
    return {"logged": True, "folder": str(folder)}


def track_run(*, metrics_json, speed_json, history_csv, figures: list, settings: dict, tracked_json,
              tensorboard_dir=None, parent_json=None) -> dict:
    """Replay one finished run into MLflow and/or TensorBoard (``settings`` is the config's
    ``tracking`` block); ``tracked_json`` records what was logged where."""
    metrics, speed, history = read_json(metrics_json), read_json(speed_json), read_history(history_csv)
    record: dict[str, Any] = {"run": metrics["run"]}
    if (settings.get("mlflow") or {}).get("uri"):
        _quick_http()
        try:
            record["mlflow"] = _to_mlflow(settings, metrics, speed, history, figures, parent_json)
        except Exception as error:  # noqa: BLE001 - a tracking server that is down never fails the job
            log.warning("MLflow at %s: run not logged (%s)", settings["mlflow"]["uri"], error)
            record["mlflow"] = {"logged": False, "error": str(error)[:500]}
    if settings.get("tensorboard") and tensorboard_dir is not None:
        record["tensorboard"] = _to_tensorboard(tensorboard_dir, metrics, history)
    write_json(tracked_json, record)
    return record
