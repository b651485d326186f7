"""A new family is one model file: the test-only ``toy_ar`` family and a second one defined
here (``bigram``) train, generate, evaluate, export and are analysed through the programs and
the library, although nothing in samplenet names them. They talk to the rest only through what
every family declares (``kind``, ``data_kind``, ``figures()``, the sampler's step protocol)."""
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import soundfile
import tensorflow as tf

import samplenet
from samplenet import export as export_lib
from samplenet import quantization as quant
from samplenet.analysis import analyze_model
from samplenet.models import sampler
from samplenet.models.base import CategoricalAutoregressive
from samplenet.models.figures import FamilyFigures, measured_span
from samplenet.models.registry import register_family
from samplenet.ops.losses import masked_accuracy, masked_cross_entropy
from samplenet.testing.toy_model import TOY_DATA, toy_config

SAMPLENET = Path(samplenet.__file__).parent


@keras.saving.register_keras_serializable(package="samplenet_tests")
@register_family("bigram")
class Bigram(CategoricalAutoregressive):
    """The next level from the previous one alone: a ``(q_levels, q_levels)`` table of logits.

    Args:
      q_levels, quantization: the levels.
      target_len: target samples per training window.
      sample_rate: Hz.
    """

    data_kind = "windows"
    receptive_field = 1

    def __init__(self, q_levels=8, quantization="linear", target_len=32, sample_rate=4000,
                 **kwargs):
        super().__init__(**kwargs)
        self.q_levels, self.quantization = q_levels, quantization
        self.target_len, self.sample_rate = target_len, sample_rate

    def build(self, input_shape=None):
        self.table = self.add_weight(name="table", shape=(self.q_levels, self.q_levels),
                                     initializer="zeros")
        self.built = True

    def data_options(self):
        return {"context": 1, "target_len": self.target_len, "q_levels": self.q_levels,
                "quantization": self.quantization}

    def example_batch(self, batch_size=1):
        return {"samples": np.zeros((batch_size, 1 + self.target_len), np.int32),
                "audio": np.zeros((batch_size, 1 + self.target_len), np.float32),
                "mask": np.ones((batch_size, self.target_len), np.float32)}

    def _logits(self, previous):
        """Levels ``(batch, ...)`` int32, or one-hot float ``(..., q)`` -> logits ``(..., q)``."""
        if previous.dtype.is_integer:
            return tf.gather(self.table, previous)
        return tf.tensordot(previous, self.table, axes=1)

    def call(self, inputs):
        return self._logits(inputs["samples"][:, :-1])

    def loss_and_accuracy(self, data, training):
        logits = self(data, training=training)
        targets = data["samples"][:, 1:]
        loss, weight = masked_cross_entropy(targets, logits, data["mask"])
        accuracy, _ = masked_accuracy(targets, logits, data["mask"])
        return loss, weight, accuracy

    def get_config(self):
        return {"q_levels": self.q_levels, "quantization": self.quantization,
                "target_len": self.target_len, "sample_rate": self.sample_rate}

    def figures(self):
        return FamilyFigures(
            depth=1, depth_rule="one table", receptive_field=1, frame_context=None,
            flops_per_sample={"generation": 0.0, "training": 0.0},
            activation_floats=self.q_levels, default_seq_len=1 + self.target_len,
            measure=lambda: measured_span(self._logits, 1, channels=self.q_levels), notes=())

    # The sampler's step: the state is the previous level (batch,).
    def start_generation(self, batch_size, prime, labels, num_samples=None):
        if prime is None:
            return sampler.Start(tf.fill([batch_size],
                                         quant.silence_code(self.q_levels, self.quantization)))
        return sampler.Start(tf.constant(quant.encode(prime, self.q_levels,
                                                      self.quantization)[:, -1]))

    def predict_next(self, previous, context, chunk_inputs, step, index):
        return self._logits(previous), previous

    def append(self, previous, value):
        return value


def _config(family):
    if family == "toy_ar":
        return toy_config(epochs=2, steps_per_epoch=10, learning_rate=0.05)
    return {"family": "bigram", "data": {"spec": TOY_DATA, "valid_fraction": 0.3,
                                         "test_fraction": 0.3},
            "train": {"batch_size": 4, "epochs": 2, "steps_per_epoch": 10,
                      "validation_steps": 1, "early_stopping_patience": 0,
                      "learning_rate": 0.05}}


def test_nothing_in_samplenet_names_the_test_families():
    for path in SAMPLENET.rglob("*.py"):
        if path.name != "toy_model.py":
            text = path.read_text(encoding="utf-8")
            assert "toy_ar" not in text and "ToyAR" not in text and "bigram" not in text, path


@pytest.mark.slow
@pytest.mark.parametrize("family", ["toy_ar", "bigram"])
def test_a_family_file_works_with_every_program(run_program, tmp_path, family):
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(_config(family)))
    run = tmp_path / "run"
    result = run_program("train", f"--config={config_file}", f"--logdir={run}", "--verbose=0")
    assert result.code == 0, result.err
    trained, untrained = map(float, re.search(
        r"test bits per sample \(\d+ files\): ([\d.]+); untrained model: ([\d.]+)",
        result.out).groups())
    assert trained < untrained

    result = run_program("generate", f"--ckpt={run}", "--seconds=0.05", "--num_seqs=2",
                         "--seed=3", f"--out_dir={tmp_path / 'generated'}")
    assert result.code == 0, result.err
    written = sorted((tmp_path / "generated").glob("*.wav"))
    assert len(written) == 2 and soundfile.info(written[0]).frames == 200

    result = run_program("evaluate", f"--ckpt={run}", "--json")
    assert result.code == 0, result.err
    evaluated = json.loads(result.out.strip().splitlines()[-1])["bits_per_sample"]
    assert evaluated == pytest.approx(trained, abs=1e-3)  # the same best checkpoint, test split

    model = samplenet.load_model(run)
    codes, _ = model.generate(300, batch_size=2, seed=5, chunk_samples=70)
    out_dir = export_lib.export(model, tmp_path / "exported")
    exported = tf.saved_model.load(str(out_dir)).signatures["generate"](
        num_samples=tf.constant(300), batch_size=tf.constant(2), temperature=tf.constant(1.0),
        seed=tf.constant(5, tf.int64))
    np.testing.assert_array_equal(exported["codes"].numpy(), codes)

    report = analyze_model(model)
    assert report.receptive_field_measured == report.receptive_field == model.receptive_field


def test_teacher_forced_predictions_of_a_new_family_equal_call():
    """The shared sampler fed the training input gives the logits of ``call``: the protocol
    ties a family's generation step to its training pass without the family writing a loop."""
    model = Bigram()
    model.ensure_built()
    model.table.assign(np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32))
    samples = np.random.default_rng(1).integers(0, 8, (2, 20)).astype(np.int32)
    start = sampler.Start(tf.constant(samples[:, 0]))
    forced = sampler.teacher_forced(model, start, samples[:, 1:])
    expected = model({"samples": samples})
    np.testing.assert_allclose(forced.numpy(), expected.numpy(), rtol=1e-6)
