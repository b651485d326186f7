"""What the command-line programs share: running an absl app whose flags are defined on
demand, and turning user errors into one line on stderr."""
import functools
import logging
import sys

from absl import app


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


def run_app(main, define_flags):
    """Define the program's flags on ``absl.flags.FLAGS`` and run ``main`` with absl."""
    define_flags()
    logging.getLogger("tensorflow").setLevel(logging.WARNING)  # TF's per-checkpoint info lines
    app.run(main)
