"""``GET /assets/server-logo``: the server's logo, public (a sign-in screen shows it).

Served only as one of the accepted raster types (checked again here, for
logos written straight into the stream), sandboxed and with ``nosniff``.
"""

from __future__ import annotations

from chatto.bus.storage import OBJECTS
from chatto.errors import ChattoError
from chatto.http.asgi import Scope, Send, respond, respond_error
from chatto.http.assets import IMAGE_TYPES, SANDBOX
from chatto.server_settings import LOGO_OBJECT
from chatto.services import Services


async def handle_logo(scope: Scope, send: Send, services: Services) -> None:
    logo = services.server_view.logo
    if scope["method"] != "GET" or logo is None or logo[0] not in IMAGE_TYPES:
        await respond_error(send, 404, "NOT_FOUND", "no logo")
        return
    try:
        data = await services.bridge.obj_get(OBJECTS, LOGO_OBJECT)
    except ChattoError:
        data = None
    if data is None:
        await respond_error(send, 404, "NOT_FOUND", "no logo")
        return
    extra = [SANDBOX, (b"cache-control", b"public, max-age=3600")]
    await respond(send, 200, data, logo[0].encode(), extra)
