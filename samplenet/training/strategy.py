"""Choosing a ``tf.distribute`` strategy by name, and which worker is the chief.

- ``"default"``: one device (``tf.distribute.get_strategy()``).
- ``"mirrored"``: every local GPU of one machine (``MirroredStrategy``).
- ``"multiworker"``: several machines (``MultiWorkerMirroredStrategy``). Each runs the same
  ``train.py`` with ``TF_CONFIG`` set, e.g.
  ``{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker",
  "index": 0}}``; the chief (task type ``chief``, or worker 0 when there is none) writes the
  run directory, the other workers only train. Every worker checks that its peers are alive
  every ``HEALTH_CHECK_INTERVAL_SECONDS``; when one is lost, the collectives of the others are
  aborted and ``fit`` raises ``tf.errors.UnavailableError``, which ``lost_worker_errors`` turns
  into ``WorkerLost``.
- ``"tpu"``: a Cloud TPU (``TPUClusterResolver`` + ``TPUStrategy``); the TPU address comes from
  the environment (``TPU_NAME``) as ``TPUClusterResolver()`` finds it.
"""
import contextlib
import functools
import json
import os
import re

import tensorflow as tf

STRATEGIES = frozenset({"default", "mirrored", "multiworker", "tpu"})
# Seconds between two checks that every peer of a multi-worker run is alive (TensorFlow's
# default is 30); a lost worker is noticed within about this time plus the retries of a check.
HEALTH_CHECK_INTERVAL_SECONDS = 5
# What a collective of a multi-worker run raises when a peer is gone: the peer health check
# aborts the collectives with UnavailableError; DeadlineExceeded, Aborted and Cancelled come from
# collectives and RPCs that were cut off.
LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                      tf.errors.AbortedError, tf.errors.CancelledError)


class WorkerLost(RuntimeError):
    """A worker of a multi-worker run is gone (killed, crashed, unreachable); the message names
    it when TensorFlow's error does and tells how to resume."""


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """``MultiWorkerMirroredStrategy`` whose ``reduce`` works for what Keras 3 asks of it:

    - nested values, as ``MirroredStrategy``'s ``reduce`` takes them: ``fit`` and ``evaluate``
      reduce the first batch (a dict here) across replicas before training;
    - scalars with ``axis=0``: Keras reduces every log value (a scalar metric) of a multi-worker
      step with ``axis=0``; a scalar has no axis 0, so it is reduced across replicas only.
    """

    def reduce(self, reduce_op, value, axis):
        reduce = super().reduce

        def reduce_one(item):
            rank = self.experimental_local_results(item)[0].shape.rank
            return reduce(reduce_op, item, axis if rank else None)
        return tf.nest.map_structure(reduce_one, value)


def cluster_task():
    """``(cluster, task_type, task_index)`` from ``TF_CONFIG``; ``(None, None, None)`` when it is
    not set. ``ValueError`` when it is malformed."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None, None, None
    try:
        spec = json.loads(raw)
        cluster = spec["cluster"]
        task = spec["task"]
        task_type, task_index = task["type"], int(task["index"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"TF_CONFIG is malformed ({type(error).__name__}: {error}); expected "
                         '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
                         '"index": 0}}') from None
    if not isinstance(cluster, dict) or task_type not in cluster:
        raise ValueError(f"TF_CONFIG is malformed: task type {task_type!r} is not in its cluster "
                         f"{cluster!r}")
    if not 0 <= task_index < len(cluster[task_type]):
        raise ValueError(f"TF_CONFIG is malformed: task index {task_index} is out of range for "
                         f"the {len(cluster[task_type])} {task_type!r} tasks")
    return cluster, task_type, task_index


@functools.cache
def _multi_worker_strategy():
    """The process's one multi-worker strategy: a second ``MultiWorkerMirroredStrategy`` in a
    process breaks the collectives of the first (its variables' initial broadcast fails with
    "Delete called on non-empty BufRendezvous"), so every run of a process shares this one."""
    strategy = _MultiWorkerMirroredStrategy()
    # Read by the health-check thread before each wait (the first wait may still be
    # TensorFlow's default).
    strategy.extended._check_health_interval = HEALTH_CHECK_INTERVAL_SECONDS
    return strategy


def make_strategy(name="default"):
    """The ``tf.distribute.Strategy`` called ``name`` (one of ``STRATEGIES``); ``"multiworker"``
    gives the same strategy every time in a process."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}, got {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        cluster, _, _ = cluster_task()
        if cluster is None:
            raise ValueError("strategy 'multiworker' needs the TF_CONFIG environment variable "
                             "describing the cluster and this task (see samplenet.training."
                             "strategy)")
        return _multi_worker_strategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise ValueError(f"strategy 'tpu': no TPU found ({error})") from None
    return tf.distribute.TPUStrategy(resolver)


def is_distributed(strategy):
    """True when input must be split per replica/worker (``distribute_datasets_from_function``):
    more than one replica, or a multi-worker or TPU strategy."""
    return strategy.num_replicas_in_sync > 1 or isinstance(
        strategy, (tf.distribute.MultiWorkerMirroredStrategy, tf.distribute.TPUStrategy))


def is_chief(strategy=None):
    """True on the worker that writes checkpoints and logs: the ``chief`` task, or worker 0
    when the cluster has no chief; always True without ``TF_CONFIG`` and on TPUs (one client).
    """
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    cluster, task_type, task_index = cluster_task()
    if cluster is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and task_index == 0 and "chief" not in cluster


def _lost_peer(error):
    """``"worker 1 (host:port)"``: the first task other than this one that an error message
    names (TensorFlow's messages also name the task that reports), or None."""
    cluster, own_type, own_index = cluster_task()
    for match in re.finditer(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)", str(error)):
        task_type, task_index = match.group(1), int(match.group(2))
        if (task_type, task_index) == (own_type, own_index):
            continue
        addresses = (cluster or {}).get(task_type, [])
        address = f" ({addresses[task_index]})" if task_index < len(addresses) else ""
        return f"{task_type} {task_index}{address}"
    return None


def _summary(error):
    """The first line of an error's message without TensorFlow's ``{{function_node ...}}``."""
    lines = str(error).strip().splitlines()
    return re.sub(r"\{\{[^}]*\}\}\s*", "", lines[0]) if lines else type(error).__name__


@contextlib.contextmanager
def lost_worker_errors(strategy, run_dir):
    """Turn the errors of a lost peer (``LOST_WORKER_ERRORS``) raised inside the block of a
    multi-worker run into one ``WorkerLost`` naming the lost worker (when TensorFlow's message
    does) and asking to restart every worker with ``--resume`` on run directory ``run_dir``.
    Other strategies' errors pass unchanged."""
    try:
        yield
    except LOST_WORKER_ERRORS as error:
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            raise
        raise WorkerLost(
            f"{_lost_peer(error) or 'a worker'} of the multi-worker run was lost "
            f"({type(error).__name__}: {_summary(error)}); restart every worker with the same "
            f"command plus --resume --logdir {run_dir} (Python: resume=True) to continue from "
            "the last checkpoint") from None
