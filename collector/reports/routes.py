"""/report-optout/{token}: the weekly report's own link (and List-Unsubscribe) to stop it for one user."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from collector.recovery.render import render_page
from collector.reports.weekly import load_optout_token
from collector.services import services
from collector.store import users

NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


async def optout(request: Request) -> Response:
    """GET: a confirm button (link scanners follow GETs, so a GET changes nothing). POST: stops the report
    (the button, and RFC 8058 one-click from the mail client)."""
    user_id = load_optout_token(services(request).signer, request.path_params["token"])
    if user_id is None:
        return HTMLResponse(render_page("This link is not valid", "The link is broken or too old."), 404, NO_STORE)
    db = services(request).store.db
    if request.method == "POST":
        if not await users.set_weekly_report(db, user_id, False):
            return HTMLResponse(render_page("This link is not valid", "No such user."), 404, NO_STORE)
        return HTMLResponse(render_page("Weekly report stopped", "You will get no more weekly reports."), 200, NO_STORE)
    page = render_page(
        "Stop the weekly report",
        "Stop the Cartback weekly report email?",
        form_action=request.url.path,
        button="Stop it",
    )
    return HTMLResponse(page, 200, NO_STORE)


routes = [Route("/report-optout/{token}", optout, methods=["GET", "POST"])]
