"""Static files, each under a name with its content's hash: cached for a year by browsers.

``asset("app.css")`` in a template gives ``/static/app.3f1c9a0b2e.css``; a new release changes
the name, so nothing stale is ever served from a browser's cache. The plain name still answers
(for anything that links it by hand), with ``no-cache`` so that it is revalidated. The files are
few and small: read once, when the app is made, and served from memory.

Written here rather than with Litestar's static files router, whose cache headers are one
setting for every name of a directory.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from app.settings import PROJECT_ROOT

STATIC = PROJECT_ROOT / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class Asset:
    content: bytes
    media_type: str
    etag: str
    cache_control: str


class Assets:
    def __init__(self, folder: Path = STATIC) -> None:
        self._urls: dict[str, str] = {}
        self._files: dict[str, Asset] = {}
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            content = path.read_bytes()
            digest = hashlib.sha256(content).hexdigest()[:10]
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media_type.startswith("text/") or media_type in ("application/javascript", "image/svg+xml"):
                media_type += "; charset=utf-8"
            hashed = f"{path.stem}.{digest}{path.suffix}"
            self._urls[path.name] = f"/static/{hashed}"
            self._files[hashed] = Asset(content, media_type, f'"{digest}"', IMMUTABLE)
            self._files[path.name] = Asset(content, media_type, f'"{digest}"', REVALIDATE)

    def url(self, name: str) -> str:
        """The address of static file ``name`` (which must exist: a typo fails the page test)."""
        return self._urls[name]

    def response(self, name: str, if_none_match: str | None) -> Response[bytes]:
        asset = self._files.get(name)
        if asset is None:
            raise NotFoundException(f"no static file '{name}'")
        headers = {"Cache-Control": asset.cache_control, "ETag": asset.etag}
        if if_none_match == asset.etag:
            return Response(b"", status_code=304, headers=headers)
        return Response(asset.content, media_type=asset.media_type, headers=headers)


def _assets(request: Request[Any, Any, Any]) -> Assets:
    assets: Assets = request.app.state.assets
    return assets


@get("/static/{name:str}", name="static", sync_to_thread=False)
def static_file(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    return _assets(request).response(name, request.headers.get("if-none-match"))


@get("/favicon.ico", name="favicon", sync_to_thread=False)
def favicon(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Browsers ask for it whatever the page links; the pages link the SVG icon."""
    return _assets(request).response("favicon.svg", request.headers.get("if-none-match"))


routes = [static_file, favicon]
