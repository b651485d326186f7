"""Choosing a ``tf.distribute`` strategy by name, and which worker is the chief.

- ``"default"``: one device (``tf.distribute.get_strategy()``).
- ``"mirrored"``: every local GPU of one machine (``MirroredStrategy``).
- ``"multiworker"``: several machines (``MultiWorkerMirroredStrategy``). Each runs the same
  ``train.py`` with ``TF_CONFIG`` set, e.g.
  ``{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker",
  "index": 0}}``; the chief (task type ``chief``, or worker 0 when there is none) writes the
  run directory, the other workers only train.
- ``"tpu"``: a Cloud TPU (``TPUClusterResolver`` + ``TPUStrategy``); the TPU address comes from
  the environment (``TPU_NAME``) as ``TPUClusterResolver()`` finds it.
"""
import json
import os

import tensorflow as tf

STRATEGIES = frozenset({"default", "mirrored", "multiworker", "tpu"})


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


def make_strategy(name="default"):
    """The ``tf.distribute.Strategy`` called ``name`` (one of ``STRATEGIES``)."""
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
        return tf.distribute.MultiWorkerMirroredStrategy()
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
