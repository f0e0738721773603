"""The baseline of bench/rush.py: a bare Starlette endpoint that streams a body to disk.

What any upload endpoint must do at the least: read the body as it arrives, hash it with
SHA-256, write it to a file, fsync, answer the digest. Served by uvicorn with the same
defaults as `bidding serve`, so the difference to the platform is the platform's own work
(authentication, the age header check, the database, the receipt, the blob store).
"""

import argparse
import hashlib
import os
import tempfile
from pathlib import Path

import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def create_app(folder: Path) -> Starlette:
    """The app: POST /upload stores a body in `folder`, GET /health answers when ready."""

    async def upload(request: Request) -> JSONResponse:
        fd, _ = tempfile.mkstemp(dir=folder, suffix=".part")
        digest = hashlib.sha256()
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            await anyio.to_thread.run_sync(os.fsync, fd)
        finally:
            os.close(fd)
        return JSONResponse({"sha256": digest.hexdigest(), "size": size}, status_code=201)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/upload", upload, methods=["POST"]), Route("/health", health)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True, help="where uploads are written")
    args = parser.parse_args()
    uvicorn.run(create_app(args.folder), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
