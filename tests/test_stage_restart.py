"""DEIM's stage-2 restart from the best stage-1 state: when it reloads, and what it reloads."""

from __future__ import annotations

import torch

from detstudy.engine.resume import TrainingState
from detstudy.engine.stage_restart import StageRestart
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
    TrainingState(tmp_path, "a").save({"epoch": 1})  # the state that records (and promotes) it
    ours = StageRestart(3, path, fingerprint="a")
    ours.resume({"segment_best": 0.4, "restarts": 1})
    assert torch.equal(ours.snapshot["model"]["w"], torch.ones(2)) and ours.segment_best == 0.4
    other = StageRestart(3, path, fingerprint="b")
    other.resume({"segment_best": None, "restarts": 0})
    assert other.snapshot is None
    other.discard()
    assert not path.exists()


def test_training_restarts_stage_two_from_the_best_stage_one_state(tiny_splits, tmp_path, monkeypatch):
    """Stage 2 begins at epoch 3. Its first reload brings back the EMA that best.pt held then
    (the best stage-1 epoch's), and every reload brings back the weights, the EMA with its
    update count and the optimizer's moments of that epoch, all together."""
    kept, reloads = [], []
    keep, restore = StageRestart.keep, StageRestart.restore

    def spy_keep(self, state):
        keep(self, state)
        kept.append(self.snapshot)

    def spy_restore(self, epoch, targets):
        assert restore(self, epoch, targets)
        snapshot = kept[-1]
        if not reloads:  # stage 2 begins: best.pt is still the best stage-1 epoch
            saved = torch.load(tmp_path / "best.pt", weights_only=True)
            ema = targets["ema"].module.state_dict()
            assert saved["extra"]["epoch"] < 3
            assert all(torch.equal(ema[k], v) for k, v in saved["state_dict"].items())
        for name in ("model", "ema"):
            now = targets[name].state_dict()
            assert all(torch.equal(now[k].cpu(), v) for k, v in snapshot[name].items()), name
        assert int(targets["ema"].n_averaged) == int(snapshot["ema"]["n_averaged"])
        moments = targets["optimizer"].state_dict()["state"]
        assert moments and all(torch.equal(moments[i]["exp_avg"], snapshot["optimizer"]["state"][i]["exp_avg"])
                               for i in moments)
        reloads.append(epoch)
        return True

    monkeypatch.setattr(StageRestart, "keep", spy_keep)
    monkeypatch.setattr(StageRestart, "restore", spy_restore)
    summary = run(tiny_splits, tmp_path, epochs=4, ema=True, ema_warmups=1, ema_decay=0.5, ema_restart=True,
                  lr_schedule="flat_cosine", augmentation={"horizontal_flip": 0.5, "epochs": [0, 1, 2]})
    assert 1 <= len(kept) <= 2  # only stage-1 epochs that improved
    assert reloads[0] == 3 and summary["stage_restarts"] == len(reloads)


def test_every_restart_reloads_the_snapshot_as_it_was_kept():
    """Adam adopts the tensors of a CPU state dict and updates them in place: a restart must hand
    it a copy, or the next restart reloads the moments of the epochs after the first."""
    from detstudy.engine.stage_restart import StageRestart

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)

    def step():
        optimizer.zero_grad()
        model(torch.ones(4, 3)).sum().backward()
        optimizer.step()

    step()
    restart = StageRestart(2)
    restart.keep({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
    kept = {k: v.clone() for k, v in restart.snapshot["optimizer"]["state"][0].items()}
    targets = {"model": model, "optimizer": optimizer}
    for epoch in (2, 3):
        assert restart.restore(epoch, targets)
        for name, value in kept.items():
            assert torch.equal(optimizer.state_dict()["state"][0][name], value), (epoch, name)
        step()  # training after the restart
    for name, value in kept.items():
        assert torch.equal(restart.snapshot["optimizer"]["state"][0][name], value), name
