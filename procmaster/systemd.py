"""sd_notify, written by hand: the master telling systemd how it is doing.

Theory of operation
-------------------
systemd (``Type=notify``) passes ``NOTIFY_SOCKET``: a unix datagram socket, a path
or an abstract name (``@name``). Each message is one datagram of ``KEY=VALUE``
lines. The master calls ``ready`` once every worker accepts (again after each
reload: a full reload re-executes the master with the same pid, and the new image
says ``READY=1`` when its workers are up), ``reloading`` when a reload starts
(``RELOADING=1`` with ``MONOTONIC_USEC``, as ``Type=notify-reload`` wants),
``stopping`` on shutdown. With ``WATCHDOG_USEC`` set (for this pid, when
``WATCHDOG_PID`` says which), ``deadline`` is one more deadline for the master's
selector (half the watchdog interval) and ``tick`` pings when it is due: no thread,
so a master loop that hangs stops pinging and systemd notices.

Without ``NOTIFY_SOCKET`` every call does nothing. Sending never blocks and never
raises: systemd being gone must not stop the master.

Must not know: workers, reloads or sockets beyond the text it is given.
"""

from __future__ import annotations

import os
import socket
import time

__all__ = ["Notifier"]


class Notifier:
    def __init__(self, environ: dict | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or ""
        self.address: str | None = None
        if address.startswith("@"):
            self.address = "\0" + address[1:]
        elif address.startswith("/"):
            self.address = address
        self.sock: socket.socket | None = None
        if self.address:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self.sock.setblocking(False)
            except OSError:
                self.sock = None
        self.interval = 0.0
        usec = env.get("WATCHDOG_USEC", "")
        wpid = env.get("WATCHDOG_PID", "")
        if self.sock and usec.isdigit() and int(usec) > 0 and wpid in ("", str(os.getpid())):
            self.interval = int(usec) / 1e6 / 2
        self.next_ping = time.monotonic() + self.interval if self.interval else 0.0
        self.is_ready = False  # READY=1 sent and no reload/stop since

    @property
    def enabled(self) -> bool:
        return self.sock is not None

    def send(self, message: str) -> bool:
        if self.sock is None:
            return False
        try:
            self.sock.sendto(message.encode(), self.address)
            return True
        except OSError:
            return False

    def ready(self, status: str) -> None:
        if not self.is_ready:
            self.is_ready = True
            self.send(f"READY=1\nSTATUS={status}\nMAINPID={os.getpid()}")

    def reloading(self, status: str) -> None:
        self.is_ready = False
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send(f"RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS={status}")

    def stopping(self, status: str) -> None:
        self.is_ready = False
        self.send(f"STOPPING=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def deadline(self) -> float | None:
        """When the next watchdog ping is due (monotonic), or None."""
        return self.next_ping if self.interval else None

    def tick(self, status) -> None:
        """Called by the master's loop after each wake-up: ping if due.
        ``status`` is a callable, so the line is built only when sent."""
        if self.interval and time.monotonic() >= self.next_ping:
            self.next_ping = time.monotonic() + self.interval
            self.send(f"WATCHDOG=1\nSTATUS={status()}")
