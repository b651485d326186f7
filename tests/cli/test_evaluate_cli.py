"""Tests of samplenet.cli.evaluate (the ``python -m samplenet.evaluate`` program)."""
import pytest

from samplenet.cli import evaluate as evaluate_cli
from samplenet.loading import load_model, locate
from samplenet.testing.toy_model import toy_config
from samplenet.training import trainer


def test_report_renames_loss_and_keeps_other_metrics():
    out = evaluate_cli.report({"loss": 1.0, "bits_per_sample": 1.44, "accuracy": 0.5,
                               "num_files": 3}, "test", "run/checkpoints/ckpt-00002")
    assert out == {"bits_per_sample": 1.44, "loss_nats": 1.0, "accuracy": 0.5, "num_files": 3,
                   "split": "test", "checkpoint": "run/checkpoints/ckpt-00002"}


@pytest.mark.slow
def test_evaluate_other_data_uses_every_file(tmp_path):
    trainer.train(toy_config(), tmp_path, verbose=0)
    _, folder, config = locate(tmp_path)
    spec = "builtin:sines?num_items=3&item_seconds=0.1"
    results = trainer.evaluate(load_model(folder), config, split="all", data_spec=spec,
                               batch_size=2)
    assert results["num_files"] == 3 and results["bits_per_sample"] > 0
