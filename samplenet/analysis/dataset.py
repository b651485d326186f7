"""Measure a dataset: files, durations, formats, levels, spectrum and correlation length.

``analyze_dataset`` streams over a source one file at a time and accumulates statistics, so a
folder of thousands of files is never held in memory. Levels, clipping, DC and silence use
every sample; the autocorrelation and the spectrum use an excerpt of at most
``correlation_seconds`` from the middle of each file (a cap on the work per file).

Definitions (``x`` is a file's audio, float in [-1, 1], at the source's sample rate):

- peak level: ``20 log10 max |x|`` over all files (dBFS); RMS level: ``10 log10 mean x^2``
  over all samples (dBFS); crest factor: the median over files of each file's peak minus RMS
  level (dB). Clipping fraction: the share of samples with ``|x| >= 0.999``. DC offset: the mean
  sample value. Silence fraction: the share of non-overlapping 20 ms frames whose RMS is below
  -60 dBFS.
- spectral centroid and bandwidth (Hz): the mean and the standard deviation of frequency under
  the long-term average power spectrum (Hann frames of ``SPECTRUM_FRAME`` samples, half
  overlapping, averaged over all excerpts).
- autocorrelation: per excerpt, mean removed, the biased estimate
  ``r(k) = (1/n) sum_t x_t x_{t+k}`` (computed by FFT, zero-padded so it does not wrap),
  normalised ``rho_i(k) = r(k) / r(0)``; ``rho(k)`` is the average of the ``rho_i`` weighted by
  excerpt length. The biased estimator keeps ``rho`` positive semi-definite, so the
  Levinson-Durbin recursion below is stable.
- envelope: ``env(k) = max_{j >= k} |rho(j)|``, the smallest non-increasing function above
  ``|rho|``. Chosen over the Hilbert envelope because it equals ``rho`` itself for a monotone
  decay (AR(1): ``rho(k) = phi^k``, so the result is exact there), bounds every oscillation
  from above (tones, periodic sounds), and has no edge ringing; the Hilbert envelope of a
  one-sided (or even) sequence adds a quadrature term even to a pure exponential decay and
  overstates it.
- correlation length: the first lag ``k`` with ``env(k) < 1/e``: from there on ``|rho|`` never
  exceeds ``1/e``. For AR(1) it is ``ceil(-1 / ln(phi))`` (when that is not an integer). When it
  exceeds half the mean excerpt length the estimate is limited by the excerpt (a steady tone
  never decorrelates; the biased estimator's taper ``1 - k/n`` then sets the crossing) and
  ``correlation_limited`` is true: raise ``correlation_seconds``.
- predictable structure: the Levinson-Durbin recursion on ``rho`` gives the error variance
  ``E(p)`` (relative to the variance) of the best linear predictor of order ``p`` for
  ``p = 1 .. P_max`` with ``P_max = min(MAX_ORDER = 1024, max lag)``; the prediction gain is
  ``G(p) = -10 log10 E(p)`` dB. The lag holding 90 % of the predictable structure is the
  smallest ``p`` with ``G(p) >= 0.9 G(P_max)``; it is 0 when ``G(P_max) < MIN_GAIN_DB`` (no
  linear structure, e.g. white noise). For AR(2) it is at most 2.
"""
import collections
import dataclasses
import json
import math
import os
import statistics
import sys

import numpy as np
from scipy import fft as sp_fft

from samplenet import audio
from samplenet.data.sources import FolderSource, Source, from_spec
from samplenet.validation import check_positive_int

CLIP_LEVEL = 0.999
SILENCE_DBFS = -60.0
SILENCE_FRAME_SECONDS = 0.02
SPECTRUM_FRAME = 1024
MAX_ORDER = 1024
MIN_GAIN_DB = 0.1
PREDICTABLE_SHARE = 0.9
DEFAULT_CORRELATION_SECONDS = 10.0
NUM_HISTOGRAM_BINS = 20


def _db(power_ratio):
    """``10 log10`` of a power ratio, or None for 0 (minus infinity has no JSON)."""
    return 10.0 * math.log10(power_ratio) if power_ratio > 0 else None


