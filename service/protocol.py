"""The HTTP/1.1 protocol the services run under (``uvicorn --http service.protocol:BoundedHead``):
uvicorn's httptools protocol with a bound on the head of a request.

httptools puts no limit on a request line or header: it keeps every byte until the head ends,
and the token gate and the body limits (``service.intake``) act only once it has. A client without
the token could make a service hold a 100 MB header (measured: 50 MB taken in before the 401).
``BoundedHead`` feeds the parser at most ``MAX_HEAD_BYTES`` of a head; a head not complete by
then is answered 431 and its connection closed, the rest never read.

Why not h11 (``--http h11 --h11-max-incomplete-event-size``, the same bound, a 400): measured, it
costs 0.08 to 0.15 ms more CPU per request than httptools (+45 to 60 %), this class none that
shows (docs/operations.md, "Request heads").
"""

import logging

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
"""The most a request line and its headers may take, blank line included. Tornado's default (the
dashboard's server) and 4 × h11's: an 8 KB bearer token and an 8 KB cookie pass with room to
spare; nginx in front refuses above 32 KB anyway (4 buffers of 8 KB). What an unauthenticated
connection can make a service hold until it is refused."""

REFUSAL = b"request head too large: its request line and headers exceed %d bytes\n"

log = logging.getLogger("uvicorn.error")


class BoundedHead(HttpToolsProtocol):
    """``HttpToolsProtocol`` that answers 431 (and closes the connection) for a request whose
    head does not end within ``max_head_bytes``.

    A head is counted from the first byte read after the previous request ended: exactly, but
    for a head that starts in the same read as that end (pipelined requests), which may pass
    the bound by up to that read (256 KB at most) before it is refused.
    """

    max_head_bytes = MAX_HEAD_BYTES
    in_head = True  # a new connection's first bytes are a head
    head_bytes = 0

    def on_headers_complete(self) -> None:
        self.in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head, self.head_bytes = True, 0  # what comes next is the next request's head

    def data_received(self, data: bytes) -> None:
        # In a head, the parser gets no more than its bound's room; the rest of a read is fed
        # once the head has ended (a body, or the next request of a pipeline).
        while self.in_head and data:
            room = self.max_head_bytes - self.head_bytes
            piece, data = data[:room], data[room:]
            self.head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # answered 400 by uvicorn, or upgraded
            if self.in_head and self.head_bytes >= self.max_head_bytes:
                self.refuse_head()
                return
        if data:
            super().data_received(data)

    def refuse_head(self) -> None:
        """431 and the connection closed: the client is told, nothing more of it is read."""
        log.warning("Request head over %d bytes: answered 431.", self.max_head_bytes)
        body = REFUSAL % self.max_head_bytes
        head = [STATUS_LINE[431]]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
