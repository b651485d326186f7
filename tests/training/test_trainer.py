"""Tests of samplenet.training.trainer, samplenet.training.strategy and samplenet.loading, with
short training runs of the toy model (a few steps each)."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from samplenet.loading import load_model, locate
from samplenet import config as schema
from samplenet.testing.toy_model import ToyAR, toy_config
from samplenet.training import checkpoints, strategy, trainer
from samplenet.training.optimizers import make_optimizer
from samplenet.training.run_dir import RunDir

REPO = Path(__file__).resolve().parents[2]


def _latest_state(run_dir):
    return checkpoints.read_state(checkpoints.latest_checkpoint(RunDir(run_dir).checkpoints))


@pytest.mark.slow
def test_train_resume_continues_epoch_and_optimizer_step(tmp_path):
    config = toy_config(epochs=2, steps_per_epoch=3)
    history = trainer.train(config, tmp_path, verbose=0)
    assert len(history["loss"]) == 2 and "val_bits_per_sample" in history
    assert _latest_state(tmp_path)["step"] == 6
    history = trainer.train(config, tmp_path, resume=True, epochs=3, verbose=0)
    assert len(history["loss"]) == 1
    state = _latest_state(tmp_path)
    assert state["epoch"] == 3 and state["step"] == 9
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [(row["epoch"], row["step"]) for row in rows] == [("1", "3"), ("2", "6"), ("3", "9")]
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["family"] == "toy_ar" and saved["train"]["epochs"] == 3


def _final_weights(run_dir):
    return [keras.ops.convert_to_numpy(w) for w in load_model(run_dir).weights]


def _epoch_losses(run_dir, column="loss"):
    return [float(row[column]) for row in csv.DictReader((Path(run_dir) / "log.csv").open())]


@pytest.mark.slow
def test_train_resumed_in_sessions_equals_uninterrupted_run(tmp_path):
    """The data position: a run trained in three sessions sees the same batches (equal losses
    per epoch, train and validation) and ends with the same weights as one session."""
    config = toy_config(epochs=3, steps_per_epoch=3, validation_steps=2)
    whole, pieces = tmp_path / "whole", tmp_path / "pieces"
    trainer.train(config, whole, verbose=0)
    for epochs in (1, 2, 3):
        trainer.train(config, pieces, epochs=epochs, resume=epochs > 1, verbose=0)
    assert _latest_state(pieces)["data_position"] == {"train_steps": 9}
    np.testing.assert_allclose(_epoch_losses(pieces), _epoch_losses(whole), rtol=1e-6)
    np.testing.assert_allclose(_epoch_losses(pieces, "val_loss"),
                               _epoch_losses(whole, "val_loss"), rtol=1e-6)
    for resumed, uninterrupted in zip(_final_weights(pieces), _final_weights(whole)):
        np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_train_writes_run_layout_and_samples(tmp_path):
    trainer.train(toy_config(generate_every=1, generate_seconds=0.01, checkpoint_policy="all",
                             epochs=2), tmp_path, verbose=0)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["epoch-00001.wav",
                                                                      "epoch-00002.wav"]
    assert [p.name for p in checkpoints.complete_checkpoints(tmp_path / "checkpoints")] == [
        "ckpt-00001", "ckpt-00002"]
    assert list((tmp_path / "tensorboard").glob("events.*"))
    assert (tmp_path / "checkpoints" / "best").is_file()


@pytest.mark.slow
def test_train_existing_checkpoints_without_resume_raises(tmp_path):
    trainer.train(toy_config(), tmp_path, verbose=0)
    with pytest.raises(ValueError, match="--resume"):
        trainer.train(toy_config(), tmp_path, verbose=0)


@pytest.mark.slow
def test_resume_with_different_config_raises_naming_key(tmp_path):
    trainer.train(toy_config(), tmp_path, verbose=0)
    with pytest.raises(ValueError, match="kernel_size"):
        trainer.train(toy_config(model={"kernel_size": 3}, epochs=2), tmp_path, resume=True,
                      verbose=0)
    with pytest.raises(ValueError, match="already trained 1 epochs"):
        trainer.train(toy_config(), tmp_path, resume=True, verbose=0)


@pytest.mark.slow
def test_nan_loss_stops_training_and_keeps_last_finite_checkpoint(tmp_path):
    config = toy_config(model={"nan_at_step": 5}, epochs=3, steps_per_epoch=3)
    with pytest.raises(trainer.TrainingDiverged) as info:
        trainer.train(config, tmp_path, verbose=0)
    assert "epoch 2, batch 2 (optimizer step 5)" in str(info.value)
    assert "ckpt-00001" in str(info.value)
    assert _latest_state(tmp_path)["epoch"] == 1
    model = load_model(tmp_path)
    assert all(np.all(np.isfinite(w.numpy())) for w in model.weights)


@pytest.mark.slow
def test_train_without_valid_split_monitors_training_loss(tmp_path):
    history = trainer.train(toy_config(data={"valid_fraction": 0.0}, early_stopping_patience=1,
                                       epochs=2), tmp_path, verbose=0)
    assert "val_loss" not in history and len(history["loss"]) >= 1
    assert _latest_state(tmp_path)["monitor"] == "loss"


@pytest.mark.slow
def test_load_model_from_run_and_checkpoint_folder_match(tmp_path):
    trainer.train(toy_config(), tmp_path, verbose=0)
    run, folder, config = locate(tmp_path)
    assert folder.name == "ckpt-00001" and config["family"] == "toy_ar"
    from_run, from_folder = load_model(tmp_path), load_model(folder)
    batch = from_run.example_batch(2)
    batch["samples"] = np.arange(batch["samples"].size, dtype=np.int32).reshape(
        batch["samples"].shape) % 8
    np.testing.assert_array_equal(from_run(batch), from_folder(batch))
    assert getattr(from_run, "optimizer", None) is None  # weights only


@pytest.mark.slow
def test_evaluate_reports_bits_per_sample_of_the_test_split(tmp_path):
    trainer.train(toy_config(), tmp_path, verbose=0)
    _, folder, config = locate(tmp_path)
    results = trainer.evaluate(load_model(folder), config, split="test")
    assert results["bits_per_sample"] == pytest.approx(results["loss"] / np.log(2), rel=1e-5)
    assert results["num_files"] >= 1 and 0 <= results["accuracy"] <= 1
    trained, untrained = trainer.evaluate_run(tmp_path, "test")
    assert trained == results  # the run's best checkpoint
    keras.utils.set_random_seed(config["train"]["seed"])
    fresh = trainer.evaluate(schema.model_from_config(config), config, split="test")
    assert untrained == fresh and untrained["bits_per_sample"] > trained["bits_per_sample"]


def test_load_model_missing_path_raises_naming_it(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        load_model(tmp_path / "nowhere")


def test_load_model_run_without_checkpoint_raises(tmp_path):
    RunDir(tmp_path).create().write_config(toy_config())
    with pytest.raises(ValueError, match="no checkpoint"):
        load_model(tmp_path)


@pytest.mark.slow
def test_train_mixed_bfloat16_sets_policy_and_keeps_float32_weights(tmp_path):
    try:
        history = trainer.train(toy_config(mixed_precision="mixed_bfloat16"), tmp_path,
                                verbose=0)
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(history["loss"][-1])
    assert all(w.dtype == "float32" for w in load_model(tmp_path).weights)


def test_train_bad_mixed_precision_raises(tmp_path):
    with pytest.raises(ValueError, match="mixed_precision"):
        trainer.train(toy_config(mixed_precision="float8"), tmp_path, verbose=0)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_make_strategy_default_and_unknown():
    assert strategy.make_strategy("default") is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match="horovod"):
        strategy.make_strategy("horovod")


def test_make_strategy_multiworker_without_tf_config_raises(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        strategy.make_strategy("multiworker")


@pytest.mark.parametrize("tf_config", ["{not json", '{"cluster": {}}',
                                       '{"cluster": {"worker": ["a:1"]}, '
                                       '"task": {"type": "worker", "index": 3}}'])
def test_malformed_tf_config_raises(monkeypatch, tf_config):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match="TF_CONFIG is malformed"):
        strategy.make_strategy("multiworker")


@pytest.mark.parametrize("cluster, task, chief", [
    ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0}, True),
    ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1}, False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, True)])
def test_is_chief_follows_tf_config(monkeypatch, cluster, task, chief):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    assert strategy.is_chief(tf.distribute.get_strategy()) is chief


def test_is_chief_without_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert strategy.is_chief(tf.distribute.get_strategy())


_MIRRORED_SCRIPT = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from samplenet.testing.toy_model import toy_config
from samplenet.training import trainer
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
config = toy_config(epochs=2, steps_per_epoch=2)
trainer.train(config, sys.argv[1] + "/whole", strategy=strategy, verbose=0)
trainer.train(config, sys.argv[1] + "/pieces", epochs=1, strategy=strategy, verbose=0)
trainer.train(config, sys.argv[1] + "/pieces", strategy=strategy, verbose=0, resume=True)
"""


