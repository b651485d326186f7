"""Codec files: audio file -> ``.npz`` of codes -> audio file, and codec quality over a source.

A codes file is a NumPy ``.npz`` (no pickles) with ``codes`` (int16/int32
``(num_quantizers, frames)``), ``sample_rate`` (Hz), ``num_samples`` (the original length),
``hop`` (samples per frame) and ``codebook_size``. Encoding and decoding stream in chunks with
the codec's carried convolution state, so memory does not grow with the file's length and the
codes equal those of encoding the whole file at once.
"""
import math
import os
import uuid
import zipfile
from pathlib import Path

import numpy as np

from samplenet import audio as audio_io
from samplenet.training import codec_metrics

CODES_KEYS = ("codes", "sample_rate", "num_samples", "hop", "codebook_size")


def num_quantizers_for_bitrate(model, bitrate_kbps=None):
    """The most codebooks whose bitrate stays within ``bitrate_kbps`` (None: all of them).

    ``ValueError`` when even one codebook exceeds it, naming the rates the model serves.
    """
    if bitrate_kbps is None:
        return model.num_quantizers
    if not bitrate_kbps > 0:
        raise ValueError(f"bitrate must be > 0 kbps, got {bitrate_kbps!r}")
    per_codebook = model.bitrate_kbps(1)
    count = min(model.num_quantizers, math.floor(bitrate_kbps / per_codebook + 1e-9))
    if count < 1:
        served = ", ".join(f"{model.bitrate_kbps(n):g}" for n in range(1, model.num_quantizers + 1))
        raise ValueError(f"bitrate {bitrate_kbps:g} kbps is below the lowest this codec serves; "
                         f"it serves {served} kbps")
    return count


def _chunks(audio, chunk_samples):
    for start in range(0, audio.shape[-1], chunk_samples):
        yield audio[None, start:start + chunk_samples]


def _chunk_samples(model, chunk_seconds):
    frames = max(1, round(chunk_seconds * model.sample_rate / model.hop))
    return frames * model.hop


def encode_file(model, audio_path, codes_path, *, bitrate_kbps=None, chunk_seconds=10.0):
    """Encode an audio file (resampled to the model's rate, mono) into a codes file.

    Returns ``(num_quantizers, frames)`` of the codes written. The file is written atomically.
    """
    num_quantizers = num_quantizers_for_bitrate(model, bitrate_kbps)
    audio = audio_io.load(audio_path, model.sample_rate)
    codes = np.concatenate(list(model.encode_stream(
        _chunks(audio, _chunk_samples(model, chunk_seconds)), num_quantizers)), axis=-1)[0]
    dtype = np.int16 if model.codebook_size <= np.iinfo(np.int16).max else np.int32
    codes_path = Path(codes_path)
    partial = codes_path.with_name(f".{codes_path.name}.{uuid.uuid4().hex[:8]}.partial.npz")
    try:
        np.savez(partial, codes=codes.astype(dtype), sample_rate=model.sample_rate,
                 num_samples=audio.shape[0], hop=model.hop, codebook_size=model.codebook_size)
        os.replace(partial, codes_path)
    except OSError as error:
        raise OSError(f"cannot write {str(codes_path)!r}: {error}") from None
    finally:
        if partial.exists():
            partial.unlink()
    return codes.shape


def read_codes(model, codes_path):
    """Read and check a codes file against ``model``: ``(codes (1, n, frames), num_samples)``."""
    codes_path = Path(codes_path)
    try:
        with np.load(codes_path, allow_pickle=False) as stored:
            fields = {key: stored[key] for key in CODES_KEYS if key in stored}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read codes file {str(codes_path)!r}: {error}") from None
    missing = [key for key in CODES_KEYS if key not in fields]
    if missing:
        raise ValueError(f"{str(codes_path)!r} is not a samplenet codes file (missing "
                         f"{missing})")
    expected = {"sample_rate": model.sample_rate, "hop": model.hop,
                "codebook_size": model.codebook_size}
    for key, value in expected.items():
        if int(fields[key]) != value:
            raise ValueError(f"{str(codes_path)!r} was written by a codec with {key}="
                             f"{int(fields[key])}, but this model has {key}={value}")
    codes = fields["codes"]
    if codes.ndim != 2 or not 1 <= codes.shape[0] <= model.num_quantizers:
        raise ValueError(f"{str(codes_path)!r} holds codes of shape {codes.shape}; expected "
                         f"(1..{model.num_quantizers}, frames)")
    if codes.size and (codes.min() < 0 or codes.max() >= model.codebook_size):
        raise ValueError(f"{str(codes_path)!r} holds codes outside [0, {model.codebook_size})")
    return codes[None].astype(np.int32), int(fields["num_samples"])


def decode_file(model, codes_path, audio_path, *, chunk_seconds=10.0):
    """Decode a codes file into a 16-bit WAV of the original length; returns its samples."""
    codes, num_samples = read_codes(model, codes_path)
    frames = max(1, _chunk_samples(model, chunk_seconds) // model.hop)
    chunks = (codes[..., start:start + frames] for start in range(0, codes.shape[-1], frames))
    return audio_io.stream_to_wavs(model.decode_stream(chunks, num_samples), [audio_path],
                                   model.sample_rate)


def evaluate_source(model, source, split="test", *, bitrate_kbps=None):
    """Codec quality averaged over the files of a source split.

    Returns a dict: ``bitrate_kbps``, ``num_quantizers``, ``num_files``, and the means over
    files of ``si_sdr_db``, ``stft_distance`` (dB) and ``mel_distance`` (see
    ``samplenet.training.codec_metrics`` for their definitions). Files shorter than the STFT
    window of the spectral distances are scored by SI-SDR only.
    """
    num_quantizers = num_quantizers_for_bitrate(model, bitrate_kbps)
    examples = source.examples(split)
    if not examples:
        raise ValueError(f"source {source.name!r} has no files in the {split!r} split")
    scores = {"si_sdr_db": [], "stft_distance": [], "mel_distance": []}
    for example in examples:
        reference = source.load(example)[None]
        codes = model.encode(reference, num_quantizers)
        estimate = np.asarray(model.decode(codes, reference.shape[1]))
        scores["si_sdr_db"].append(float(codec_metrics.si_sdr_db(reference, estimate)[0]))
        if reference.shape[1] >= 1024:
            scores["stft_distance"].append(
                float(codec_metrics.stft_distance(reference, estimate)[0]))
            scores["mel_distance"].append(float(codec_metrics.mel_distance(
                reference, estimate, model.sample_rate)[0]))
    report = {"bitrate_kbps": model.bitrate_kbps(num_quantizers),
              "num_quantizers": num_quantizers, "num_files": len(examples), "split": split}
    report.update({key: float(np.mean(values)) if values else None
                   for key, values in scores.items()})
    return report
