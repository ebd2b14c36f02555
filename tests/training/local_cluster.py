"""Subprocesses for the distributed tests: a localhost cluster of worker processes, the environment.

Strategies need TensorFlow configured before it initialises (logical CPU devices, `TF_CONFIG`),
hence one process per run or worker.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2
TIMEOUT = 240


def environment(**variables):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **variables}


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def run_workers(arguments, tmp_path):
    """Runs `python ARGUMENTS` as each worker of a localhost cluster; returns the finished processes.

    Each worker gets its own TMPDIR, so that a test can check that workers leave nothing there.
    """
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(WORKERS)]}
    processes = []
    for index in range(WORKERS):
        temporary = tmp_path / f"tmp-{index}"
        temporary.mkdir(exist_ok=True)
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(
            subprocess.Popen(
                [sys.executable, *[str(argument).replace("{index}", str(index)) for argument in arguments]],
                cwd=ROOT,
                env=environment(TF_CONFIG=tf_config, TMPDIR=str(temporary)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=TIMEOUT)
            results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return results
