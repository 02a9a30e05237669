"""Ctrl-C while training: the first press asks the loop to stop after the current step
(the state is then consistent and is saved); a second press aborts at once."""

from __future__ import annotations

import signal
import threading


class CtrlC:
    """``with CtrlC(log) as ctrl_c:`` routes SIGINT here; ``ctrl_c.requested`` says whether it was pressed.

    The previous handler comes back at the block's end. Only the main thread
    can set handlers, and an ignored SIGINT (a shell's background job) stays ignored.
    """

    def __init__(self, log):
        self._log = log
        self.requested = False
        self._old = None

    def __enter__(self) -> "CtrlC":
        self.requested = False
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            self._old = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None

    def _on_sigint(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt  # second press: abort now
        self.requested = True
        self._log("Ctrl-C: stopping after this step and saving a checkpoint (press again to abort at once)")
