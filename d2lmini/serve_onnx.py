"""Command line of the HTTP predictor: ``python -m d2lmini.serve_onnx MODEL.onnx``.

See :func:`d2lmini.serving.main` for the options (``--host``, ``--port``,
``--max-requests``) and :mod:`d2lmini.serving` for the protocol.
"""

from d2lmini.serving import main

if __name__ == "__main__":
    main()
