"""The socket side of a run's service: who may connect, and each connection's stream of frames.

Every admitted peer gets a thread that reads frames and hands each request that decodes to
the service; what a request means is the service's business (service.py). A frame that cannot
be read gets a `Problem` reply and a log line, and never reaches the service; a frame too large
to follow closes that connection alone.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from salal_core.errors import RunNotShared
from salal_core.run.labelers import group_name, user_name
from salal_core.team import endpoint
from salal_core.team.endpoint import Admission, Peer
from salal_core.team.frames import FrameError, FrameTooLarge, read_frame
from salal_core.team.messages import CODEC, Problem, ToClient, ToService


class Client:
    """One connected labeler: its socket, and a lock so that two threads never interleave."""

    def __init__(self, conn: socket.socket, peer: Peer) -> None:
        self.conn, self.peer = conn, peer
        self.labeler = ""  # set by Hello; nothing else is answered before it
        self._lock = threading.Lock()

    def send(self, message: ToClient) -> bool:
        try:
            frame = CODEC.encode(message)
            with self._lock:
                self.conn.sendall(frame)
            return True
        except OSError:
            return False

    def hang_up(self) -> None:
        """Ends the stream: the thread reading it sees the end, and says the client is gone."""
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)


Handle = Callable[[Client, ToService], bool]  # carry out one request; False ends the connection


class Connections:
    """The run's listening socket and one reading thread per admitted peer. `handle` gets each
    request in the order its client sent them; `gone` hears once when a connection ends."""

    def __init__(
        self,
        run_dir: Path,
        admission: Admission,
        handle: Handle,
        gone: Callable[[Client], None],
        log: Callable[[str], None],
    ) -> None:
        self.run_dir, self.admission, self.log = run_dir, admission, log
        self._handle, self._gone = handle, gone
        self._closing = threading.Event()
        self._server: socket.socket | None = None
        self.socket_path: Path | None = None
        group = admission.group_gid
        owner = user_name(admission.owner_uid)
        self._not_shared = str(RunNotShared(owner, None if group is None else group_name(group)))

    def start(self, group: bool = False) -> Path:
        self._server, self.socket_path = endpoint.listen(self.run_dir, group)
        threading.Thread(target=self._accept, name="salal-accept", daemon=True).start()
        return self.socket_path

    def close(self) -> None:
        """No new connections, and the socket and its pointer off the disk."""
        self._closing.set()
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.close()
        if self.socket_path is not None:
            endpoint.remove(self.run_dir, self.socket_path)

    def problem(self, client: Client, reason: str) -> None:
        self.log(f"a bad frame from pid {client.peer.pid}: {reason}")
        client.send(Problem(reason))

    def _accept(self) -> None:
        assert self._server is not None
        while not self._closing.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            peer = endpoint.peer_of(conn)
            if not self.admission.allows(peer):
                self.log(f"refused a connection from uid {peer.uid} (pid {peer.pid})")
                with contextlib.suppress(OSError):
                    conn.sendall(CODEC.encode(Problem(self._not_shared)))
                conn.close()
                continue
            client = Client(conn, peer)
            threading.Thread(
                target=self._serve, args=(client,), name="salal-client", daemon=True
            ).start()

    def _serve(self, client: Client) -> None:
        try:
            while True:
                try:
                    body = read_frame(client.conn)
                except FrameTooLarge as exc:
                    self.problem(client, str(exc))
                    return  # the stream cannot be followed past it
                except OSError:
                    return
                if body is None:
                    return
                try:
                    message = CODEC.decode(body)
                    if not isinstance(message, ToService):
                        raise FrameError(f"{type(message).__name__} is not a request")
                except FrameError as exc:
                    self.problem(client, str(exc))
                    continue
                if not self._handle(client, message):
                    return
        finally:
            self._gone(client)
            with contextlib.suppress(OSError):
                client.conn.close()
