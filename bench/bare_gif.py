"""The baseline for bench/edge.py: a bare ASGI app answering the same 43-byte GIF."""

import base64

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
HEADERS = [(b"content-type", b"image/gif"), (b"content-length", b"43"),
           (b"cache-control", b"no-store, no-cache, must-revalidate, max-age=0")]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": GIF})
