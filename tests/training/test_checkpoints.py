"""Tests of samplenet.training.checkpoints: atomic writes, pointers, policies, restore."""
import json

import keras
import numpy as np
import pytest

from samplenet.testing.toy_model import ToyAR
from samplenet.training import checkpoints
from samplenet.training.checkpoints import CheckpointError, restore, save_checkpoint
from samplenet.training.run_dir import RunDir


def _trained(steps=2, **model_args):
    model = ToyAR(**model_args)
    optimizer = keras.optimizers.Adam(1e-2)
    model.compile(optimizer=optimizer)
    rng = np.random.default_rng(0)
    batch = model.example_batch(4)
    batch["samples"] = rng.integers(0, model.q_levels, batch["samples"].shape).astype(np.int32)
    for _ in range(steps):
        model.train_on_batch(batch)
    return model, optimizer, batch


def _save(folder, model, optimizer, epoch, is_best=True, policy="all"):
    return save_checkpoint(folder, model, optimizer, {"epoch": epoch, "val_loss": 1.0},
                           is_best=is_best, policy=policy)


@pytest.fixture
def run(tmp_path):
    """A run directory whose config.json describes the default ToyAR."""
    run = RunDir(tmp_path / "run").create()
    run.write_config({"family": "toy_ar"})
    return run


def test_checkpoint_round_trip_gives_identical_outputs_and_iterations(run):
    model, optimizer, batch = _trained(steps=3)
    folder = _save(run.checkpoints, model, optimizer, epoch=1)
    clone, clone_optimizer = ToyAR(), keras.optimizers.Adam(1e-2)
    state = restore(clone, clone_optimizer, folder)
    assert state["epoch"] == 1
    assert int(clone_optimizer.iterations) == 3
    np.testing.assert_array_equal(clone(batch), model(batch))
    for mine, theirs in zip(clone_optimizer.variables, optimizer.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_save_checkpoint_writes_state_and_pointers(run):
    model, optimizer, _ = _trained()
    folder = _save(run.checkpoints, model, optimizer, epoch=7)
    assert folder.name == "ckpt-00007"
    assert (run.checkpoints / "latest").read_text().strip() == "ckpt-00007"
    assert (run.checkpoints / "best").read_text().strip() == "ckpt-00007"
    assert json.loads((folder / "state.json").read_text())["epoch"] == 7
    assert checkpoints.latest_checkpoint(run.checkpoints) == folder


def test_policy_best_keeps_only_latest_and_best(run):
    model, optimizer, _ = _trained()
    _save(run.checkpoints, model, optimizer, 1, is_best=False, policy="best")
    _save(run.checkpoints, model, optimizer, 2, is_best=True, policy="best")
    _save(run.checkpoints, model, optimizer, 3, is_best=False, policy="best")
    _save(run.checkpoints, model, optimizer, 4, is_best=False, policy="best")
    names = [p.name for p in checkpoints.complete_checkpoints(run.checkpoints)]
    assert names == ["ckpt-00002", "ckpt-00004"]
    assert checkpoints.best_checkpoint(run.checkpoints).name == "ckpt-00002"


def test_policy_all_keeps_every_checkpoint(run):
    model, optimizer, _ = _trained()
    for epoch in (1, 2, 3):
        _save(run.checkpoints, model, optimizer, epoch, is_best=epoch == 1, policy="all")
    assert len(checkpoints.complete_checkpoints(run.checkpoints)) == 3


def test_leftover_temporary_folder_is_ignored_on_load(run):
    model, optimizer, _ = _trained()
    first = _save(run.checkpoints, model, optimizer, epoch=1)
    leftover = run.checkpoints / ".tmp-ckpt-00002-deadbeef"
    leftover.mkdir()
    (leftover / "ckpt.index").write_bytes(b"partial")
    assert checkpoints.latest_checkpoint(run.checkpoints) == first
    assert checkpoints.complete_checkpoints(run.checkpoints) == [first]


def test_killed_write_leaves_latest_on_the_previous_complete_checkpoint(run, monkeypatch):
    model, optimizer, _ = _trained()
    first = _save(run.checkpoints, model, optimizer, epoch=1)

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        _save(run.checkpoints, model, optimizer, epoch=2)
    monkeypatch.undo()
    assert checkpoints.latest_checkpoint(run.checkpoints) == first
    assert not (run.checkpoints / "ckpt-00002").exists()
    restore(ToyAR(), keras.optimizers.Adam(), checkpoints.latest_checkpoint(run.checkpoints))


def test_latest_without_pointer_is_newest_complete_checkpoint(run):
    model, optimizer, _ = _trained()
    _save(run.checkpoints, model, optimizer, epoch=1)
    second = _save(run.checkpoints, model, optimizer, epoch=2)
    (run.checkpoints / "latest").unlink()
    assert checkpoints.latest_checkpoint(run.checkpoints) == second


def test_pointer_to_missing_checkpoint_raises_naming_it(run):
    run.checkpoints.mkdir(exist_ok=True)
    (run.checkpoints / "latest").write_text("ckpt-00003\n")
    with pytest.raises(CheckpointError, match="ckpt-00003"):
        checkpoints.latest_checkpoint(run.checkpoints)


def test_restore_other_config_raises_naming_checkpoint_and_argument(run):
    model, optimizer, _ = _trained()
    folder = _save(run.checkpoints, model, optimizer, epoch=1)
    with pytest.raises(ValueError) as info:
        restore(ToyAR(q_levels=16), None, folder)
    message = str(info.value)
    assert "ckpt-00001" in message and "q_levels=8" in message and "16" in message


def test_restore_other_family_raises_naming_both(run):
    model, optimizer, _ = _trained()
    folder = _save(run.checkpoints, model, optimizer, epoch=1)
    run.write_config({"family": "wavenet"})
    with pytest.raises(ValueError, match="'wavenet' model, not a 'toy_ar' model"):
        restore(ToyAR(), None, folder)


def test_restore_mismatched_shapes_outside_run_raises_clear_error(tmp_path):
    model, optimizer, _ = _trained()
    folder = _save(tmp_path / "loose", model, optimizer, epoch=1)  # no config.json above it
    with pytest.raises(CheckpointError, match="does not fit this 'toy_ar' model"):
        restore(ToyAR(kernel_size=3), None, folder)


def test_restore_other_optimizer_raises_instead_of_restoring_partially(tmp_path):
    model, optimizer, _ = _trained()
    folder = _save(tmp_path / "loose", model, optimizer, epoch=1)
    with pytest.raises(CheckpointError, match="6 optimizer variables, this optimizer has 2"):
        restore(ToyAR(), keras.optimizers.SGD(), folder)


def test_restore_truncated_data_raises_naming_checkpoint(run):
    model, optimizer, _ = _trained()
    folder = _save(run.checkpoints, model, optimizer, epoch=1)
    data_file = next(folder.glob("ckpt.data-*"))
    data_file.write_bytes(data_file.read_bytes()[:20])
    with pytest.raises(CheckpointError, match="ckpt-00001.*corrupted"):
        restore(ToyAR(), keras.optimizers.Adam(), folder)


def test_restore_incomplete_folder_raises(tmp_path):
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        restore(ToyAR(), None, tmp_path)
