"""Read audio files into float32 mono arrays in [-1, 1], resample, and write WAV files.

Decoding uses tensorflow-io when it is installed and its ops load (probed once, silently),
otherwise soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3, AIFF, ...), and librosa/audioread
as a last resort for formats libsndfile does not know. Resampling uses soxr (high quality).
Every problem with a file raises ``AudioError`` (a ``ValueError``) whose message names the file.
"""
import dataclasses
import functools
import io
import os
import struct
import uuid
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

SUBTYPES = frozenset({"PCM_16", "FLOAT"})
SILENT_PEAK = 1e-4  # -80 dBFS


class AudioError(ValueError):
    """A file that cannot be used as audio; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """What a file holds: ``sample_rate`` (Hz), ``channels``, ``frames`` (samples per channel
    present in the file), ``seconds`` (their duration), ``subtype`` (libsndfile's sample format,
    e.g. ``"PCM_16"``) and ``header_frames``, the frames its header declares: more than
    ``frames`` when the file was cut short (an interrupted copy), else equal."""
    sample_rate: int
    channels: int
    frames: int
    seconds: float
    subtype: str
    header_frames: int

    @property
    def truncated(self):
        """The header declares more frames than the file holds."""
        return self.header_frames > self.frames

    def truncation(self):
        """``"truncated: its header says N frames, the file holds M (S s)"``, or None."""
        if not self.truncated:
            return None
        return (f"truncated: its header says {self.header_frames:,} frames, the file holds "
                f"{self.frames:,} ({self.seconds:.2f} s)")


def _checked_path(path):
    """``path`` as a string, or ``AudioError`` if it is missing, a directory or empty."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    return path


def _unreadable(path, error):
    reason = getattr(error, "error_string", None) or str(error) or type(error).__name__
    return AudioError(f"{path}: not a readable audio file ({reason})")


