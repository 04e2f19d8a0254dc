"""A test's child process in its own process group (session), its output appended to a log file.

Shared by the verifier's worker harness (tests/verifier/verifier_workers.py) and the fault-injection stack
(tests/faults/faults_stack.py): ``kill()`` SIGKILLs the whole group (a worker's main process and its pool,
mid-job), ``stop()`` asks the group to stop with SIGTERM and kills it if it does not within ``timeout``.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class GroupProcess:
    """``cmd`` started in its own session under ``cwd``, stdout and stderr appended to ``log_path``."""

    #: Seconds ``stop()`` waits for the group after SIGTERM, unless told otherwise.
    stop_timeout_s = 15.0

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT) -> None:
        self.cmd, self.log_path = cmd, log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in kill() / stop()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group at once."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM the group and wait; SIGKILL it when it is still there after ``timeout`` seconds."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=self.stop_timeout_s if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        self._log.close()
