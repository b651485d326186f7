import dataclasses
import os
import sys
import types
import warnings

import numpy as np
import pytest
import soundfile as sf

from samplenet import audio

RATE = 8000


def _tone(seconds=0.25, rate=RATE, frequency=440.0, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _write(path, data, rate=RATE, **kwargs):
    sf.write(str(path), data, rate, **kwargs)
    return path


def _peak_frequency(signal, rate):
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return np.argmax(spectrum) * rate / len(signal), rate / len(signal)


@pytest.fixture
def fresh_probe():
    audio._tfio.cache_clear()
    yield
    audio._tfio.cache_clear()


@pytest.mark.parametrize("name, subtype, tolerance", [
    ("a.wav", "PCM_16", 1 / 32768),
    ("a.wav", "PCM_24", 2.0 ** -23),
    ("a.wav", "PCM_32", 2.0 ** -31),
    ("a.wav", "PCM_U8", 1 / 128),
    ("a.wav", "FLOAT", 0.0),
    ("a.flac", "PCM_16", 1 / 32768),
    ("a.flac", "PCM_24", 2.0 ** -23),
])
def test_load_lossless_formats_return_float32_mono_within_one_step(tmp_path, name, subtype,
                                                                   tolerance):
    tone = _tone()
    path = _write(tmp_path / name, tone, subtype=subtype)
    loaded = audio.load(path)
    assert loaded.dtype == np.float32 and loaded.shape == tone.shape
    assert np.max(np.abs(loaded - tone)) <= tolerance


@pytest.mark.parametrize("name, kwargs", [
    ("a.ogg", {"format": "OGG", "subtype": "VORBIS"}),
    ("a.mp3", {"format": "MP3", "subtype": "MPEG_LAYER_III"}),
])
def test_load_lossy_formats_keep_the_tone(tmp_path, name, kwargs):
    if kwargs["format"] not in sf.available_formats():
        pytest.skip(f"libsndfile here cannot write {kwargs['format']}")
    rate = 16000
    tone = _tone(seconds=1.0, rate=rate)
    loaded = audio.load(_write(tmp_path / name, tone, rate, **kwargs))
    assert loaded.dtype == np.float32 and loaded.ndim == 1
    assert abs(len(loaded) - len(tone)) < 0.1 * rate
    frequency, bin_width = _peak_frequency(loaded, rate)
    assert abs(frequency - 440.0) <= bin_width
    assert 0.4 < np.max(np.abs(loaded)) <= 1.0


def test_load_stereo_averages_channels(tmp_path):
    tone = _tone()
    stereo = np.stack([tone, 0.25 * np.roll(tone, 7)], axis=1)
    loaded = audio.load(_write(tmp_path / "stereo.wav", stereo, subtype="FLOAT"))
    np.testing.assert_allclose(loaded, stereo.mean(axis=1), atol=1e-7)


def test_load_clips_float_samples_outside_unit_range(tmp_path):
    data = np.array([0.25, 1.5, -2.0, -0.5, 1.0], np.float32)
    loaded = audio.load(_write(tmp_path / "hot.wav", data, subtype="FLOAT"))
    np.testing.assert_array_equal(loaded, [0.25, 1.0, -1.0, -0.5, 1.0])


def test_load_resampling_keeps_frequency_and_duration(tmp_path):
    tone = _tone(seconds=0.5, rate=22050, frequency=440.0, amplitude=0.9)
    path = _write(tmp_path / "tone.wav", tone, 22050, subtype="FLOAT")
    loaded = audio.load(path, 16000)
    assert loaded.dtype == np.float32 and len(loaded) == 8000
    frequency, bin_width = _peak_frequency(loaded, 16000)
    assert abs(frequency - 440.0) <= bin_width
    assert np.max(np.abs(loaded)) <= 1.0
    np.testing.assert_array_equal(audio.load(path, 22050), audio.load(path))


@pytest.mark.parametrize("sample_rate", [0, -16000, 16000.0, True, "16000"])
def test_load_rejects_bad_sample_rate(tmp_path, sample_rate):
    path = _write(tmp_path / "a.wav", _tone())
    with pytest.raises(ValueError, match="sample_rate"):
        audio.load(path, sample_rate)


def test_info_reads_the_header(tmp_path):
    stereo = np.zeros((1200, 2), np.float32) + 0.1
    header = audio.info(_write(tmp_path / "a.wav", stereo, 24000, subtype="PCM_24"))
    assert header == audio.AudioInfo(sample_rate=24000, channels=2, frames=1200, seconds=0.05,
                                     subtype="PCM_24", header_frames=1200)
    assert not header.truncated and header.truncation() is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        header.frames = 3


def _cut_short(path, frames_kept, bytes_per_frame=2, header_bytes=44):
    """What an interrupted copy leaves: the header of the whole file, part of its data."""
    path.write_bytes(path.read_bytes()[:header_bytes + frames_kept * bytes_per_frame])
    return path


def test_info_of_a_wav_cut_short_names_header_and_file_lengths(tmp_path):
    path = _cut_short(_write(tmp_path / "a.wav", np.full(80322, 0.1, np.float32), 16000), 1478)
    header = audio.info(path)
    assert (header.frames, header.header_frames, header.truncated) == (1478, 80322, True)
    assert header.truncation() == ("truncated: its header says 80,322 frames, the file holds "
                                   "1,478 (0.09 s)")
    assert audio.load(path).shape == (1478,)  # what it holds stays readable


def test_info_of_a_wav_without_a_declared_length_is_not_truncated(tmp_path):
    path = _write(tmp_path / "a.wav", np.full(800, 0.1, np.float32), 16000)
    raw = bytearray(path.read_bytes())
    raw[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # a streaming writer's "unknown" data size
    path.write_bytes(bytes(raw))
    header = audio.info(path)
    assert not header.truncated and header.header_frames == header.frames == 800


def test_info_finds_the_data_chunk_after_other_chunks(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(str(path), np.full(1000, 0.1, np.float32), 16000, subtype="FLOAT")  # has a fact chunk
    assert b"fact" in path.read_bytes()[:80]
    header_bytes = path.read_bytes().index(b"data") + 8
    header = audio.info(_cut_short(path, 10, bytes_per_frame=4, header_bytes=header_bytes))
    assert (header.frames, header.header_frames) == (10, 1000)


def _missing(tmp_path):
    return tmp_path / "nowhere.wav"


def _folder(tmp_path):
    (tmp_path / "folder.wav").mkdir()
    return tmp_path / "folder.wav"


def _empty(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    return tmp_path / "empty.wav"


def _not_audio(tmp_path):
    (tmp_path / "text.wav").write_bytes(b"this is a text file, not audio\n" * 20)
    return tmp_path / "text.wav"


def _truncated_header(tmp_path):
    whole = _write(tmp_path / "whole.wav", _tone()).read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:20])
    return tmp_path / "cut.wav"


HEADER_ERRORS = {"missing": (_missing, "no such file"), "folder": (_folder, "directory"),
                 "empty": (_empty, "empty"), "not audio": (_not_audio, "not a readable audio"),
                 "truncated header": (_truncated_header, "not a readable audio")}


@pytest.mark.parametrize("case", sorted(HEADER_ERRORS))
def test_load_and_info_name_the_bad_file(tmp_path, case):
    make, words = HEADER_ERRORS[case]
    path = make(tmp_path)
    for function in (audio.load, audio.info):
        with pytest.raises(audio.AudioError) as error:
            function(path)
        assert isinstance(error.value, ValueError)
        assert str(path) in str(error.value) and words in str(error.value)
        assert error.value.__cause__ is None


@pytest.mark.parametrize("data, words", [
    (np.zeros(0, np.float32), "no audio frames"),
    (np.array([0.1, np.nan, 0.2], np.float32), "NaN or Inf"),
    (np.array([0.1, np.inf, 0.2], np.float32), "NaN or Inf"),
])
def test_load_rejects_empty_and_non_finite_audio_naming_the_file(tmp_path, data, words):
    path = _write(tmp_path / "bad.wav", data, subtype="FLOAT")
    with pytest.raises(audio.AudioError) as error:
        audio.load(path)
    assert str(path) in str(error.value) and words in str(error.value)


def test_load_rejects_silence_only_when_asked(tmp_path):
    silent = _write(tmp_path / "silent.wav", np.full(800, 5e-5, np.float32), subtype="FLOAT")
    quiet = _write(tmp_path / "quiet.wav", np.full(800, 2e-4, np.float32), subtype="FLOAT")
    assert audio.load(silent).shape == (800,)
    with pytest.raises(audio.AudioError) as error:
        audio.load(silent, reject_silent=True)
    assert str(silent) in str(error.value) and "silent" in str(error.value)
    assert audio.load(quiet, reject_silent=True).shape == (800,)


def test_load_falls_back_to_librosa_when_libsndfile_fails(tmp_path, monkeypatch):
    import librosa
    path = _write(tmp_path / "odd.wav", _tone())
    stereo = np.stack([_tone(), np.zeros_like(_tone())])

    def fail(*args, **kwargs):
        raise RuntimeError("Format not recognised.")

    monkeypatch.setattr(audio.sf, "read", fail)
    monkeypatch.setattr(librosa, "load", lambda *a, **k: (stereo, 11025))
    np.testing.assert_allclose(audio.load(path), 0.5 * _tone(), atol=1e-7)

    monkeypatch.setattr(librosa, "load", fail)
    with pytest.raises(audio.AudioError, match="Format not recognised") as error:
        audio.load(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("subtype, tolerance", [("PCM_16", 1 / 32768), ("FLOAT", 0.0)])
def test_save_then_load_round_trips(tmp_path, subtype, tolerance):
    signal = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    path = tmp_path / "nested" / "deeper" / "out.wav"
    audio.save(path, signal, 16000, subtype=subtype)
    assert audio.info(path).sample_rate == 16000 and audio.info(path).subtype == subtype
    assert np.max(np.abs(audio.load(path) - signal)) <= tolerance
    assert os.listdir(path.parent) == ["out.wav"]


def test_save_pcm16_clips_and_overwrites(tmp_path):
    path = tmp_path / "out.wav"
    audio.save(path, np.zeros(10, np.float32), 8000)
    audio.save(str(path), np.array([2.0, -3.0, 0.5], np.float32), 8000)
    loaded = audio.load(path)
    np.testing.assert_allclose(loaded, [1.0, -1.0, 0.5], atol=1 / 32768)
    assert os.listdir(tmp_path) == ["out.wav"]


def test_save_interrupted_leaves_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "out.wav"
    audio.save(path, np.full(100, 0.25, np.float32), 8000, subtype="FLOAT")
    before = path.read_bytes()

    def crash(handle, *args, **kwargs):
        handle.write(b"RIFF half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(audio.sf, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        audio.save(path, np.zeros(100, np.float32), 8000)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.wav"]


@pytest.mark.parametrize("kwargs, argument", [
    ({"subtype": "PCM_24"}, "subtype"),
    ({"audio": np.zeros((2, 10), np.float32)}, "audio"),
    ({"audio": np.array([0.0, np.nan], np.float32)}, "audio"),
    ({"sample_rate": 0}, "sample_rate"),
    ({"sample_rate": -8000}, "sample_rate"),
    ({"sample_rate": 8000.5}, "sample_rate"),
])
def test_save_rejects_bad_arguments(tmp_path, kwargs, argument):
    call = {"path": tmp_path / "out.wav", "audio": np.zeros(10, np.float32),
            "sample_rate": 8000, **kwargs}
    with pytest.raises(ValueError, match=argument):
        audio.save(**call)
    assert not (tmp_path / "out.wav").exists()


def test_save_into_unwritable_place_names_the_file(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    path = tmp_path / "a_file" / "out.wav"
    with pytest.raises(audio.AudioError) as error:
        audio.save(path, np.zeros(10, np.float32), 8000)
    assert str(path) in str(error.value) and "cannot write" in str(error.value)


def test_backend_is_soundfile_when_tensorflow_io_is_missing(monkeypatch, fresh_probe):
    monkeypatch.setitem(sys.modules, "tensorflow_io", None)
    assert audio.backend_name() == "soundfile"


def _fake_tfio(decode_wav):
    module = types.ModuleType("tensorflow_io")

    class AudioIOTensor:
        def __init__(self, path):
            self._data, self.rate = sf.read(path, dtype="int16", always_2d=True)

        def to_tensor(self):
            return self._data

    module.audio = types.SimpleNamespace(decode_wav=decode_wav, AudioIOTensor=AudioIOTensor)
    return module


def test_backend_probe_swallows_broken_ops_silently(monkeypatch, fresh_probe, capsys):
    def broken(*args, **kwargs):
        warnings.warn("unable to load libtensorflow_io.so")
        raise NotImplementedError("op not registered")

    monkeypatch.setitem(sys.modules, "tensorflow_io", _fake_tfio(broken))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert audio.backend_name() == "soundfile"
    assert caught == [] and capsys.readouterr() == ("", "")


def test_backend_uses_working_tensorflow_io_probed_once(tmp_path, monkeypatch, fresh_probe):
    calls = []
    monkeypatch.setitem(sys.modules, "tensorflow_io",
                        _fake_tfio(lambda *args, **kwargs: calls.append(1)))
    assert audio.backend_name() == "tensorflow-io"
    assert audio.backend_name() == "tensorflow-io" and len(calls) == 1
    stereo = np.stack([_tone(), -_tone()], axis=1) * 0.5 + 0.25
    path = _write(tmp_path / "a.wav", stereo, subtype="PCM_16")
    np.testing.assert_allclose(audio.load(path), stereo.mean(axis=1), atol=1 / 32768)
    with pytest.raises(audio.AudioError, match="empty"):
        audio.load(_empty(tmp_path))


# ----- streaming writes (generation, codec decoding)

def _chunks(num_chunks, batch, length):
    for index in range(num_chunks):
        audio = np.full((batch, length), 0.25 * (index + 1), np.float32)
        audio[:, 0] = 3.0  # out of range: clipped when written
        yield audio


def test_stream_to_wavs_writes_every_chunk_as_16_bit(tmp_path):
    paths = [tmp_path / "sample_0.wav", tmp_path / "sample_1.wav"]
    assert audio.stream_to_wavs(_chunks(3, 2, 5), paths, 8000) == 15
    written, rate = sf.read(paths[1])
    assert rate == 8000 and written.shape == (15,)
    assert sf.info(paths[1]).subtype == "PCM_16"
    np.testing.assert_allclose(written[[1, 6, 11]], [0.25, 0.5, 0.75], atol=1e-4)
    assert written.max() == pytest.approx(1.0, abs=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample_0.wav", "sample_1.wav"]


def test_stream_to_wavs_failure_leaves_no_partial_files(tmp_path):
    def failing():
        yield from _chunks(1, 1, 4)
        raise ValueError("model broke")

    with pytest.raises(ValueError, match="model broke"):
        audio.stream_to_wavs(failing(), [tmp_path / "sample_0.wav"], 8000)
    assert not list(tmp_path.iterdir())


def test_stream_to_wavs_unwritable_folder_raises_os_error(tmp_path):
    with pytest.raises(OSError, match="sample_0"):
        audio.stream_to_wavs(_chunks(1, 1, 4), [tmp_path / "missing" / "sample_0.wav"],
                                    8000)
