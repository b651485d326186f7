"""Figures of the analysis, written as PNG files.

matplotlib is imported on first use (analysis works without it; drawing without it raises a
``ValueError`` that says how to install it) and drives an Agg canvas directly, without pyplot,
so no global backend state is touched. Log-mel spectrograms come from
``samplenet.ops.spectral.log_mel``, the features the models are conditioned on.
"""
import math
from pathlib import Path

import numpy as np
import soundfile

from samplenet.analysis.dataset import envelope

EXAMPLE_SECONDS = 4.0      # longest excerpt drawn per example
NUM_MELS = 64
MEL_WINDOW_SECONDS = 0.064


def require_matplotlib():
    """``(Figure, FigureCanvasAgg)``; ``ValueError`` saying how to install matplotlib if it
    is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ValueError("drawing figures needs matplotlib, which is not installed: "
                         "pip install matplotlib (or samplenet[plots])") from None
    return Figure, FigureCanvasAgg


def _figure(width, height):
    """A matplotlib Figure on an Agg canvas."""
    Figure, FigureCanvasAgg = require_matplotlib()
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def duration_histogram(report, path):
    """Histogram of the per-file durations of a ``DatasetReport``; returns the path."""
    figure = _figure(6, 3.5)
    axes = figure.add_subplot()
    counts, edges = report.duration_histogram()
    axes.stairs(counts, edges, fill=True)
    axes.set_xlabel("duration (s)")
    axes.set_ylabel("files")
    axes.set_title(f"{report.num_files} files, {report.total_seconds:.1f} s in total")
    return _save(figure, path)


def autocorrelation(report, path):
    """The average autocorrelation, its envelope and the correlation length (left), and the
    prediction gain by predictor order with the 90 % lag (right); returns the path."""
    figure = _figure(11, 4)
    left, right = figure.subplots(1, 2)
    length = report.correlation_length_samples
    shown = min(len(report.autocorrelation), max(4 * length, 64))
    lags = np.arange(shown)
    rho = report.autocorrelation[:shown]
    left.plot(lags, rho, linewidth=0.8, label="rho(k)")
    left.plot(lags, envelope(report.autocorrelation)[:shown], linewidth=1.2, label="envelope")
    left.axhline(math.exp(-1.0), color="gray", linestyle=":", label="1/e")
    left.axvline(length, color="red", linestyle="--",
                 label=f"correlation length {length} ({report.correlation_length_ms:.1f} ms)")
    left.set_xlabel("lag (samples)")
    left.set_ylabel("normalised autocorrelation")
    left.legend(fontsize=8)
    gains = report.prediction_gains_db
    if gains.size:
        orders = np.arange(1, gains.size + 1)
        right.semilogx(orders, gains, linewidth=1.2)
        right.axhline(0.9 * gains[-1], color="gray", linestyle=":", label="90 % of the gain")
        lag = report.predictable_lag_samples
        if lag:
            right.axvline(lag, color="red", linestyle="--", label=f"lag {lag}")
        right.legend(fontsize=8)
    right.set_xlabel("predictor order (samples)")
    right.set_ylabel("prediction gain (dB)")
    return _save(figure, path)


def _log_mel(audio, sample_rate):
    """``(log-mel (frames, NUM_MELS), seconds per frame)`` of 1-D audio."""
    from samplenet.ops.spectral import log_mel
    frame = 2 ** max(6, round(math.log2(MEL_WINDOW_SECONDS * sample_rate)))
    hop = frame // 4
    padded = np.pad(audio, (0, max(0, frame - len(audio)))).astype(np.float32)
    features = log_mel(padded[None], sample_rate, frame, hop, NUM_MELS)[0].numpy()
    return features, hop / sample_rate


def audio_panels(items, sample_rate, path):
    """One column per ``(title, audio)`` in ``items``: the waveform above its log-mel
    spectrogram (at most EXAMPLE_SECONDS of each). Returns the path."""
    items = list(items)
    if not items:
        raise ValueError("audio_panels needs at least one (title, audio) item")
    figure = _figure(4.5 * len(items), 5)
    grid = figure.subplots(2, len(items), squeeze=False)
    for column, (title, audio) in enumerate(items):
        audio = np.asarray(audio, np.float32).reshape(-1)[:int(EXAMPLE_SECONDS * sample_rate)]
        wave, spectrum = grid[0, column], grid[1, column]
        wave.plot(np.arange(len(audio)) / sample_rate, audio, linewidth=0.4)
        wave.set_ylim(-1.0, 1.0)
        wave.set_title(title, fontsize=9)
        wave.set_xlabel("time (s)")
        features, frame_seconds = _log_mel(audio, sample_rate)
        spectrum.imshow(features.T, origin="lower", aspect="auto", cmap="magma",
                        extent=(0.0, len(features) * frame_seconds, 0, NUM_MELS))
        spectrum.set_xlabel("time (s)")
        spectrum.set_ylabel("mel band")
    return _save(figure, path)


def dataset_figures(report, source, folder, num_examples=3):
    """Draw ``durations.png``, ``autocorrelation.png`` and ``examples.png`` (the first,
    middle and last files of the report's split) into ``folder``; returns their paths.

    ``source`` is the ``samplenet.data.Source`` the report was measured on.
    """
    folder = Path(folder)
    paths = [duration_histogram(report, folder / "durations.png"),
             autocorrelation(report, folder / "autocorrelation.png")]
    examples = source.examples(report.split)
    picks = sorted({int(i) for i in np.linspace(0, len(examples) - 1, num_examples).round()})
    items = []
    for index in picks:
        try:
            items.append((examples[index].key, source.load(examples[index])))
        except ValueError:  # a file that cannot be loaded (also skipped by the analysis)
            continue
    if items:
        paths.append(audio_panels(items, source.sample_rate, folder / "examples.png"))
    return paths


def _first_training_example(source):
    """``(title, audio)`` of the first example of the train split (else any split) that
    loads, or None."""
    for example in source.examples("train") or source.examples("all"):
        try:
            return f"training: {example.key}", source.load(example)
        except ValueError:  # a bad file: try the next one
            continue
    return None


def compare_with_training(wav_paths, sample_rate, source=None):
    """Draw ``<name>.png`` beside each WAV file in ``wav_paths``: its waveform and log-mel
    spectrogram (first EXAMPLE_SECONDS) next to those of a training example of ``source``
    (a ``samplenet.data.Source`` loading at ``sample_rate``; None: the generated audio alone).
    Returns the PNG paths."""
    require_matplotlib()
    reference = None if source is None else _first_training_example(source)
    frames = int(EXAMPLE_SECONDS * sample_rate)
    paths = []
    for wav in map(Path, wav_paths):
        generated = soundfile.read(wav, frames=frames, dtype="float32", always_2d=True)[0]
        items = [(f"generated: {wav.name}", generated[:, 0])] + ([reference] if reference
                                                                  else [])
        paths.append(audio_panels(items, sample_rate, wav.with_suffix(".png")))
    return paths
