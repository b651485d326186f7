"""Tests of samplenet.analysis.plots: dataset figures, generated audio beside a training
example, and ``generate.py --plot`` on a trained toy run."""
import struct

import numpy as np
import pytest
import soundfile

from samplenet.analysis import analyze_dataset, plots
from samplenet.data import from_spec
from samplenet.testing.sources import ArraySource
from samplenet.testing.toy_model import toy_config
from samplenet.training import trainer


def _png_size(path):
    """(width, height) in pixels from a PNG header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_dataset_figures_write_three_pngs(tmp_path):
    source = from_spec("builtin:sines?num_items=3&item_seconds=0.5")
    report = analyze_dataset(source, quiet=True)
    paths = plots.dataset_figures(report, source, tmp_path / "figures")
    assert [p.name for p in paths] == ["durations.png", "autocorrelation.png", "examples.png"]
    widths = [_png_size(p)[0] for p in paths]
    assert widths[2] > widths[0]  # three example columns


def test_generated_audio_is_drawn_beside_a_training_example(tmp_path):
    rate = 8000
    wav = tmp_path / "sample_0.wav"
    soundfile.write(wav, 0.3 * np.sin(np.arange(rate) / 3.0), rate)
    training = ArraySource([0.5 * np.sin(np.arange(rate) / 7.0)], sample_rate=rate)
    alone, = plots.compare_with_training([wav], rate)
    assert alone == tmp_path / "sample_0.png"
    width_alone = _png_size(alone)[0]
    beside, = plots.compare_with_training([wav], rate, training)
    assert _png_size(beside)[0] > 1.5 * width_alone  # two columns


@pytest.mark.slow
def test_generate_cli_plot_writes_a_png_per_sequence(tmp_path, run_program):
    run = tmp_path / "run"
    trainer.train(toy_config(), run, verbose=0)
    out = tmp_path / "generated"
    result = run_program("generate", f"--ckpt={run}", "--seconds=0.1", "--num_seqs=2",
                         "--seed=1", f"--out_dir={out}", "--plot")
    assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == ["sample_0.png", "sample_0.wav",
                                                     "sample_1.png", "sample_1.wav"]
    assert str(out / "sample_1.png") in result.out
