"""The channels' API documentation (Swagger UI), served from the project under its own CSP.

Litestar's Swagger page loads Swagger UI from a CDN and starts it with an inline script; the
panel's CSP allows neither, so the page was blank. Here the assets come from the npm package
``swagger-ui-dist`` (installed by ``npm ci``) and the start-up script from /static.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

SWAGGER_UI_DIR = Path(__file__).resolve().parent.parent / "node_modules" / "swagger-ui-dist"
ASSETS = "/schema/assets"
_MISSING = (
    "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>API documentation"
    "</title></head><body><h1>API documentation</h1><p>The documentation's assets are not "
    "installed. Run <code>npm ci</code> in the project (./dev setup does), or read the "
    "schema at <a href='/schema/openapi.json'>/schema/openapi.json</a>.</p></body></html>"
)


class SwaggerUnderCsp(OpenAPIRenderPlugin):
    def __init__(self, path: str = "/swagger", assets_dir: Path = SWAGGER_UI_DIR) -> None:
        super().__init__(path=path)
        self._assets_dir = assets_dir

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if not (self._assets_dir / "swagger-ui-bundle.js").is_file():
            return _MISSING.encode()
        title = escape(str(openapi_schema.get("info", {}).get("title", "API")))
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-spec-url="{escape(self.get_openapi_json_route(request))}"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/static/js/api-docs.js"></script>
</body>
</html>""".encode()

    def receive_router(self, router: Router) -> None:
        if self._assets_dir.is_dir():
            router.register(
                create_static_files_router(
                    path="/assets", directories=[self._assets_dir], include_in_schema=False
                )
            )
