"""A minimal HTTP predictor for an ONNX image classifier (Part VI, "Serving it").

:func:`make_server` loads an ONNX file written by :func:`~d2lmini.export_onnx` and the
preprocessing stored next to it, and answers ``POST /predict`` with a PNG image in the
body by JSON ``{"class": 3, "label": "dress", "probabilities": [...]}``. ``GET /health``
answers ``{"status": "ok"}``. Bad input gets a 4xx status and a JSON body
``{"error": "..."}`` and the server keeps serving. Only the standard library's
``http.server``, Pillow and ONNX Runtime are used. Run it from a shell with
``python -m d2lmini.serve_onnx MODEL.onnx [--port 8000] [--max-requests N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import numpy as np

__all__ = ["BadInput", "Predictor", "decode_png", "make_server", "running"]

#: Largest request body accepted, in bytes (a 28×28 PNG takes well under 1 KiB).
MAX_BODY = 64 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class BadInput(ValueError):
    """A request the predictor refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode_png(data: bytes, spec: dict[str, Any]) -> np.ndarray:
    """Turn the bytes of a PNG into the network's input, as ``spec`` describes it.

    Checks, in this order: the body is not empty (400), it is a PNG (415), it decodes
    (400), its mode and size are the spec's (422; checked before the pixels are
    decoded, so a tiny file that claims a huge image costs nothing). The pixels are
    divided by ``spec["divide_by"]`` in float32, exactly as in training.

    :returns: a float32 array of shape (1, 1, height, width).
    :raises BadInput: with the HTTP status and a message saying what is wrong.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadInput(400, "empty body: send the PNG image as the request body")
    if not data.startswith(PNG_SIGNATURE):
        raise BadInput(415, "not a PNG image (the body lacks the PNG signature)")
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
    except Image.DecompressionBombError as err:
        raise BadInput(422, f"image too large: {err}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise BadInput(400, f"cannot decode the PNG: {err}") from None
    size, expected = image.size, (spec["width"], spec["height"])
    if image.mode != spec["image_mode"] or size != expected:
        raise BadInput(422, (
            f"expected a {expected[0]}x{expected[1]} image in mode {spec['image_mode']} "
            f"(8-bit grayscale), got {size[0]}x{size[1]} in mode {image.mode}"
        ))  # fmt: skip
    try:
        pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise BadInput(400, f"cannot decode the PNG: {err}") from None
    x = pixels.astype(np.float32) / np.float32(spec["divide_by"])
    return x.reshape(1, 1, spec["height"], spec["width"])


class Predictor:
    """An ONNX Runtime session and the preprocessing stored next to the model.

    :param model_path: an ONNX file; its preprocessing is read from the ``.json`` file of
        the same name (see :func:`~d2lmini.export_onnx`).
    :param threads: ONNX Runtime's intra-op threads (default: its own choice).
    """

    def __init__(self, model_path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        spec_path = Path(model_path).with_suffix(".json")
        self.spec: dict[str, Any] = json.loads(spec_path.read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """The logits for a float32 batch of shape (N, 1, height, width)."""
        return self.session.run([self.spec["output_name"]], {self.spec["input_name"]: batch})[0]

    def classify(self, data: bytes) -> dict[str, Any]:
        """Classify one PNG: ``{"class", "label", "probabilities"}``.

        :raises BadInput: for a body that is not a suitable PNG (see :func:`decode_png`).
        """
        logits = self.logits(decode_png(data, self.spec))[0].astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        k = int(logits.argmax())
        return {"class": k, "label": self.spec["labels"][k],
                "probabilities": [round(float(p), 6) for p in probs]}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    server: _PredictorServer
    timeout = 10  # seconds a client may take to send its request

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise BadInput(411, "send a Content-Length header, not a chunked body")
        length = self.headers.get("Content-Length")
        if length is None:
            raise BadInput(411, "a Content-Length header is required")
        try:
            size = int(length)
        except ValueError:
            raise BadInput(400, f"Content-Length is not a number: {length!r}") from None
        if size < 0:
            raise BadInput(400, f"Content-Length is negative: {size}")
        if size > self.server.max_body:
            self.close_connection = True  # the unread body must not be parsed next
            raise BadInput(413, f"body of {size} bytes is over the limit of "
                                f"{self.server.max_body} bytes")  # fmt: skip
        return self.rfile.read(size)

    def do_POST(self) -> None:  # the name http.server calls
        try:
            if self.path != "/predict":
                raise BadInput(404, f"no such endpoint {self.path}; POST to /predict")
            body = self._read_body()
            self._answer(200, self.server.predictor.classify(body))
        except BadInput as err:
            self._answer(err.status, {"error": str(err)})

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, {"status": "ok"})
        elif self.path == "/predict":
            self._answer(405, {"error": "use POST with a PNG image as the body"})
        else:
            self._answer(404, {"error": f"no such endpoint {self.path}"})

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log:
            super().log_message(format, *args)


class _PredictorServer(ThreadingHTTPServer):
    daemon_threads = True
    predictor: Predictor
    max_body: int
    log: bool


def make_server(
    model_path: str | Path, host: str = "127.0.0.1", port: int = 0,
    max_body: int = MAX_BODY, threads: int | None = None, log: bool = False,
) -> ThreadingHTTPServer:  # fmt: skip
    """An HTTP server for the ONNX classifier at ``model_path`` (not started yet).

    It binds to ``host`` (loopback by default: only this machine can connect) and
    ``port`` (0: a free port, read it from ``server.server_address``). Call
    ``serve_forever()``, or use :func:`running`. Bodies over ``max_body`` bytes are
    refused with 413 before they are read; a missing Content-Length gets 411.

    :param log: print one line per request to stderr, as ``http.server`` does.
    """
    server = _PredictorServer((host, port), _Handler)
    server.predictor = Predictor(model_path, threads=threads)
    server.max_body, server.log = max_body, log
    return server


@contextlib.contextmanager
def running(server: ThreadingHTTPServer) -> Iterator[str]:
    """Serve ``server`` in a background thread; yield its base URL; stop it on exit."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = cast(tuple[str, int], server.server_address[:2])
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def main(argv: list[str] | None = None) -> None:
    """Command line: serve a model until Ctrl+C, or for ``--max-requests`` requests."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an ONNX file written by d2lmini.export_onnx")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-requests", type=int, default=None)
    args = parser.parse_args(argv)
    server = make_server(args.model, args.host, args.port, log=True)
    server.daemon_threads = False  # server_close() waits for answers still being sent
    print(f"serving {args.model} on http://{args.host}:{server.server_address[1]}", flush=True)
    with server:
        if args.max_requests is None:
            server.serve_forever()
        for _ in range(args.max_requests or 0):
            server.handle_request()
