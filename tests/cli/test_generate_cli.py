"""Tests of samplenet.cli.generate's flag checks (its error messages: tests/test_bad_input.py)."""
import pytest
from absl import flags

from samplenet.cli import generate as generate_cli


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


@pytest.mark.parametrize("threads, num_seqs, expected", [
    (None, 1, 1), (None, 4, 0), (2, 1, 2), (0, 1, 0), (1, 8, 1)])
def test_generation_threads_one_for_a_single_sequence_unless_given(threads, num_seqs,
                                                                   expected):
    assert generate_cli.generation_threads(threads, num_seqs) == expected