@pytest.mark.slow
def test_train_two_replicas_splits_input_and_resumes(tmp_path):
    """Two logical CPUs (set before TensorFlow starts, hence a subprocess) exercise the
    per-replica input pipeline, restoring mirrored variables, and the data position of a
    pipeline that feeds two replicas per step."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT, str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    state = _latest_state(tmp_path / "pieces")
    assert state["epoch"] == 2 and state["step"] == 4
    pieces, whole = (_epoch_losses(tmp_path / run) for run in ("pieces", "whole"))
    np.testing.assert_allclose(pieces, whole, rtol=1e-6)


@pytest.mark.slow
def test_train_load_and_evaluate_wavenet_toy_preset(tmp_path):
    toy = toy_config()
    overrides = {"num_stacks": 1, "num_layers": 3, "target_len": 32, "sample_rate": 4000,
                 **{f"data.{key}": value for key, value in toy["data"].items()},
                 **{f"train.{key}": value for key, value in toy["train"].items()}}
    config = schema.config_for("wavenet_toy", overrides)
    history = trainer.train(config, tmp_path, verbose=0)
    assert np.isfinite(history["val_bits_per_sample"][-1])
    model = load_model(tmp_path)
    assert model.family == "wavenet" and model.num_layers == 3
    results = trainer.evaluate(model, config, split="test", batch_size=2)
    assert np.isfinite(results["bits_per_sample"]) and results["num_files"] >= 1


# ----- mixed_float16: loss scaling ------------------------------------------------------------
def _toy_batch(model, seed=0):
    batch = model.example_batch(4)
    batch["samples"] = np.random.default_rng(seed).integers(
        0, model.q_levels, batch["samples"].shape).astype(np.int32)
    return batch


def _toy_under(policy, optimizer):
    """A ToyAR with fixed initial weights built under the dtype ``policy`` and compiled with
    ``optimizer``."""
    keras.mixed_precision.set_global_policy(policy)
    model = ToyAR()
    model.ensure_built()
    rng = np.random.default_rng(1)
    for weight in model.weights:
        weight.assign(0.3 * rng.normal(size=weight.shape).astype(np.float32))
    model.compile(optimizer=optimizer)
    return model


def test_mixed_float16_step_equals_float32_step():
    """One SGD step under mixed_float16 moves the weights as the float32 step does: the loss
    was multiplied by the loss scale before the gradient and the gradients divided by it (a
    step that skipped ``scale_loss`` would move them 2**15 times less)."""
    updates = {}
    try:
        for policy in ("float32", "mixed_float16"):
            model = _toy_under(policy, make_optimizer({
                "optimizer": "sgd", "learning_rate": 1.0, "clipnorm": 0.0,
                "mixed_precision": "" if policy == "float32" else policy}))
            before = [w.numpy() for w in model.weights]
            logs = model.train_on_batch(_toy_batch(model), return_dict=True)
            assert np.isfinite(logs["loss"])
            updates[policy] = np.concatenate([(w.numpy() - b).ravel()
                                              for w, b in zip(model.weights, before)])
            assert all(w.dtype == "float32" for w in model.weights)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    error = np.linalg.norm(updates["mixed_float16"] - updates["float32"])
    assert error < 0.01 * np.linalg.norm(updates["float32"])


def test_mixed_float16_overflow_skips_the_step_and_halves_the_loss_scale():
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1),
                                                    initial_scale=2.0 ** 60)
    try:
        model = _toy_under("mixed_float16", optimizer)
        before = [w.numpy() for w in model.weights]
        model.train_on_batch(_toy_batch(model))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    # The scaled gradients overflowed float16: no update, and a halved scale.
    assert float(optimizer.dynamic_scale.numpy()) == 2.0 ** 59
    for weight, value in zip(model.weights, before):
        np.testing.assert_array_equal(weight.numpy(), value)


def test_checkpoint_restores_the_loss_scale_optimizer(tmp_path):
    """Weights, slots, step count and the loss-scale state survive a save -> restore."""
    train = {"mixed_precision": "mixed_float16", "learning_rate": 1e-2}
    try:
        model = _toy_under("mixed_float16", make_optimizer(train))
        for seed in range(2):
            model.train_on_batch(_toy_batch(model, seed))
        model.optimizer.dynamic_scale.assign(512.0)
        model.optimizer.step_counter.assign(5)
        folder = checkpoints.save_checkpoint(tmp_path, model, model.optimizer, {"epoch": 1},
                                             is_best=True)
        fresh = _toy_under("mixed_float16", make_optimizer(train))
        checkpoints.restore(fresh, fresh.optimizer, folder)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert len(fresh.optimizer.variables) == len(model.optimizer.variables) > 2
    for restored, saved in zip(fresh.optimizer.variables + fresh.weights,
                               model.optimizer.variables + model.weights):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy())
    assert float(fresh.optimizer.dynamic_scale.numpy()) == 512.0
    assert int(fresh.optimizer.iterations.numpy()) == 2


@pytest.mark.slow
def test_train_mixed_float16_resumed_equals_uninterrupted_run(tmp_path):
    config = toy_config(mixed_precision="mixed_float16", epochs=2, steps_per_epoch=3)
    whole, pieces = tmp_path / "whole", tmp_path / "pieces"
    try:
        history = trainer.train(config, whole, verbose=0)
        trainer.train(config, pieces, epochs=1, verbose=0)
        trainer.train(config, pieces, resume=True, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(history["loss"][-1])
    assert _latest_state(pieces)["step"] == 6
    for resumed, uninterrupted in zip(_final_weights(pieces), _final_weights(whole)):
        assert resumed.dtype == np.float32
        np.testing.assert_array_equal(resumed, uninterrupted)
