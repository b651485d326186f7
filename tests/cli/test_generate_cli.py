"""Tests of samplenet.cli.generate: flag checks and streaming in-process, errors in
subprocesses."""
import pytest
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
