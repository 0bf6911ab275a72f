"""Experiment tracking: a finished run replayed into MLflow (read back with MlflowClient from a
SQLite store) and TensorBoard (read back with its event reader); a server that is down warns
and goes on."""

from __future__ import annotations

import json
import logging
import time

import pytest
from test_report import TINY_PNG, _metrics

from detstudy.steps.track_run import finish_parent, start_parent, track_run

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")

HISTORY = "epoch,lr,loss,loss_box,val_AP,val_AP50,seconds,images_per_second\n" \
          "1,0.01,2.0,1.0,,,3.0,10\n2,0.005,1.5,0.7,0.2,0.4,3.1,11\n"


@pytest.fixture()
def finished_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow puts artefacts under ./mlruns of the working directory
    metrics = _metrics("frcnn_r18", "cnn", 0, 0.55)
    speed = {"run": metrics["run"], "speed": metrics.pop("speed"), "train_seconds": 6.1}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "speed.json").write_text(json.dumps(speed))
    (tmp_path / "history.csv").write_text(HISTORY)
    figure = tmp_path / "pr_curves.png"
    figure.write_bytes(TINY_PNG)
    return {"metrics_json": tmp_path / "metrics.json", "speed_json": tmp_path / "speed.json",
            "history_csv": tmp_path / "history.csv", "figures": [figure]}


def test_a_run_lands_in_mlflow_nested_under_the_workflows_run(finished_run, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = {"mlflow": {"uri": uri, "experiment": "thesis"}, "tensorboard": False}
    parent = start_parent(settings, tmp_path / "parent.json", name="workflow test")
    record = track_run(**finished_run, settings=settings, tracked_json=tmp_path / "tracked.json",
                       parent_json=tmp_path / "parent.json")
    assert record["mlflow"]["logged"] and record["mlflow"]["parent_run_id"] == parent
    client = MlflowClient(uri)
    run = client.get_run(record["mlflow"]["run_id"])
    assert run.data.tags["mlflow.parentRunId"] == parent and run.info.run_name == "frcnn_r18 256px base seed 0"
    assert run.data.params["run.model"] == "frcnn_r18" and run.data.params["run.resolution"] == "256"
    assert run.data.metrics["test/AP50"] == 0.55
    losses = client.get_metric_history(run.info.run_id, "train/loss")
    assert [(m.step, m.value) for m in losses] == [(1, 2.0), (2, 1.5)]
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/val_AP50")] == [(2, 0.4)]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "figures")] == ["figures/pr_curves.png"]
    assert client.get_experiment(run.info.experiment_id).name == "thesis"
    assert json.loads((tmp_path / "tracked.json").read_text())["mlflow"]["run_id"] == run.info.run_id
    assert run.info.status == "FINISHED" and client.get_run(parent).info.status == "RUNNING"
    finish_parent(tmp_path / "parent.json", "FINISHED")
    assert client.get_run(parent).info.status == "FINISHED"


def test_tensorboard_event_files_hold_every_epoch_and_the_test_metrics(finished_run, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = tmp_path / "tensorboard" / "run"
    track_run(**finished_run, settings={"mlflow": {"uri": None}, "tensorboard": True},
              tracked_json=tmp_path / "tracked.json", tensorboard_dir=folder)
    events = EventAccumulator(str(folder))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 2.0), (2, 1.5)]
    assert [(e.step, round(e.value, 6)) for e in events.Scalars("test/AP50")] == [(2, 0.55)]
    assert "train/val_AP" in events.Tags()["scalars"]


def test_a_server_that_is_down_warns_and_goes_on(finished_run, tmp_path, caplog):
    settings = {"mlflow": {"uri": "http://127.0.0.1:9", "experiment": "x"}, "tensorboard": False}  # nothing listens
    caplog.set_level(logging.WARNING, logger="detstudy.steps.track_run")
    (tmp_path / "parent.json").write_text(json.dumps({"uri": "http://127.0.0.1:9", "run_id": "old"}))
    started = time.monotonic()
    assert start_parent(settings, tmp_path / "parent.json", name="w") is None  # and the old parent is gone
    record = track_run(**finished_run, settings=settings, tracked_json=tmp_path / "tracked.json",
                       parent_json=tmp_path / "parent.json")
    assert time.monotonic() - started < 60
    assert record["mlflow"]["logged"] is False and not (tmp_path / "parent.json").exists()
    assert "cannot start the workflow's run" in caplog.text and "run not logged" in caplog.text
    assert json.loads((tmp_path / "tracked.json").read_text())["mlflow"]["logged"] is False
