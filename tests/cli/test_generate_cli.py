"""Tests of samplenet.cli.generate: flag checks and streaming in-process, errors in
subprocesses."""
import numpy as np
import pytest
import soundfile
from absl import flags

from samplenet.cli import generate as generate_cli
from samplenet.testing.toy_model import toy_config
from samplenet.training import trainer
from tests.cli.test_train_cli import assert_one_line_error, run_cli


def _settings(*argv):
    flag_values = flags.FlagValues()
    generate_cli.define_flags(flag_values)
    flag_values(["generate", "--ckpt=somewhere", *argv])
    return generate_cli.generation_settings(flag_values)


def test_generation_settings_temperature_list_gives_one_per_sequence():
    assert _settings("--num_seqs=3", "--temperature=0.5,1,2") == ([0.5, 1.0, 2.0], None)
    assert _settings("--num_seqs=2", "--temperature=0.9", "--condition=1,0") == (0.9, [1, 0])


@pytest.mark.parametrize("argv, word", [(["--seconds=0"], "seconds"),
                                        (["--num_seqs=0"], "num_seqs"),
                                        (["--temperature=0"], "temperature"),
                                        (["--temperature=1,-1", "--num_seqs=2"], "temperature"),
                                        (["--temperature=1,1"], "num_seqs"),
                                        (["--temperature=hot"], "temperature"),
                                        (["--chunk_seconds=-1"], "chunk_seconds")])
def test_generation_settings_bad_value_raises_naming_flag(argv, word):
    with pytest.raises(ValueError, match=word):
        _settings(*argv)


def _chunks(num_chunks, batch, length):
    for index in range(num_chunks):
        audio = np.full((batch, length), 0.25 * (index + 1), np.float32)
        audio[:, 0] = 3.0  # out of range: clipped when written
        yield np.zeros((batch, length), np.int32), audio


def test_stream_to_wavs_writes_every_chunk_as_16_bit(tmp_path):
    paths = [tmp_path / "sample_0.wav", tmp_path / "sample_1.wav"]
    assert generate_cli.stream_to_wavs(_chunks(3, 2, 5), paths, 8000) == 15
    audio, rate = soundfile.read(paths[1])
    assert rate == 8000 and audio.shape == (15,)
    assert soundfile.info(paths[1]).subtype == "PCM_16"
    np.testing.assert_allclose(audio[[1, 6, 11]], [0.25, 0.5, 0.75], atol=1e-4)
    assert audio.max() == pytest.approx(1.0, abs=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample_0.wav", "sample_1.wav"]


def test_stream_to_wavs_failure_leaves_no_partial_files(tmp_path):
    def failing():
        yield from _chunks(1, 1, 4)
        raise ValueError("model broke")

    with pytest.raises(ValueError, match="model broke"):
        generate_cli.stream_to_wavs(failing(), [tmp_path / "sample_0.wav"], 8000)
    assert not list(tmp_path.iterdir())


def test_stream_to_wavs_unwritable_folder_raises_os_error(tmp_path):
    with pytest.raises(OSError, match="sample_0"):
        generate_cli.stream_to_wavs(_chunks(1, 1, 4), [tmp_path / "missing" / "sample_0.wav"],
                                    8000)


@pytest.mark.slow
def test_cli_generate_missing_ckpt_is_one_line_error(tmp_path):
    result = run_cli("generate.py", f"--ckpt={tmp_path / 'nowhere'}")
    assert_one_line_error(result, "nowhere")


@pytest.mark.slow
def test_cli_generate_unwritable_out_dir_is_one_line_error(tmp_path):
    trainer.train(toy_config(), tmp_path / "run", verbose=0)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = run_cli("generate.py", f"--ckpt={tmp_path / 'run'}", "--seconds=0.01",
                     f"--out_dir={blocker / 'out'}")
    assert_one_line_error(result, "a_file")
