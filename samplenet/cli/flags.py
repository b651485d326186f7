"""What the command-line programs share: running an absl app whose flags are defined on
demand, and turning user errors into one line on stderr."""
import functools
import logging
import sys

from absl import app, flags
from absl import logging as absl_logging

# Log records of samplenet's own modules are shown in programs as "warning: ..." lines (INFO:
# the message alone); other libraries' records below WARNING (TensorFlow's notes on checkpoint
# sharding, ...) are not.
_PROGRAM_LOGGER = "samplenet"


def report_errors(main):
    """Wrap an absl ``main(argv)``: stray positional arguments and ``ValueError`` /
    ``OSError`` (which include ``AudioError`` and checkpoint errors) become ``error: ...`` on
    stderr and exit code 1, without a traceback."""
    @functools.wraps(main)
    def wrapper(argv):
        if len(argv) > 1:
            print(f"error: unexpected arguments {argv[1:]} (all options are --flags; see --help)",
                  file=sys.stderr)
            return 2
        try:
            return main(argv) or 0
        except (ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return wrapper


class _PlainFormatter(logging.Formatter):
    """``message`` for INFO records, ``level: message`` (lower case) above."""

    def format(self, record):
        message = record.getMessage()
        if record.levelno <= logging.INFO:
            return message
        return f"{record.levelname.lower()}: {message}"


def configure_program_logging():
    """Show samplenet's log records as plain lines on stderr (see ``_PlainFormatter``) and hide
    every other library's records below WARNING. Called by ``run_app`` once absl has parsed the
    flags (absl sets its own verbosity then)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PlainFormatter())
    logger = logging.getLogger(_PROGRAM_LOGGER)
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False  # not again through absl's handler on the root logger
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)


def run_app(main, define_flags):
    """Define the program's flags on ``absl.flags.FLAGS`` (listed by ``--help`` as the main
    program's) and run ``main`` with absl, with ``configure_program_logging``."""
    before = set(flags.FLAGS)
    define_flags()
    for name in sorted(set(flags.FLAGS) - before):
        flags.FLAGS.register_flag_by_module(sys.argv[0], flags.FLAGS[name])

    def main_with_logging(argv):
        configure_program_logging()
        return main(argv)

    app.run(main_with_logging)


def define_ckpt_flag(flag_values, what="a run directory (its best, else latest checkpoint) or "
                     "a checkpoint folder in one"):
    """The required ``--ckpt`` flag of the programs that read a trained model."""
    flags.DEFINE_string("ckpt", None, what, flag_values=flag_values)
    flags.mark_flag_as_required("ckpt", flag_values=flag_values)


def define_threads_flag(flag_values, what):
    """The ``--threads`` flag: TensorFlow's intra- and inter-op threads (0 = one per core;
    default None: the program chooses, as ``what`` says)."""
    flags.DEFINE_integer("threads", None, f"TensorFlow threads (0 = one per core; default: "
                         f"{what})", lower_bound=0, flag_values=flag_values)


def apply_threads(threads, explicit=True):
    """Set TensorFlow's intra- and inter-op threads to ``threads`` (0 = TensorFlow's default,
    one per core). Must run before TensorFlow executes anything; if it already has (the
    program was called from a running Python process), the process keeps its setting, and a
    one-line warning says so when the user asked for ``threads`` (``explicit``)."""
    import tensorflow as tf
    if threads == 0:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        if explicit and tf.config.threading.get_intra_op_parallelism_threads() != threads:
            print(f"warning: --threads {threads} not applied: TensorFlow had already started "
                  f"in this process", file=sys.stderr)