def envelope(rho):
    """``env(k) = max_{j >= k} |rho(j)|`` (see the module docstring)."""
    return np.maximum.accumulate(np.abs(rho)[::-1])[::-1]


def correlation_length(rho):
    """The first lag where ``envelope(rho)`` is below ``1/e``; ``len(rho)`` if none is."""
    below = np.flatnonzero(envelope(rho) < math.exp(-1.0))
    return int(below[0]) if below.size else len(rho)


def prediction_gains(rho, max_order):
    """``G(p)`` in dB for ``p = 1 .. max_order`` by the Levinson-Durbin recursion on the
    normalised autocorrelation ``rho`` (``rho[0] = 1``); float64 ``(max_order,)``."""
    rho = np.asarray(rho, np.float64)
    coefficients = np.zeros(max_order + 1)
    coefficients[0] = 1.0
    error = 1.0
    gains = np.empty(max_order)
    for p in range(1, max_order + 1):
        reflection = -(rho[p] + coefficients[1:p] @ rho[p - 1:0:-1]) / error
        reflection = float(np.clip(reflection, -1.0, 1.0))
        coefficients[1:p] = coefficients[1:p] + reflection * coefficients[p - 1:0:-1]
        coefficients[p] = reflection
        error = max(error * (1.0 - reflection * reflection), 1e-12)
        gains[p - 1] = -10.0 * math.log10(error)
    return gains


def predictable_lag(gains, share=PREDICTABLE_SHARE):
    """The smallest order ``p`` with ``gains[p-1] >= share * gains[-1]``; 0 without
    structure (``gains[-1] < MIN_GAIN_DB``)."""
    if gains.size == 0 or gains[-1] < MIN_GAIN_DB:
        return 0
    return int(np.flatnonzero(gains >= share * gains[-1])[0]) + 1


def _autocorrelation(excerpt, num_lags):
    """Biased normalised autocorrelation ``rho(0 .. num_lags-1)`` of a mean-removed excerpt
    (zeros past its length), or None for a constant excerpt."""
    x = excerpt.astype(np.float64) - excerpt.mean()
    size = sp_fft.next_fast_len(2 * len(x))
    spectrum = sp_fft.rfft(x, size)
    r = sp_fft.irfft(spectrum.real ** 2 + spectrum.imag ** 2, size)[:min(num_lags, len(x))]
    if not r[0] > 0:
        return None
    rho = np.zeros(num_lags)
    rho[:len(r)] = r / r[0]
    return rho


def _power_spectrum_sum(excerpt):
    """``(sum of Hann-windowed frame power spectra (SPECTRUM_FRAME // 2 + 1,), frames)``."""
    if len(excerpt) < SPECTRUM_FRAME:
        excerpt = np.pad(excerpt, (0, SPECTRUM_FRAME - len(excerpt)))
    hop = SPECTRUM_FRAME // 2
    count = 1 + (len(excerpt) - SPECTRUM_FRAME) // hop
    starts = np.arange(count) * hop
    frames = excerpt[starts[:, None] + np.arange(SPECTRUM_FRAME)] * np.hanning(SPECTRUM_FRAME)
    return (np.abs(np.fft.rfft(frames, axis=1)) ** 2).sum(axis=0), count


class _LevelSums:
    """Sums over the samples of one file: ``total``, ``squares``, ``clipped`` samples,
    ``peak`` |x|, and ``silent`` of ``frames`` 20 ms frames (the last partial frame is
    ignored unless the file is shorter than one frame)."""

    BLOCK_FRAMES = 4096  # frames per block: long files are read without a float64 copy

    def __init__(self, x, frame):
        self.total = self.squares = self.peak = 0.0
        self.clipped = self.silent = self.frames = 0
        threshold = 10.0 ** (SILENCE_DBFS / 10.0)
        block = frame * self.BLOCK_FRAMES
        for start in range(0, len(x), block):
            part = x[start:start + block].astype(np.float64)
            magnitude = np.abs(part)
            self.total += float(part.sum())
            self.squares += float(part @ part)
            self.clipped += int(np.count_nonzero(magnitude >= CLIP_LEVEL))
            self.peak = max(self.peak, float(magnitude.max()))
            whole = len(part) // frame * frame
            power = np.mean(np.square(part[:whole]).reshape(-1, frame), axis=1)
            self.silent += int(np.count_nonzero(power < threshold))
            self.frames += len(power)
        if self.frames == 0 and len(x):
            self.frames, self.silent = 1, int(self.squares / len(x) < threshold)


