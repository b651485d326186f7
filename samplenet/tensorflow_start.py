"""Import TensorFlow without the log lines it prints before it reads its own log level.

TensorFlow 2.21 prints some lines while it loads, through absl's logger, before anything reads
``TF_CPP_MIN_LOG_LEVEL``: absl's banner (``WARNING: All log messages before
absl::InitializeLog() is called are written to STDERR``), ``port.cc`` ("oneDNN custom
operations are on", on CPUs where oneDNN is used), and ``cudart_stub.cc`` ("Could not find cuda
drivers on your machine", twice, on a machine with a CUDA toolkit and no GPU). The first
enumeration of devices then logs ``failed call to cuInit`` as an error on such a machine. Later,
on a CPU without AVX-512, the first op that oneDNN would handle but for its dtype (an int32
transpose of generated codes, a boolean mask, float16) logs, once per process and at ERROR
severity, ``oneDNN supports DT_INT32 only on platforms with AVX-512. Falling back to the
default Eigen-based implementation``: a note, not an error, printed in the middle of whatever
the program shows then. No environment variable silences the first three;
``TF_CPP_MIN_LOG_LEVEL=3`` would silence the last two, and every real error after them.

``import_tensorflow()`` therefore imports TensorFlow and enumerates its devices with the
process's standard error (file descriptor 2) redirected to a temporary file, then writes back
what TensorFlow would have shown had it applied ``TF_CPP_MIN_LOG_LEVEL`` from the start:

- C++ log records (``I``/``W``/``E``/``F`` + date, time, thread, ``file:line]``, with any
  continuation lines) whose severity is below the level (INFO 0, WARNING 1, ERROR 2, FATAL 3)
  are dropped, as is absl's banner when the level is above 0;
- at level 2 or more, also the record of a failed ``cuInit``: on a machine without a usable
  GPU driver it is what "no GPU" looks like, and the programs say which device they use;
- at level 2 or more, the oneDNN dtype note, which is made to appear inside the captured window:
  a one-op graph (an int32 transpose) runs in a CPU-only ``tf.compat.v1.Session``, which
  leaves the eager runtime uninitialised (thread counts, logical devices and GPU memory
  settings can still be configured afterwards);
- everything else (other records, Python's own output) is written back, in order.

With ``TF_CPP_MIN_LOG_LEVEL=0`` nothing is dropped. If TensorFlow was imported before this
module ran, only the device enumeration is captured.
"""
import contextlib
import io
import os
import re
import sys
import tempfile

LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
SEVERITIES = {"I": 0, "W": 1, "E": 2, "F": 3}
# An absl / TensorFlow C++ log record: severity, MMDD hh:mm:ss.micros (before absl is set up:
# "0000 00:00:<seconds since 1970>.micros"), thread id, file:line]
_RECORD = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]\s]+:\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"
_NO_GPU_DRIVER = "failed call to cuInit"
_ONEDNN_DTYPE_NOTE = re.compile(r"oneDNN supports DT_\w+ only on platforms with AVX-512")


def min_log_level(environ=os.environ):
    """The ``TF_CPP_MIN_LOG_LEVEL`` of ``environ`` as an int 0..3 (0 when unset or invalid)."""
    try:
        return min(max(int(environ.get(LOG_LEVEL_ENV, "0")), 0), 3)
    except ValueError:
        return 0


def _records(text):
    """Split captured output into records: a C++ log line with its continuation lines, or one
    other line. Returns a list of ``(severity or None, text)``."""
    records = []
    for line in text.splitlines(keepends=True):
        match = _RECORD.match(line)
        if match:
            records.append([match.group(1), line])
        elif line.startswith(_ABSL_BANNER):
            records.append(["banner", line])
        elif records and records[-1][0] in SEVERITIES:
            records[-1][1] += line  # a multi-line message (e.g. cpu_feature_guard's)
        else:
            records.append([None, line])
    return [tuple(record) for record in records]


def _is_known_note(record):
    """Whether a C++ log record of ERROR severity is one of the notes that level 2 drops."""
    return _NO_GPU_DRIVER in record or _ONEDNN_DTYPE_NOTE.search(record) is not None


def start_up_lines_to_keep(text, level):
    """The part of TensorFlow's captured start-up output ``text`` that ``level`` (0..3, as
    ``TF_CPP_MIN_LOG_LEVEL``) lets through (see the module docstring)."""
    kept = []
    for severity, record in _records(text):
        if severity == "banner":
            keep = level == 0
        elif severity is not None:
            keep = SEVERITIES[severity] >= level and not (level >= 2 and _is_known_note(record))
        else:
            keep = True
        if keep:
            kept.append(record)
    return "".join(kept)


@contextlib.contextmanager
def _captured_stderr(level):
    """Redirect file descriptor 2 (C++ writes) and ``sys.stderr`` (Python writes) while the
    block runs, then write back what ``level`` keeps of the former and all of the latter."""
    sys.stderr.flush()
    saved_fd = os.dup(2)
    python_stderr, sys.stderr = sys.stderr, io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            python_text, sys.stderr = sys.stderr.getvalue(), python_stderr
            capture.seek(0)
            native = start_up_lines_to_keep(capture.read().decode("utf-8", "replace"), level)
            if native:
                os.write(2, native.encode("utf-8"))
            if python_text:
                sys.stderr.write(python_text)
                sys.stderr.flush()


def import_tensorflow():
    """Import TensorFlow and enumerate its devices, dropping the start-up lines its log level
    would have hidden (module docstring). Returns the ``tensorflow`` module."""
    level = min_log_level()
    if level == 0:
        import tensorflow as tf
        return tf
    with _captured_stderr(level):
        import tensorflow as tf
        tf.config.list_physical_devices()
        if level >= 2:
            _log_onednn_dtype_note(tf)
    return tf


def _log_onednn_dtype_note(tf):
    """Run an int32 transpose in a CPU-only v1 session so that TensorFlow logs its once-per-
    process oneDNN dtype note now, if this CPU lacks AVX-512 (module docstring). Takes ~20 ms;
    the eager runtime stays uninitialised."""
    graph = tf.Graph()
    with graph.as_default():
        codes = tf.compat.v1.placeholder(tf.int32, [2, 2])  # a constant would be folded away
        transposed = tf.transpose(codes)
    config = tf.compat.v1.ConfigProto(device_count={"GPU": 0}, intra_op_parallelism_threads=1,
                                      inter_op_parallelism_threads=1)
    with tf.compat.v1.Session(graph=graph, config=config) as session:
        session.run(transposed, {codes: [[0, 1], [2, 3]]})
