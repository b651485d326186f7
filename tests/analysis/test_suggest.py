"""Tests of samplenet.analysis.suggest: suggested configs build, train a step, cover the
measured correlation, fit the memory budget, and are read unchanged by train.py --config."""
import dataclasses

import numpy as np
import pytest
from absl import flags

from samplenet.analysis import analyze_dataset, suggest_config
from samplenet.analysis.suggest import speech_like
from samplenet.cli import train as train_cli
from samplenet.data import from_spec
from samplenet.data.pipelines import training_dataset
from samplenet import config as schema
from samplenet.testing.sources import ArraySource
from samplenet.training.optimizers import make_optimizer

AR1 = "builtin:ar2?a=0.9&b=0&num_items=8&item_seconds=1"  # correlation length 10


@pytest.fixture(scope="module")
def ar1_report():
    return analyze_dataset(AR1, quiet=True)


def _train_one_step(config):
    model = schema.model_from_config(config)
    source = from_spec(config["data"]["spec"])
    dataset = training_dataset(model, source, batch_size=config["train"]["batch_size"],
                               **config["data"])
    model.compile(optimizer=make_optimizer(config["train"]))
    history = model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    return model


def _read_by_train_cli(path):
    values = flags.FlagValues()
    train_cli.define_flags(values)
    values(["train", f"--config={path}"])
    return train_cli.build_config(values)[0]


@pytest.mark.slow
def test_suggested_wavenet_builds_trains_and_covers_the_correlation(ar1_report, tmp_path):
    suggestion = suggest_config(ar1_report, "wavenet", preset="wavenet_toy",
                                overrides={"target_len": 64})
    path = suggestion.write(tmp_path / "wavenet.json")
    config = _read_by_train_cli(path)
    assert config == suggestion.config
    assert config["data"]["spec"] == AR1 and config["quantization"] == "linear"
    model = _train_one_step(config)
    assert ar1_report.correlation_length_samples == 10
    assert model.receptive_field >= ar1_report.correlation_length_samples
    assert model.receptive_field == suggestion.covered_samples
    assert model.receptive_field < 4 * 10  # fitted to the data, not the preset's 256
    assert any("receptive field" in reason for reason in suggestion.reasons)


@pytest.mark.slow
def test_suggested_samplernn_builds_trains_and_spans_the_correlation(ar1_report, tmp_path):
    suggestion = suggest_config(ar1_report, "samplernn", overrides={
        "dim": 16, "emb_size": 8, "mlp_layers": 2, "train.batch_size": 2})
    config = _read_by_train_cli(suggestion.write(tmp_path / "samplernn.json"))
    assert config == suggestion.config and config["train"]["batch_size"] == 2
    model = _train_one_step(config)
    assert model.frame_sizes[-1] >= ar1_report.correlation_length_samples
    assert model.seq_len % model.frame_sizes[-1] == 0


def test_samplernn_top_frame_grows_with_the_correlation(ar1_report):
    longer = dataclasses.replace(ar1_report, correlation_length_samples=300)
    suggestion = suggest_config(longer, "samplernn", overrides={"dim": 8, "emb_size": 4})
    assert suggestion.config["frame_sizes"] == [16, 64, 256, 1024]
    assert suggestion.covered_samples == 1024 >= 300


def test_wavenet_receptive_field_covers_a_long_correlation(ar1_report):
    longer = dataclasses.replace(ar1_report, correlation_length_samples=3000)
    suggestion = suggest_config(longer, "wavenet", preset="wavenet_toy")
    assert 3000 <= suggestion.covered_samples < 2 * 3000
    assert suggestion.config["num_layers"] <= 10


def test_linear_ar_order_is_the_predictable_lag():
    report = analyze_dataset("builtin:ar2?num_items=8&item_seconds=1", quiet=True)
    suggestion = suggest_config(report, "linear_ar")
    assert suggestion.config["order"] == report.predictable_lag_samples == 2


def test_batch_size_fits_the_memory_budget(ar1_report):
    large = suggest_config(ar1_report, "wavenet", preset="wavenet_toy")
    weights = 4 * schema.build_model("wavenet_toy").ensure_built().count_params() * 4
    per_sequence = (large.training_memory_bytes - weights) / large.config["train"]["batch_size"]
    budget = weights + 3.5 * per_sequence
    small = suggest_config(ar1_report, "wavenet", preset="wavenet_toy", memory_bytes=budget)
    assert small.config["train"]["batch_size"] == 2
    assert small.training_memory_bytes <= budget
    with pytest.raises(ValueError, match="memory budget"):
        suggest_config(ar1_report, "wavenet", preset="wavenet_toy", memory_bytes=1000)


def test_speech_like_levels_choose_mu_law(ar1_report):
    assert speech_like(ar1_report)[0] is False  # Gaussian: crest ~13 dB, RMS -14 dBFS
    quiet = dataclasses.replace(ar1_report, rms_dbfs=-30.0)
    peaky = dataclasses.replace(ar1_report, crest_factor_db=20.0)
    assert speech_like(quiet)[0] and speech_like(peaky)[0]
    rng = np.random.default_rng(0)
    bursts = np.concatenate([np.zeros(4000), 0.5 * rng.standard_normal(1000)
                             * np.exp(-np.arange(1000) / 200.0)] * 4)
    report = analyze_dataset(ArraySource([bursts]), quiet=True)
    suggestion = suggest_config(report, "wavenet", preset="wavenet_toy")
    assert suggestion.config["quantization"] == "mu-law"


def test_user_overrides_win_and_are_reported(ar1_report):
    suggestion = suggest_config(ar1_report, "wavenet", preset="wavenet_toy",
                                overrides=["num_stacks=3", "quantization=mu-law"])
    assert suggestion.config["num_stacks"] == 3
    assert suggestion.config["quantization"] == "mu-law"
    assert sum("your override" in reason for reason in suggestion.reasons) == 2


def test_bad_arguments_raise_value_errors(ar1_report):
    with pytest.raises(ValueError, match="families"):
        suggest_config(ar1_report, "soundstream")
    with pytest.raises(ValueError, match="not 'samplernn'"):
        suggest_config(ar1_report, "samplernn", preset="wavenet_toy")
    with pytest.raises(ValueError, match="DatasetReport"):
        suggest_config({"num_files": 1}, "wavenet")
    with pytest.raises(ValueError, match="memory_bytes"):
        suggest_config(ar1_report, "wavenet", memory_bytes=0)