class _Progress:
    """A one-line progress bar on stderr (only when enabled)."""

    def __init__(self, total, enabled):
        self.total, self.enabled, self.done = total, enabled, 0

    def advance(self):
        self.done += 1
        if self.enabled:
            filled = int(30 * self.done / self.total)
            sys.stderr.write(f"\ranalysing {self.done}/{self.total} files "
                             f"[{'#' * filled}{' ' * (30 - filled)}]")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


@dataclasses.dataclass
class DatasetReport:
    """What ``analyze_dataset`` measured (definitions in the module docstring).

    ``durations`` (seconds per file), ``autocorrelation`` (``rho(0..)``) and
    ``prediction_gains_db`` (``G(1..P_max)``) are arrays for figures; ``to_dict`` summarises
    them. ``str(report)`` is a readable table; ``to_json()`` the JSON form of ``to_dict()``.
    """

    source: str
    split: str
    sample_rate: int
    num_files: int
    total_seconds: float
    durations: np.ndarray
    sample_rates: dict
    channels: dict
    skipped: list
    peak_dbfs: float
    rms_dbfs: float
    crest_factor_db: float
    clipping_fraction: float
    dc_offset: float
    silence_fraction: float
    spectral_centroid_hz: float
    spectral_bandwidth_hz: float
    correlation_seconds: float
    autocorrelation: np.ndarray
    correlation_length_samples: int
    correlation_limited: bool
    prediction_gains_db: np.ndarray
    predictable_lag_samples: int

    def _ms(self, samples):
        return 1000.0 * samples / self.sample_rate

    @property
    def correlation_length_ms(self):
        return self._ms(self.correlation_length_samples)

    @property
    def most_common_sample_rate(self):
        """The rate found in most files (the higher one on a tie)."""
        return max(self.sample_rates, key=lambda rate: (self.sample_rates[rate], rate))

    def duration_histogram(self, num_bins=NUM_HISTOGRAM_BINS):
        """``(counts, edges)`` of the per-file durations in seconds."""
        return np.histogram(self.durations, bins=num_bins)

    def to_dict(self):
        counts, edges = self.duration_histogram()
        gains = self.prediction_gains_db
        orders = [p for p in (2 ** i for i in range(11)) if p <= gains.size]
        return {
            "source": self.source, "split": self.split, "sample_rate": self.sample_rate,
            "num_files": self.num_files, "total_seconds": self.total_seconds,
            "durations": {"min_seconds": float(np.min(self.durations)),
                          "median_seconds": float(np.median(self.durations)),
                          "mean_seconds": float(np.mean(self.durations)),
                          "max_seconds": float(np.max(self.durations)),
                          "histogram": {"counts": counts.tolist(),
                                        "edges_seconds": edges.tolist()}},
            "sample_rates": {str(k): v for k, v in sorted(self.sample_rates.items())},
            "channels": {str(k): v for k, v in sorted(self.channels.items())},
            "skipped": [{"path": str(path), "reason": reason} for path, reason in self.skipped],
            "peak_dbfs": self.peak_dbfs, "rms_dbfs": self.rms_dbfs,
            "crest_factor_db": self.crest_factor_db,
            "clipping_fraction": self.clipping_fraction, "dc_offset": self.dc_offset,
            "silence_fraction": self.silence_fraction,
            "spectral_centroid_hz": self.spectral_centroid_hz,
            "spectral_bandwidth_hz": self.spectral_bandwidth_hz,
            "correlation_length": {"samples": self.correlation_length_samples,
                                   "ms": self.correlation_length_ms,
                                   "limited_by_excerpt": self.correlation_limited},
            "predictable_structure": {
                "lag_90": {"samples": self.predictable_lag_samples,
                           "ms": self._ms(self.predictable_lag_samples)},
                "max_order": int(gains.size),
                "gain_db": float(gains[-1]) if gains.size else 0.0,
                "gain_db_by_order": {str(p): float(gains[p - 1]) for p in orders}},
            "correlation_seconds": self.correlation_seconds,
        }

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self):
        def level(value, unit):
            return "-inf " + unit if value is None else f"{value:.1f} {unit}"

        d = self.to_dict()
        durations = d["durations"]
        rates = ", ".join(f"{rate} Hz x{count}" for rate, count in d["sample_rates"].items())
        channels = ", ".join(f"{c} ch x{count}" for c, count in d["channels"].items())
        structure = d["predictable_structure"]
        limited = " (limited by the excerpt length)" if self.correlation_limited else ""
        rows = [
            ("source", f"{self.source} (split {self.split}, analysed at {self.sample_rate} Hz)"),
            ("files", f"{self.num_files}" + (f" ({len(self.skipped)} skipped)"
                                             if self.skipped else "")),
            ("total duration", f"{self.total_seconds:.1f} s"),
            ("durations", f"min {durations['min_seconds']:.2f} s, median "
                          f"{durations['median_seconds']:.2f} s, max "
                          f"{durations['max_seconds']:.2f} s"),
            ("sample rates", rates), ("channels", channels),
            ("peak level", level(self.peak_dbfs, "dBFS")),
            ("RMS level", level(self.rms_dbfs, "dBFS")),
            ("crest factor", level(self.crest_factor_db, "dB")),
            ("clipping", f"{100 * self.clipping_fraction:.3f} % of samples"),
            ("DC offset", f"{self.dc_offset:+.5f}"),
            ("silence", f"{100 * self.silence_fraction:.1f} % of 20 ms frames"),
            ("spectral centroid", f"{self.spectral_centroid_hz:.0f} Hz"),
            ("spectral bandwidth", f"{self.spectral_bandwidth_hz:.0f} Hz"),
            ("correlation length", f"{self.correlation_length_samples} samples "
                                   f"({self.correlation_length_ms:.2f} ms){limited}"),
            ("90 % predictable at", f"lag {structure['lag_90']['samples']} "
                                    f"({structure['lag_90']['ms']:.2f} ms); gain "
                                    f"{structure['gain_db']:.1f} dB at order "
                                    f"{structure['max_order']}"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _header(source, example):
    """``(sample_rate, channels, seconds)`` of an example: from the file header for a folder
    source; a built-in or in-memory source is mono at its rate (seconds from the audio)."""
    if isinstance(source, FolderSource):
        info = audio.info(source.root / example.key)
        return info.sample_rate, info.channels, info.seconds
    return source.sample_rate, 1, None


def analyze_dataset(source_or_spec, *, split="all", sample_rate=None,
                    correlation_seconds=DEFAULT_CORRELATION_SECONDS, max_files=None,
                    quiet=False):
    """Measure a dataset (see the module docstring for every definition).

    Args:
      source_or_spec: a ``samplenet.data.Source`` or a spec for ``samplenet.data.from_spec``
        (a folder path or ``"builtin:NAME[?k=v&...]"``).
      split: which examples: ``"all"`` (default), ``"train"``, ``"valid"`` or ``"test"``.
      sample_rate: Hz to load the audio at (spec only; default: the source's).
      correlation_seconds: the longest excerpt per file used for the autocorrelation and the
        spectrum (its middle part); the largest lag measured is one excerpt.
      max_files: analyse at most this many files, evenly spread over the split (None: all).
      quiet: no progress bar (there is none either when stderr is not a terminal).
    Returns:
      a ``DatasetReport``.
    Raises:
      ValueError for a bad spec, folder or argument, or when no file could be analysed.
    """
    if isinstance(source_or_spec, Source):
        if sample_rate is not None:
            raise ValueError("sample_rate applies to a spec; a Source has its own sample_rate")
        source = source_or_spec
    else:
        source = from_spec(source_or_spec, sample_rate)
    if not correlation_seconds > 0:
        raise ValueError(f"correlation_seconds must be > 0, got {correlation_seconds!r}")
    examples = source.examples(split)
    if max_files is not None:
        check_positive_int("max_files", max_files)
        if len(examples) > max_files:
            examples = [examples[i] for i in np.linspace(0, len(examples) - 1, max_files)
                        .round().astype(int)]
    if not examples:
        raise ValueError(f"{source.name!r} has no examples in split {split!r}")
    rate = source.sample_rate
    excerpt_samples = max(2, int(round(correlation_seconds * rate)))
    silence_frame = max(1, int(round(SILENCE_FRAME_SECONDS * rate)))

    rates, channel_counts = collections.Counter(), collections.Counter()
    durations, crest_factors, skipped = [], [], list(source.skipped)
    num_samples = sum_x = sum_x2 = clipped = silent = frames = 0
    peak = 0.0
    rho_sum, rho_weight, rho_count = np.zeros(excerpt_samples), 0, 0
    spectrum_sum, spectrum_frames = np.zeros(SPECTRUM_FRAME // 2 + 1), 0
    progress = _Progress(len(examples), not quiet and sys.stderr.isatty())
    for example in examples:
        try:
            file_rate, file_channels, seconds = _header(source, example)
            x = source.load(example)
        except (audio.AudioError, OSError) as error:
            skipped.append((example.key, str(error)))
            progress.advance()
            continue
        progress.advance()
        rates[file_rate] += 1
        channel_counts[file_channels] += 1
        durations.append(len(x) / rate if seconds is None else seconds)
        sums = _LevelSums(x, silence_frame)
        num_samples += len(x)
        sum_x += sums.total
        sum_x2 += sums.squares
        clipped += sums.clipped
        peak = max(peak, sums.peak)
        if sums.squares > 0:
            crest_factors.append(20.0 * math.log10(sums.peak) - _db(sums.squares / len(x)))
        silent, frames = silent + sums.silent, frames + sums.frames
        start = max(0, (len(x) - excerpt_samples) // 2)
        excerpt = x[start:start + excerpt_samples].astype(np.float64)
        rho = _autocorrelation(excerpt, excerpt_samples)
        if rho is not None:
            rho_sum += len(excerpt) * rho
            rho_weight += len(excerpt)
            rho_count += 1
        spectrum, count = _power_spectrum_sum(excerpt - excerpt.mean())
        spectrum_sum += spectrum
        spectrum_frames += count
    if not durations:
        raise ValueError(f"no file of {source.name!r} could be analysed: "
                         + "; ".join(f"{path}: {reason}" for path, reason in skipped[:5]))
    if rho_weight == 0:
        raise ValueError(f"every file of {source.name!r} is constant: no autocorrelation")

    rho = rho_sum / rho_weight
    length = correlation_length(rho)
    max_order = min(MAX_ORDER, len(rho) - 1)
    gains = prediction_gains(rho, max_order)
    frequencies = np.fft.rfftfreq(SPECTRUM_FRAME, 1.0 / rate)
    power = spectrum_sum / max(spectrum_frames, 1)
    total_power = power.sum()
    centroid = float(frequencies @ power / total_power) if total_power > 0 else 0.0
    bandwidth = (float(np.sqrt(((frequencies - centroid) ** 2) @ power / total_power))
                 if total_power > 0 else 0.0)
    return DatasetReport(
        source=os.fspath(source.name), split=split, sample_rate=rate,
        num_files=len(durations), total_seconds=float(sum(durations)),
        durations=np.asarray(durations), sample_rates=dict(rates),
        channels=dict(channel_counts), skipped=skipped,
        peak_dbfs=20.0 * math.log10(peak) if peak > 0 else None,
        rms_dbfs=_db(sum_x2 / num_samples) if num_samples else None,
        crest_factor_db=statistics.median(crest_factors) if crest_factors else None,
        clipping_fraction=clipped / max(num_samples, 1),
        dc_offset=sum_x / max(num_samples, 1),
        silence_fraction=silent / max(frames, 1),
        spectral_centroid_hz=centroid, spectral_bandwidth_hz=bandwidth,
        correlation_seconds=float(correlation_seconds), autocorrelation=rho,
        correlation_length_samples=length,
        correlation_limited=length > 0.5 * rho_weight / rho_count,
        prediction_gains_db=gains, predictable_lag_samples=predictable_lag(gains))
