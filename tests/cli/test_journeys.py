"""The user journey of each autoregressive family on built-in data: train (2 steps, in a
subprocess as a user runs it) -> resume one more epoch -> generate -> evaluate (in-process: a
subprocess costs a TensorFlow import); and a SampleRNN checkpoint round trip that gives
identical logits and optimizer state."""
import json

import numpy as np
import pytest
import soundfile

import samplenet
from samplenet import config as schema
from samplenet.training import checkpoints
from samplenet.training.optimizers import make_optimizer
from tests.cli.test_train_cli import run_cli

DATA = ["--set", "data.spec=\"builtin:plucked?num_items=12&item_seconds=1.0\"",
        "--set", "train.validation_steps=2", "--batch_size", "4", "--steps_per_epoch", "2",
        "--verbose", "0"]
TINY = {
    "samplernn_3tier": ["--set", "dim=16", "--set", "emb_size=8", "--set", "seq_len=64",
                        "--set", "frame_sizes=[4,16]", "--set", "q_levels=32",
                        "--set", "data.example_seconds=0.5"],
    "wavenet_toy": ["--set", "num_layers=4", "--set", "target_len=200", "--set", "q_levels=32"],
}


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(TINY))
def test_cli_train_resume_generate_evaluate(preset, tmp_path, run_program):
    run = tmp_path / "run"
    result = run_cli("train.py", "--model", preset, *TINY[preset], *DATA, "--epochs", "1",
                     "--logdir", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bits per sample" in result.stdout
    config = json.loads((run / "config.json").read_text())
    assert config["family"] == schema.load_preset(preset)["family"]
    assert config["q_levels"] == 32

    result = run_program("train", "--logdir", run, "--resume", "--epochs", "2", "--verbose", "0")
    assert result.code == 0, result.err[-3000:]
    state = checkpoints.read_state(checkpoints.latest_checkpoint(run / "checkpoints"))
    assert state["epoch"] == 2
    assert state["step"] == 4  # 2 epochs x 2 optimizer steps, across the resume

    # The console paths of generation and evaluation: tests/cli/test_train_cli.py
    out = tmp_path / "wavs"
    result = run_program("generate", "--ckpt", run, "--seconds", "0.25", "--num_seqs", "2",
                         "--seed", "3", "--out_dir", out)
    assert result.code == 0, result.err[-3000:]
    for index in range(2):
        audio, rate = soundfile.read(out / f"sample_{index}.wav")
        assert rate == 16000 and len(audio) == 4000 and np.isfinite(audio).all()

    result = run_program("evaluate", "--ckpt", run, "--json")
    assert result.code == 0, result.err[-3000:]
    report = json.loads(result.out.strip().splitlines()[-1])
    assert report["split"] == "test" and report["num_files"] >= 1
    assert 0.0 < report["bits_per_sample"] < 10.0  # 32 levels: 5 bits for a uniform guess


def test_samplernn_checkpoint_round_trip_gives_identical_logits(tmp_path):
    config = schema.config_for("samplernn_2tier", {"dim": 16, "emb_size": 8, "seq_len": 32,
                                                     "frame_sizes": [8], "q_levels": 16})
    model = schema.model_from_config(config)
    optimizer = make_optimizer(config["train"])
    optimizer.build(model.trainable_variables)
    batch = model.example_batch(2)
    batch["samples"] = np.random.default_rng(0).integers(0, 16, batch["samples"].shape) \
        .astype(np.int32)
    for weight in model.trainable_weights:  # away from the initial values
        weight.assign(weight + 0.01)
    for variable in optimizer.variables:  # non-trivial step count and Adam moments
        variable.assign(variable + 0.5)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    checkpoints.save_checkpoint(run / "checkpoints", model, optimizer,
                                {"epoch": 1, "step": 0}, is_best=True)
    loaded = samplenet.load_model(run)
    np.testing.assert_array_equal(np.asarray(loaded(batch)), np.asarray(model(batch)))

    # Resuming restores every optimizer slot too, including those of list-held sublayers.
    resumed = schema.model_from_config(config)
    resumed_optimizer = make_optimizer(config["train"])
    checkpoints.restore(resumed, resumed_optimizer, checkpoints.latest_checkpoint(
        run / "checkpoints"))
    assert len(resumed_optimizer.variables) == len(optimizer.variables)
    for saved, restored in zip(optimizer.variables, resumed_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(restored), np.asarray(saved))
