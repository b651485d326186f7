"""Tests of samplenet.training.callbacks, driven directly (no fit) on the toy model."""
import csv
import math

import keras
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from samplenet.config import TRAIN_DEFAULTS, build_model
from samplenet.models.samplernn import SampleRNN
from samplenet.testing.toy_model import ToyAR
from samplenet.training import callbacks as cb
from samplenet.training import checkpoints
from samplenet.training.run_dir import RunDir


@pytest.fixture
def model():
    model = ToyAR()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.ensure_built()
    model.optimizer.build(model.trainable_variables)
    return model


def _attach(callback, model):
    callback.set_model(model)
    return callback


def test_checkpoint_writer_every_two_epochs_and_best_follows_val_loss(tmp_path, model):
    writer = _attach(cb.CheckpointWriter(tmp_path, every=2, policy="all"), model)
    writer.on_train_begin()
    for epoch, val_loss in enumerate([3.0, 2.0, 1.0, 4.0]):
        writer.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
    writer.on_train_end()
    assert [p.name for p in checkpoints.complete_checkpoints(tmp_path)] == ["ckpt-00002",
                                                                            "ckpt-00004"]
    assert checkpoints.best_checkpoint(tmp_path).name == "ckpt-00002"
    state = checkpoints.read_state(checkpoints.latest_checkpoint(tmp_path))
    assert state["epoch"] == 4 and state["val_loss"] == 4.0 and state["monitor"] == "val_loss"
    assert state["step"] == 0 and state["metrics"]["loss"] == 1.0


def test_checkpoint_writer_saves_last_epoch_of_session(tmp_path, model):
    writer = _attach(cb.CheckpointWriter(tmp_path, every=2, policy="all"), model)
    writer.on_train_begin()
    for epoch in range(3):
        writer.on_epoch_end(epoch, {"loss": 1.0})
    assert checkpoints.latest_checkpoint(tmp_path).name == "ckpt-00002"
    writer.on_train_end()
    assert checkpoints.latest_checkpoint(tmp_path).name == "ckpt-00003"


def test_checkpoint_writer_skips_non_finite_weights(tmp_path, model):
    writer = _attach(cb.CheckpointWriter(tmp_path), model)
    writer.on_epoch_end(0, {"loss": 1.0})
    model.kernel.assign(np.full(model.kernel.shape, np.nan, np.float32))
    writer.on_epoch_end(1, {"loss": 0.5})
    assert checkpoints.latest_checkpoint(tmp_path).name == "ckpt-00001"


def test_checkpoint_writer_skips_non_finite_loss(tmp_path, model):
    writer = _attach(cb.CheckpointWriter(tmp_path), model)
    writer.on_epoch_end(0, {"loss": math.nan, "val_loss": 1.0})
    assert checkpoints.latest_checkpoint(tmp_path) is None


def test_checkpoint_writer_data_position_counts_batches_not_optimizer_steps(tmp_path, model):
    """Under mixed_float16 a step whose gradients overflowed consumes its batch without being an
    optimizer step: the position a resumed run skips to counts batches."""
    writer = _attach(cb.CheckpointWriter(tmp_path, train_steps=10), model)
    model.optimizer.iterations.assign(13)  # 15 batches, 2 of them skipped steps
    for batch in range(5):
        writer.on_train_batch_end(batch)
    writer.on_epoch_end(0, {"loss": 1.0})
    state = checkpoints.read_state(checkpoints.latest_checkpoint(tmp_path))
    assert state["data_position"] == {"train_steps": 15} and state["step"] == 13


def test_checkpoint_writer_not_chief_writes_nothing_in_run(tmp_path, model):
    writer = _attach(cb.CheckpointWriter(tmp_path / "checkpoints", is_chief=False), model)
    writer.on_epoch_end(0, {"loss": 1.0})
    assert not (tmp_path / "checkpoints").exists()


def test_non_finite_loss_guard_stops_and_names_step(model):
    guard = _attach(cb.NonFiniteLossGuard(), model)
    model.optimizer.iterations.assign(7)
    guard.on_epoch_begin(1)
    guard.on_train_batch_end(2, {"loss": 1.5})
    assert guard.message is None and not model.stop_training
    guard.on_train_batch_end(3, {"loss": float("inf")})
    assert model.stop_training
    assert "epoch 2, batch 4 (optimizer step 7)" in guard.message


def test_csv_log_appends_with_one_header(tmp_path, model):
    path = tmp_path / "log.csv"
    for epoch in range(2):  # two sessions, as after a resume
        _attach(cb.CsvLog(path), model).on_epoch_end(epoch, {"loss": 1.0 - epoch / 2})
    rows = list(csv.DictReader(path.open()))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert [float(row["loss"]) for row in rows] == [1.0, 0.5]
    assert float(rows[0]["learning_rate"]) == pytest.approx(1e-3)


