"""DEIM's stage-2 restart from the best stage-1 state: when it reloads, and what it reloads."""

from __future__ import annotations

import torch

from detstudy.stage_restart import StageRestart
from test_training import run, tiny_splits  # noqa: F401 (the module's fixture)


def test_reloads_when_stage_two_begins_and_after_each_epoch_that_does_not_beat_its_segment():
    """The official det_solver's rule, worked by hand for stage 2 from epoch 4: epoch 4 does
    not beat stage 1's 0.3 (reload); epoch 5 opens a new segment; 6 beats it; 7 does not
    (reload); 8 opens the next segment."""
    restart = StageRestart(first_stage_two_epoch=4)
    reloads = []
    scores = {1: 0.1, 2: 0.3, 3: 0.2, 4: 0.25, 5: 0.2, 6: 0.22, 7: 0.21, 8: 0.5, 9: 0.5}
    best = float("-inf")
    for epoch, score in scores.items():
        if restart.due_before(epoch, best):
            reloads.append(f"before {epoch}")
        if restart.due_after(epoch, score):
            reloads.append(f"after {epoch}")
        best = max(best, score)
    assert reloads == ["before 4", "after 4", "after 7", "after 9"]
    assert not restart.due_after(10, None)  # an epoch without validation decides nothing


def test_a_resumed_job_gets_the_snapshot_of_its_own_run_only(tmp_path):
    path = tmp_path / "best_stage1.pt"
    StageRestart(3, path, fingerprint="a").keep({"model": {"w": torch.ones(2)}})
    ours = StageRestart(3, path, fingerprint="a")
    ours.resume({"segment_best": 0.4, "restarts": 1})
    assert torch.equal(ours.snapshot["model"]["w"], torch.ones(2)) and ours.segment_best == 0.4
    other = StageRestart(3, path, fingerprint="b")
    other.resume({"segment_best": None, "restarts": 0})
    assert other.snapshot is None
    other.discard()
    assert not path.exists()


def test_training_restarts_stage_two_from_the_best_stage_one_weights(tiny_splits, tmp_path, monkeypatch):
    """Stage 2 begins at epoch 3: the weights it starts from are those best.pt held then (the
    EMA of the best stage-1 epoch), and the model, optimizer and EMA all go back together."""
    seen = []
    original = StageRestart.restore

    def spy(self, epoch, targets):
        before = {k: v.clone() for k, v in targets["model"].state_dict().items()}
        assert original(self, epoch, targets)
        saved = torch.load(tmp_path / "best.pt", weights_only=True)
        ema = targets["ema"].module.state_dict()
        assert all(torch.equal(ema[k], v) for k, v in saved["state_dict"].items())
        assert saved["extra"]["epoch"] < 3  # a stage-1 epoch
        if saved["extra"]["epoch"] < epoch - 1:  # the live weights had trained on after the best epoch: back
            assert any(not torch.equal(before[k], v) for k, v in targets["model"].state_dict().items())
        assert targets["optimizer"].state_dict()["state"]  # with the optimizer's moments of then
        seen.append(epoch)
        return True

    monkeypatch.setattr(StageRestart, "restore", spy)
    summary = run(tiny_splits, tmp_path, epochs=4, ema=True, ema_warmups=1, ema_decay=0.5, ema_restart=True,
                  lr_schedule="flat_cosine", augmentation={"horizontal_flip": 0.5, "epochs": [0, 1, 2]})
    assert seen[0] == 3 and summary["stage_restarts"] == len(seen)
