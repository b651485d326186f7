"""Codes files and codec evaluation: streaming round trips, bitrate choice, bad files, and the
codec command line in subprocesses."""
import json

import numpy as np
import pytest
import soundfile

from samplenet import codec_files
from samplenet import config as schema
from samplenet.testing.sources import ArraySource
from samplenet.training import checkpoints
from samplenet.training.optimizers import make_optimizer
from tests.cli.test_train_cli import assert_one_line_error, run_cli

TINY = {"channels": 4, "strides": [2, 4], "latent_dim": 8, "num_quantizers": 3,
        "codebook_size": 16, "segment_samples": 2048}


@pytest.fixture(scope="module")
def codec():
    model = schema.build_model("soundstream", **TINY).ensure_built()
    return model


def _tone(num_samples, frequency=330.0):
    return (0.5 * np.sin(2 * np.pi * frequency * np.arange(num_samples) / 16000)).astype(
        np.float32)


def test_num_quantizers_for_bitrate_picks_the_most_within_budget(codec):
    per_codebook = codec.bitrate_kbps(1)  # 2000 frames/s x 4 bits = 8 kbps
    assert codec_files.num_quantizers_for_bitrate(codec) == 3
    assert codec_files.num_quantizers_for_bitrate(codec, 2 * per_codebook) == 2
    assert codec_files.num_quantizers_for_bitrate(codec, 2.5 * per_codebook) == 2
    assert codec_files.num_quantizers_for_bitrate(codec, 100 * per_codebook) == 3
    with pytest.raises(ValueError, match="serves 8, 16, 24 kbps"):
        codec_files.num_quantizers_for_bitrate(codec, 0.5 * per_codebook)


def test_encode_decode_files_stream_and_restore_the_length(codec, tmp_path):
    audio = _tone(5003)  # not a multiple of the hop, several chunks
    soundfile.write(tmp_path / "in.wav", audio, 16000, subtype="FLOAT")
    shape = codec_files.encode_file(codec, tmp_path / "in.wav", tmp_path / "codes.npz",
                                    bitrate_kbps=16, chunk_seconds=0.05)
    codes, num_samples = codec_files.read_codes(codec, tmp_path / "codes.npz")
    assert shape == (2, -(-5003 // codec.hop)) and num_samples == 5003
    np.testing.assert_array_equal(codes, np.asarray(codec.encode(audio[None], 2)))

    written = codec_files.decode_file(codec, tmp_path / "codes.npz", tmp_path / "out.wav",
                                      chunk_seconds=0.05)
    decoded, rate = soundfile.read(tmp_path / "out.wav", dtype="float32")
    assert written == 5003 and rate == 16000 and decoded.shape == (5003,)
    whole = np.clip(np.asarray(codec.decode(codes, 5003))[0], -1, 1)
    np.testing.assert_allclose(decoded, whole, atol=2 / 32768)  # 16-bit rounding
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.npz", "in.wav", "out.wav"]


def test_read_codes_rejects_other_codecs_and_corrupt_files(codec, tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, codes=np.zeros((2, 5), np.int16), sample_rate=16000, num_samples=40, hop=8,
             codebook_size=1024)
    with pytest.raises(ValueError, match="codebook_size=1024"):
        codec_files.read_codes(codec, other)
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="corrupt.npz"):
        codec_files.read_codes(codec, tmp_path / "corrupt.npz")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, codes=np.array([{"evil": 1}], dtype=object), sample_rate=16000,
             num_samples=8, hop=8, codebook_size=16)
    with pytest.raises(ValueError, match="pickled.npz"):
        codec_files.read_codes(codec, pickled)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, codes=np.full((2, 3), 99, np.int16), sample_rate=16000, num_samples=24,
             hop=8, codebook_size=16)
    with pytest.raises(ValueError, match="outside"):
        codec_files.read_codes(codec, wrong)


def test_evaluate_source_scores_every_file(codec):
    source = ArraySource([_tone(3000), _tone(800, 500.0)], splits=["test", "test"])
    report = codec_files.evaluate_source(codec, source, "test", bitrate_kbps=8)
    assert report["num_files"] == 2 and report["num_quantizers"] == 1
    assert report["bitrate_kbps"] == pytest.approx(8.0)
    for key in ("si_sdr_db", "stft_distance", "mel_distance"):
        assert np.isfinite(report[key])


@pytest.mark.slow
def test_codec_cli_encode_decode_evaluate(codec, tmp_path):
    config = schema.config_for("soundstream", {**TINY, "data.spec":
                                                 "builtin:sines?num_items=6&item_seconds=0.5"})
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    optimizer = make_optimizer(config["train"])
    optimizer.build(codec.trainable_variables)
    checkpoints.save_checkpoint(run / "checkpoints", codec, optimizer, {"epoch": 1, "step": 0},
                                is_best=True)
    soundfile.write(tmp_path / "in.wav", _tone(4000), 16000)

    result = run_cli("-m", "samplenet.codec", "encode", "--ckpt", str(run),
                     str(tmp_path / "in.wav"), str(tmp_path / "codes.npz"), "--bitrate", "8")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "8 kbps" in result.stdout
    result = run_cli("-m", "samplenet.codec", "decode", "--ckpt", str(run),
                     str(tmp_path / "codes.npz"), str(tmp_path / "out.wav"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert soundfile.info(tmp_path / "out.wav").frames == 4000
    result = run_cli("-m", "samplenet.codec", "evaluate", "--ckpt", str(run), "--split", "all",
                     "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["num_files"] == 6 and report["bitrate_kbps"] == pytest.approx(24.0)
    result = run_cli("-m", "samplenet.codec", "decode", "--ckpt", str(run),
                     str(tmp_path / "missing.npz"), str(tmp_path / "x.wav"))
    assert_one_line_error(result, "missing.npz")