def _events(folder):
    values = {}
    for path in folder.glob("events.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                values[(value.tag, event.step)] = (value.metadata.plugin_data.plugin_name,
                                                   tf.make_ndarray(value.tensor))
    return values


def test_scalar_summaries_write_metrics_and_learning_rate(tmp_path, model):
    writer = tf.summary.create_file_writer(str(tmp_path))
    _attach(cb.ScalarSummaries(writer), model).on_epoch_end(2, {"loss": 0.25})
    events = _events(tmp_path)
    assert events[("loss", 3)][0] == "scalars"
    assert float(events[("loss", 3)][1]) == pytest.approx(0.25)
    assert float(events[("learning_rate", 3)][1]) == pytest.approx(1e-3)


def test_sample_writer_writes_wav_and_audio_summary(tmp_path, model):
    writer = tf.summary.create_file_writer(str(tmp_path / "tb"))
    samples = _attach(cb.SampleWriter(tmp_path / "samples", writer, every=2, seconds=0.01,
                                      sample_rate=model.sample_rate), model)
    samples.on_epoch_end(0)
    assert not (tmp_path / "samples").exists()
    samples.on_epoch_end(1)
    audio, rate = soundfile.read(tmp_path / "samples" / "epoch-00002.wav")
    assert rate == model.sample_rate and audio.shape == (40,)
    assert _events(tmp_path / "tb")[("generated", 2)][0] == "audio"


def test_sample_writer_skips_models_that_cannot_preview(tmp_path, model, monkeypatch):
    monkeypatch.setattr(model, "preview_arguments", lambda: None)
    samples = _attach(cb.SampleWriter(tmp_path, None, every=1, seconds=1.0, sample_rate=8000),
                      model)
    samples.on_epoch_end(0)
    assert samples.every == 0 and not list(tmp_path.iterdir())


def test_sample_writer_previews_a_class_conditioned_model(tmp_path):
    conditioned = SampleRNN(frame_sizes=[4], dim=8, emb_size=4, q_levels=8, seq_len=16,
                            num_classes=3, sample_rate=8000)
    writer = tf.summary.create_file_writer(str(tmp_path / "tb"))
    samples = _attach(cb.SampleWriter(tmp_path / "samples", writer, every=1, seconds=0.004,
                                      sample_rate=8000), conditioned)
    samples.on_epoch_end(0)
    audio, _ = soundfile.read(tmp_path / "samples" / "epoch-00001.wav")
    assert audio.shape == (32,)


def test_preview_arguments_follow_the_conditioning():
    assert SampleRNN(frame_sizes=[4], dim=8, seq_len=16).preview_arguments() == {}
    assert SampleRNN(frame_sizes=[4], dim=8, seq_len=16,
                     num_classes=2).preview_arguments() == {"condition": 0}
    assert build_model("wavenet_toy", local_condition_channels=8).preview_arguments() is None
    assert build_model("soundstream", channels=4, strides=[2], latent_dim=4,
                       num_quantizers=1, codebook_size=4).preview_arguments() is None


@pytest.mark.parametrize("has_validation, monitor", [(True, "val_loss"), (False, "loss")])
def test_make_callbacks_early_stopping_monitor(tmp_path, has_validation, monitor):
    train = {**TRAIN_DEFAULTS, "early_stopping_patience": 2}
    callbacks, guard = cb.make_callbacks(RunDir(tmp_path).create(), train, sample_rate=8000,
                                         has_validation=has_validation, is_chief=True)
    stopping = [c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)]
    assert len(stopping) == 1 and stopping[0].monitor == monitor and stopping[0].patience == 2
    assert guard in callbacks


def test_make_callbacks_patience_zero_disables_early_stopping(tmp_path):
    train = {**TRAIN_DEFAULTS, "early_stopping_patience": 0}
    callbacks, _ = cb.make_callbacks(RunDir(tmp_path).create(), train, sample_rate=8000,
                                     has_validation=True, is_chief=True)
    assert not any(isinstance(c, keras.callbacks.EarlyStopping) for c in callbacks)


@pytest.mark.parametrize("key, value", [("checkpoint_every", 0), ("checkpoint_policy", "some"),
                                        ("early_stopping_patience", -1), ("generate_every", -1)])
def test_make_callbacks_bad_setting_raises_naming_it(tmp_path, key, value):
    with pytest.raises(ValueError, match=key):
        cb.make_callbacks(RunDir(tmp_path).create(), {**TRAIN_DEFAULTS, key: value},
                          sample_rate=8000, has_validation=True, is_chief=True)
