"""Running the command-line programs' ``main`` in-process, as absl's ``app.run`` would (a
subprocess costs a TensorFlow import, 10-20 s on the CI machine): the ``run_program`` fixture
(registered in ``tests/conftest.py``) and ``assert_error``."""
import collections
import contextlib

import pytest
from absl import flags

from samplenet.cli import codec as codec_cli
from samplenet.cli import evaluate as evaluate_cli
from samplenet.cli import generate as generate_cli
from samplenet.cli import train as train_cli

PROGRAMS = {"train": train_cli, "generate": generate_cli, "evaluate": evaluate_cli,
            "codec": codec_cli}
Result = collections.namedtuple("Result", "code out err")


@contextlib.contextmanager
def _program_flags(module, argv):
    """Define ``module``'s flags on absl's global FLAGS, parse ``argv`` and remove them after,
    so that programs with flags of the same name can run one after another in one process."""
    before = set(flags.FLAGS)
    module.define_flags()
    try:
        yield flags.FLAGS(argv)
    finally:
        for name in set(flags.FLAGS) - before:
            delattr(flags.FLAGS, name)
        flags.FLAGS.unparse_flags()


@pytest.fixture
def run_program(capsys):
    """``run_program("generate", "--ckpt=...")`` -> ``Result(code, out, err)``: the program's
    user-facing ``main`` run in-process as absl's ``app.run`` would run it."""
    def run(program, *argv):
        capsys.readouterr()
        with _program_flags(PROGRAMS[program], [program, *map(str, argv)]) as rest:
            code = PROGRAMS[program].main(rest)
        out, err = capsys.readouterr()
        return Result(code, out, err)
    return run


def assert_error(result, *culprits):
    """Exit code != 0, stderr is exactly one ``error: ...`` line naming every culprit, and no
    traceback."""
    assert result.code != 0, result
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    for culprit in culprits:
        assert str(culprit) in lines[0], (culprit, lines[0])