@functools.lru_cache(maxsize=None)
def _tfio():
    """The ``tensorflow_io`` module if it imports and its audio ops run, else None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import tensorflow_io as tfio
            import tensorflow as tf
            wav = io.BytesIO()
            sf.write(wav, np.zeros(8, np.float32), 8000, format="WAV", subtype="PCM_16")
            tfio.audio.decode_wav(tf.constant(wav.getvalue()), dtype=tf.int16)
        return tfio
    except Exception:  # any failure (missing, ops not built for this TF) means "not available"
        return None


def backend_name():
    """``"tensorflow-io"`` if tensorflow-io decodes audio here, else ``"soundfile"``."""
    return "soundfile" if _tfio() is None else "tensorflow-io"


def _decode_tfio(tfio, path):
    """``(audio (frames, channels) float32, sample_rate)`` via tensorflow-io."""
    tensor = tfio.audio.AudioIOTensor(path)
    audio = np.asarray(tensor.to_tensor())
    if np.issubdtype(audio.dtype, np.integer):
        limits = np.iinfo(audio.dtype)
        half_range = (float(limits.max) - float(limits.min) + 1.0) / 2.0
        audio = (audio - (limits.min + half_range)) / half_range
    return audio.astype(np.float32).reshape(len(audio), -1), int(tensor.rate)


def _decode(path):
    """``(audio (frames, channels) float32, sample_rate)``; ``AudioError`` if undecodable."""
    tfio = _tfio()
    if tfio is not None:
        try:
            return _decode_tfio(tfio, path)
        except Exception:  # soundfile below decodes it or names the problem
            pass
    try:
        return sf.read(path, dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile failed: audioread may know the format
        soundfile_error = error
    try:
        import librosa
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audio, sample_rate = librosa.load(path, sr=None, mono=False)
    except Exception:
        raise _unreadable(path, soundfile_error) from None
    return np.asarray(audio, np.float32).reshape(-1, audio.shape[-1]).T, int(sample_rate)


_UNKNOWN_DATA_SIZES = (0, 0xFFFFFFFF)  # WAV writers that did not know the length write these


def _wav_header_frames(path):
    """The frames a RIFF/WAVE file's ``data`` chunk declares (its size over the ``fmt ``
    chunk's block alignment), or None when the file is not such a WAV or declares no size.
    libsndfile itself reports only the frames present."""
    with open(path, "rb") as handle:
        if handle.read(4) != b"RIFF" or not handle.read(4) or handle.read(4) != b"WAVE":
            return None
        block_align = None
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                fmt = handle.read(size + size % 2)
                if len(fmt) < 14:
                    return None
                block_align = struct.unpack("<H", fmt[12:14])[0]
            elif chunk_id == b"data":
                if not block_align or size in _UNKNOWN_DATA_SIZES:
                    return None
                return size // block_align
            else:
                handle.seek(size + size % 2, os.SEEK_CUR)  # chunks are padded to even sizes


def info(path):
    """Read only the header of an audio file: an ``AudioInfo`` (for WAV files, with the frames
    its header declares, to tell a file cut short). ``AudioError`` if the file is missing, a
    directory, empty or not readable audio."""
    path = _checked_path(path)
    try:
        header = sf.info(path)
    except Exception as error:
        raise _unreadable(path, error) from None
    frames = int(header.frames)
    declared = _wav_header_frames(path) if header.format in ("WAV", "WAVEX") else None
    return AudioInfo(sample_rate=int(header.samplerate), channels=int(header.channels),
                     frames=frames, seconds=frames / header.samplerate,
                     subtype=str(header.subtype), header_frames=max(frames, declared or 0))


def load(path, sample_rate=None, *, reject_silent=False):
    """Read an audio file as float32 mono.

    Any sample format (8/16/24/32-bit integer, float) and channel count is accepted; channels
    are averaged. Float files with samples outside [-1, 1] are clipped to [-1, 1] (after
    averaging and resampling), not rescaled.

    Args:
      path: file path (str or os.PathLike) of a WAV, FLAC, OGG, MP3, ... file.
      sample_rate: rate of the returned audio in Hz (resampled with soxr, high quality), or
        None for the file's own rate.
      reject_silent: raise ``AudioError`` if the peak amplitude is below 1e-4 (-80 dBFS).
    Returns:
      np.float32 array ``(time,)`` in [-1, 1] at ``sample_rate``.
    Raises:
      AudioError: the file is missing, a directory, empty, not readable audio, has no frames,
        has NaN or Inf samples, or (with ``reject_silent``) is silent.
      ValueError: ``sample_rate`` is not a positive int.
    """
    if sample_rate is not None and (isinstance(sample_rate, bool) or
                                    not isinstance(sample_rate, (int, np.integer)) or
                                    sample_rate <= 0):
        raise ValueError(f"sample_rate must be a positive int or None, got {sample_rate!r}")
    path = _checked_path(path)
    audio, file_rate = _decode(path)
    if audio.size == 0:
        raise AudioError(f"{path}: contains no audio frames")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: contains NaN or Inf samples")
    audio = audio.mean(axis=1, dtype=np.float32)
    peak = float(np.max(np.abs(audio)))
    if reject_silent and peak < SILENT_PEAK:
        raise AudioError(f"{path}: is silent (peak {peak:.2e}, below -80 dBFS)")
    if sample_rate is not None and sample_rate != file_rate:
        import librosa
        audio = librosa.resample(audio, orig_sr=file_rate, target_sr=sample_rate,
                                 res_type="soxr_hq")
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def save(path, audio, sample_rate, subtype="PCM_16"):
    """Write mono audio to a WAV file atomically (a temporary file in the same folder, then
    ``os.replace``), creating the parent folder.

    Args:
      path: destination file path.
      audio: float array ``(time,)`` in [-1, 1] (clipped for ``"PCM_16"``).
      sample_rate: Hz, a positive int.
      subtype: ``"PCM_16"`` or ``"FLOAT"`` (32-bit float).
    Raises:
      ValueError: bad ``subtype``, ``audio`` not 1-D or not finite, bad ``sample_rate``.
      AudioError: the file or its folder cannot be written.
    """
    if subtype not in SUBTYPES:
        raise ValueError(f"subtype must be one of {sorted(SUBTYPES)}, got {subtype!r}")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D (time,), got shape {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio must not contain NaN or Inf samples")
    if (isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer))
            or sample_rate <= 0):
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    if subtype == "PCM_16":
        audio = np.clip(audio, -1.0, 1.0)
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        os.makedirs(folder, exist_ok=True)
        try:
            with open(temporary, "xb") as handle:
                sf.write(handle, audio, int(sample_rate), subtype=subtype, format="WAV")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    except OSError as error:
        raise AudioError(f"{path}: cannot write ({error.strerror or error})") from None


def stream_to_wavs(chunks, paths, sample_rate):
    """Write audio arriving in chunks to 16-bit WAV files without holding it in memory.

    Args:
      chunks: iterable of float arrays ``(len(paths), n)`` in [-1, 1] (clipped); row ``i``
        is appended to ``paths[i]``.
      paths: output paths (``pathlib.Path``); their folders must exist.
      sample_rate: Hz.
    Each file is written as ``.<name>.partial`` and renamed when every chunk is written; on
    failure the partial files are removed and no output path is touched. Returns the number
    of samples written per file. Raises ``OSError`` naming a file that cannot be written.
    """
    paths = [Path(path) for path in paths]
    partials = [path.with_name(f".{path.name}.partial") for path in paths]
    files = []
    written = 0
    try:
        for partial, path in zip(partials, paths):
            if not path.parent.is_dir():
                raise OSError(f"cannot write {str(path)!r}: its folder does not exist or is "
                              "not a folder")
            try:
                files.append(sf.SoundFile(partial, "w", samplerate=sample_rate,
                                          channels=1, format="WAV", subtype="PCM_16"))
            except (sf.SoundFileError, OSError) as error:
                raise OSError(f"cannot write {str(path)!r}: {error}") from None
        for audio in chunks:
            for file, row in zip(files, np.asarray(audio)):
                file.write(np.clip(row, -1.0, 1.0))
            written += np.asarray(audio).shape[1]
        for file in files:
            file.close()
        for partial, path in zip(partials, paths):
            os.replace(partial, path)
    finally:
        for file in files:
            file.close()
        for partial in partials:
            if partial.exists():
                partial.unlink()
    return written
