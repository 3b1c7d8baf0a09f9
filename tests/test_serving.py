"""d2lmini.serving: the HTTP predictor answers real test images and refuses bad input."""

import http.client
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import d2lmini
from d2lmini.serving import MAX_BODY


def _png(pixels, mode="L"):
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8), mode=mode).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An exported LeNet with seeded random weights (the test checks the plumbing)."""
    torch.manual_seed(0)
    net = d2lmini.lenet(torch.nn.ReLU, torch.nn.MaxPool2d).eval()
    path = d2lmini.export_onnx(net, tmp_path_factory.mktemp("model") / "lenet.onnx")
    return net, path


@pytest.fixture(scope="module")
def server(model):
    srv = d2lmini.make_server(model[1], port=0)
    assert srv.server_address[0] == "127.0.0.1"
    with d2lmini.running(srv):
        yield srv.server_address[1]


def _request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_real_test_images_get_the_eager_models_answers(model, server):
    net, _ = model
    images, _ = d2lmini.read_fashion_mnist("test")
    with torch.no_grad():
        logits = net(images[:40].unsqueeze(1).float() / 255)
    expected = logits.softmax(1)
    labels = d2lmini.get_fashion_mnist_labels(range(10))
    for i in range(40):
        status, answer = _request(server, "POST", "/predict", _png(images[i].numpy()))
        assert status == 200, answer
        k = int(logits[i].argmax())
        assert answer["class"] == k and answer["label"] == labels[k]
        np.testing.assert_allclose(answer["probabilities"], expected[i], atol=1e-4)


@pytest.mark.parametrize("body, status, words", [
    (b"", 400, "empty"),
    (b"GIF89a not a png at all", 415, "not a PNG"),
    (_png(np.zeros((32, 32))), 422, "28x28"),
    (_png(np.zeros((28, 28, 3)), mode="RGB"), 422, "mode L"),
    (_png(np.zeros((28, 28)))[:40], 400, "cannot decode"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, 400, "cannot decode"),
    (b"x" * (MAX_BODY + 1), 413, "over the limit"),
])  # fmt: skip
def test_bad_input_gets_a_clear_4xx_json_error_and_the_server_keeps_serving(
    server, body, status, words
):
    got, answer = _request(server, "POST", "/predict", body)
    assert got == status and words in answer["error"], answer
    assert _request(server, "GET", "/health") == (200, {"status": "ok"})
    ok, _ = _request(server, "POST", "/predict", _png(np.zeros((28, 28))))
    assert ok == 200


def test_huge_declared_body_is_refused_before_it_is_read(server):
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    conn.putrequest("POST", "/predict")
    conn.putheader("Content-Length", str(10**9))  # and never send it
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and "over the limit" in json.loads(response.read())["error"]
    conn.close()


def test_wrong_endpoints_and_methods(server):
    assert _request(server, "GET", "/predict")[0] == 405
    assert _request(server, "GET", "/nothing")[0] == 404
    assert _request(server, "POST", "/other", b"x")[0] == 404


def test_decode_png_matches_the_training_pipeline_bit_for_bit():
    images, labels = d2lmini.read_fashion_mnist("test")
    X, _ = next(iter(d2lmini.FashionMNISTBatches(images[:3], labels[:3], 3)))
    spec = d2lmini.preprocessing_spec()
    for i in range(3):
        x = d2lmini.decode_png(_png(images[i].numpy()), spec)
        assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
        assert np.array_equal(x[0], X[i].numpy())


def test_command_line_serves_a_bounded_number_of_requests(model):
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "d2lmini.serve_onnx",
            str(model[1]),
            "--port",
            "0",
            "--max-requests",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        for _ in range(2):
            assert _request(port, "GET", "/health")[0] == 200
        assert proc.wait(timeout=30) == 0  # it stopped by itself
        assert "Warning" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
