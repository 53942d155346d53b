"""A serial printer for tests: a pseudo-terminal pair whose far end is a simulated
printer on 127.0.0.1.

The agent opens the pty's slave side (``/dev/pts/N``) with pyserial like any
serial port; a thread copies bytes between the master side and the simulator's
TCP socket. Like a real serial printer, it only understands the line at its own
baud rate: at any other rate (read from the pty's termios settings, which
pyserial sets) every byte is garbled both ways.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import termios
import threading
import tty

#: termios speed constants by baud rate.
SPEEDS = {
    9600: termios.B9600,
    19200: termios.B19200,
    38400: termios.B38400,
    115200: termios.B115200,
}


class PtyPrinterBridge:
    def __init__(self, sim_port: int, *, baudrate: int = 19200, garble_out: bool = True) -> None:
        self.baudrate = baudrate
        #: False: the printer still makes out what it is sent, only its answers are
        #: noise (some printers autodetect the host's rate but not for their replies).
        self.garble_out = garble_out
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo and no line discipline before pyserial opens it
        self.path = os.ttyname(self.slave)
        self.sock = socket.create_connection(("127.0.0.1", sim_port), timeout=2)
        self.sock.settimeout(None)
        self.garbled = 0
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="pty-bridge", daemon=True)
        self._thread.start()

    def _in_sync(self) -> bool:
        return termios.tcgetattr(self.master)[5] == SPEEDS[self.baudrate]

    def _run(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self.master, self.sock, self._stop_r], [], [])
                if self._stop_r in ready:
                    return
                if self.master in ready:
                    try:
                        data = os.read(self.master, 4096)
                    except OSError:
                        data = b""  # no one has the slave open right now
                    if data:
                        if self.garble_out and not self._in_sync():
                            self.garbled += len(data)
                            data = bytes(b ^ 0x55 for b in data)
                        self.sock.sendall(data)
                if self.sock in ready:
                    data = self.sock.recv(4096)
                    if not data:
                        return
                    if not self._in_sync():
                        data = bytes(b ^ 0xFF for b in data)
                    os.write(self.master, data)
        except OSError:
            return

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(2)
        for fd in (self.master, self.slave, self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.sock.close()
