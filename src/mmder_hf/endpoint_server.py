"""Serve a saved model folder's ``handler.py`` on this machine as Inference Endpoints serve a custom handler.

What the Inference Toolkit (``webservice_starlette``) does with a repository that holds a ``handler.py``: import it,
build ``EndpointHandler(folder)`` once at start-up, answer ``GET /health`` with ``Ok``, pass every JSON body of a
``POST /`` to the handler, and answer any exception with HTTP 400 ``{"error": "<message>"}``. The
``hf-endpoints-emulator`` package did this, but its last release (0.1.1) no longer starts with Starlette 1.x.

This file imports only the standard library, Starlette and uvicorn (never ``mmder_hf``), so it also runs by path in
an environment that holds nothing but the folder's ``requirements.txt``::

    python -m mmder_hf.endpoint_server runs/demo/fslf --port 5000
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
from typing import Any, Optional, Sequence


def load_handler(folder: str) -> Any:
    """``handler.EndpointHandler(folder)`` from ``folder/handler.py``, imported as the toolkit imports it."""
    path = os.path.join(folder, "handler.py")
    if not os.path.isfile(path):
        raise SystemExit(f"endpoint_server: error: {path}: no such file (pass a folder saved by save_pretrained)")
    spec = importlib.util.spec_from_file_location("handler", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.abspath(folder))
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.EndpointHandler(folder)


def make_app(folder: str) -> Any:
    """The Starlette app: ``GET /`` and ``/health`` -> ``Ok``; ``POST /`` and ``/predict`` -> the handler's answer."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["handler"] = load_handler(folder)
        yield

    async def health(request):
        return PlainTextResponse("Ok")

    async def predict(request):
        try:
            if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                raise ValueError("send the request as JSON (Content-Type: application/json)")
            body = json.loads(await request.body())
            if not isinstance(body, dict) or ("inputs" not in body and "instances" not in body):
                raise ValueError(f'the body needs an "inputs" key, received: {json.dumps(body)[:200]}')
            return JSONResponse(state["handler"](body))
        except Exception as error:  # the toolkit answers every failure of a request this way
            return JSONResponse({"error": str(error)}, status_code=400)

    routes = [
        Route("/", health, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/", predict, methods=["POST"]),
        Route("/predict", predict, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mmder_hf.endpoint_server",
        description="Serve a saved model folder's handler.py locally, as Inference Endpoints serve it.",
    )
    parser.add_argument("folder", help="a folder saved by save_pretrained (it holds handler.py and requirements.txt)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.folder, "handler.py")):
        parser.error(f"{args.folder}: no handler.py there (pass a folder saved by save_pretrained)")
    import uvicorn

    uvicorn.run(make_app(args.folder), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
