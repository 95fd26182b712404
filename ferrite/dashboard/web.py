"""The dashboard's routes, mounted on the edge's Quart app by `register`.

Every route is declared with an access rule (`route(..., access=...)`) that the wrapper
enforces before the view runs, and that `app.extensions["ferrite_access"]` lists, so a test
can prove no route lacks a decision. Reads go through the stats engine only."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import logging
import secrets
import zipfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any
from urllib.parse import quote

import trio
from quart import Blueprint, Response, g, redirect, render_template, request
from quart_trio import QuartTrio

from ferrite.accounts import passwords, service
from ferrite.accounts.store import AccountStore, Share, token_hash
from ferrite.core.config import Config
from ferrite.core.metrics import Metrics
from ferrite.core.sites import sites_of
from ferrite.core.urls import site_name
from ferrite.dashboard import assets, report
from ferrite.dashboard.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SHARE_COOKIE,
    Keys,
    Principal,
    cookie_options,
)
from ferrite.dashboard.throttle import Throttle
from ferrite.dashboard.view import (
    COMPARISONS,
    INTERVALS,
    METRICS,
    PERIODS,
    ViewError,
    filter_label,
    parse_view,
)
from ferrite.stats import keys as api_keys
from ferrite.stats.command import spreadsheet_safe
from ferrite.stats.engine import Answer, Engine
from ferrite.stats.model import QueryError
from ferrite.stats.store import QueryTimeout, StatsStore, StoreUnavailable

LOG = logging.getLogger("ferrite.dashboard")
ACCESS = ("public", "user", "site", "admin", "share")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
                    "Cross-Origin-Opener-Policy": "same-origin"}


class Refusal(Exception):
    """An answer instead of the page: a redirect to the login, or an error page."""

    def __init__(self, status: int, message: str = "", location: str | None = None) -> None:
        super().__init__(message)
        self.status, self.location = status, location


def register(app: QuartTrio, config: Config, stats: StatsStore, accounts: AccountStore,
             metrics: Metrics, client_ip: Callable[..., str | None]) -> None:
    settings = config.dashboard
    sites = sites_of(config)
    engine = Engine(config, stats)
    budget = max(1.0, min(config.stats.query_timeout_seconds, config.edge.read_timeout - 1.5))
    threads = trio.CapacityLimiter(config.stats.query_threads)
    throttle = Throttle(settings.login_attempts, settings.client_login_attempts,
                        settings.login_window_minutes * 60)
    trusted = list(config.edge.trusted_proxies)
    access: dict[str, str] = app.extensions.setdefault("ferrite_access", {})
    state: dict[str, Keys] = {}
    bp = Blueprint("dashboard", __name__, template_folder="templates")
    static = assets.Assets()

    async def blocking(fn: Callable[[], Any]) -> Any:
        return await trio.to_thread.run_sync(fn, limiter=threads, abandon_on_cancel=True)

    async def keys() -> Keys:
        if "keys" not in state:
            secret = await blocking(lambda: accounts.secret("dashboard"))
            state["keys"] = Keys(secret, settings.session_hours * 3600)
        return state["keys"]

    def peer_trusted() -> bool:
        try:
            peer = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            return False
        return any(peer.version == net.version and peer in net for net in trusted)

    def secure() -> bool:
        if settings.secure_cookies == "always" or request.scheme == "https":
            return True
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return proto == "https" and peer_trusted()

    def client() -> str:
        headers = {k.lower(): v for k, v in request.headers.items()}
        address = client_ip(peer=request.remote_addr or "", headers=headers) or ""
        return throttle.client_key(address or request.remote_addr or "")

    # --- the access wrapper -----------------------------------------------------------

    async def principal() -> Principal | None:
        k = await keys()
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        return await blocking(lambda: k.session_user(accounts, cookie))

    async def share_principal(token: str) -> Principal:
        share = await blocking(lambda: accounts.find_share(token_hash(token)))
        if share is None or share.revoked is not None or len(token) > 200:
            raise Refusal(404, "This shared link does not exist or was revoked.")
        if share.password_hash:
            k = await keys()
            if not k.share_pass_ok(share, request.cookies.get(SHARE_COOKIE)):
                raise Refusal(401, "password", None)
        return Principal(share=share)

    def route(rule: str, rule_access: str, methods: tuple[str, ...] = ("GET",)
              ) -> Callable[[Callable[..., Awaitable[Any]]], Any]:
        assert rule_access in ACCESS

        def decorate(view: Callable[..., Awaitable[Any]]) -> Any:
            @wraps(view)
            async def guarded(**kwargs: Any) -> Response:
                try:
                    if request.method == "POST":
                        await check_csrf()
                    who: Principal | None = None
                    if rule_access == "share":
                        who = await share_principal(kwargs["token"])
                    elif rule_access != "public":
                        who = await principal()
                        if who is None:
                            raise Refusal(302, location="/login?next=" + quote(
                                request.full_path.rstrip("?"), safe="/?=&"))
                        if rule_access == "admin" and not who.admin:
                            raise Refusal(403, "Only admins may open this page.")
                        if "site" in kwargs:
                            site = site_name(kwargs["site"])
                            if not who.can_read(site):
                                raise Refusal(403, f"You have no access to {site}.")
                            if sites.limited and site not in sites.zones:
                                raise Refusal(404, f"{site} is not one of this node's sites "
                                              f"([sites] in the config).")
                    result = await view(who, **kwargs)
                except Refusal as refusal:
                    result = await refused(refusal, kwargs)
                except ViewError as exc:
                    metrics.inc("rejected", reason="dashboard_bad_view")
                    result = await page("message.html", 400, title="Cannot show this view",
                                        message=f"{exc.field}: {exc}")
                except QueryError as exc:
                    metrics.inc("rejected", reason="dashboard_bad_view")
                    result = await page("message.html", 400, title="Cannot show this view",
                                        message=f"{exc.field}: {exc}")
                except QueryTimeout:
                    metrics.inc("rejected", reason="stats_timeout")
                    result = await page("message.html", 503, title="Too slow",
                                        message="The numbers took too long to count; choose "
                                        "a shorter period or fewer filters.")
                except StoreUnavailable:
                    metrics.inc("rejected", reason="store_unavailable")
                    result = await page("message.html", 503, title="Store unavailable",
                                        message="The database cannot be reached right now; "
                                        "try again in a moment.")
                response = result if isinstance(result, Response) else Response(result)
                return await finish(response)
            guarded.__name__ = view.__name__
            bp.route(rule, methods=list(methods))(guarded)
            access[f"dashboard.{view.__name__}"] = rule_access
            return guarded
        return decorate

    async def refused(refusal: Refusal, kwargs: dict[str, Any]) -> Response:
        if refusal.location:
            return redirect(refusal.location)
        if refusal.status == 401 and str(refusal) == "password":
            return await page("share_password.html", 401, token=kwargs.get("token"),
                              error="")
        metrics.inc("rejected", reason=f"dashboard_{refusal.status}")
        return await page("message.html", refusal.status, title="Not available",
                          message=str(refusal))

    async def check_csrf() -> None:
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin.rstrip("/") != request.host_url.rstrip("/"):
            metrics.inc("rejected", reason="dashboard_csrf")
            raise Refusal(403, "This form was sent from another site.")
        form = await request.form
        if not (await keys()).csrf_ok(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
            metrics.inc("rejected", reason="dashboard_csrf")
            raise Refusal(403, "The form expired; go back, reload the page and send it again.")

    async def finish(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", "no-store")
        pending = g.get("ferrite_csrf")
        if pending:
            response.set_cookie(CSRF_COOKIE, pending, **cookie_options(secure()))
        return response

    async def page(template: str, status: int = 200, **context: Any) -> Response:
        cookie = request.cookies.get(CSRF_COOKIE)
        if not cookie:
            cookie = g.ferrite_csrf = secrets.token_urlsafe(24)
        k = await keys()
        html = await render_template(template, csrf=k.csrf_token(cookie), asset=static.url,
                                     **context)
        return Response(html, status=status, mimetype="text/html")

    def site_list(who: Principal) -> list[str]:
        names = sites.names() if sites.limited else \
            list(dict.fromkeys([*sites.names(), *stats.sites()]))
        return [s for s in names if who.can_read(s)]

    # --- static files -----------------------------------------------------------------

    @bp.route("/dashboard/static/<name>")
    async def asset(name: str) -> Response:
        found = static.get(name)
        if found is None:
            return Response("not found", status=404, mimetype="text/plain")
        body, mimetype, etag = found
        gzip = "gzip" in request.headers.get("Accept-Encoding", "")
        response = Response(static.gzipped(name) if gzip else body, mimetype=mimetype)
        if gzip:
            response.headers["Content-Encoding"] = "gzip"
        response.headers["Vary"] = "Accept-Encoding"
        response.set_etag(etag)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    access["dashboard.asset"] = "public"

    # --- login, logout, setup ---------------------------------------------------------

    def safe_next(target: str | None) -> str:
        if target and target.startswith("/") and not target.startswith("//") \
                and "\\" not in target:
            return target
        return "/dashboard/"

    @route("/login", "public", ("GET", "POST"))
    async def login(who: Principal | None) -> Response:
        next_url = safe_next(request.args.get("next"))
        if request.method == "GET":
            if await principal() is not None:  # already logged in: go where they meant to
                return redirect(next_url)
            first_run = await blocking(accounts.count_users) == 0
            return await page("login.html", next=next_url, error="", email="",
                              first_run=first_run)
        form = await request.form
        email = (form.get("email") or "").strip()[:320]
        password = form.get("password") or ""
        from_client = client()
        wait = throttle.wait(email, from_client)
        if wait:
            metrics.inc("rejected", reason="dashboard_login_throttled")
            response = await page("login.html", 429, next=next_url, email=email,
                                  error=f"Too many failed logins; try again in {wait} s.")
            response.headers["Retry-After"] = str(wait)
            return response
        user = await blocking(lambda: accounts.find_user(email))
        ok = await blocking(lambda: passwords.verify(user.password_hash if user else None,
                                                     password))
        if not ok or user is None:
            throttle.failed(email, from_client)
            metrics.inc("rejected", reason="dashboard_login_failed")
            return await page("login.html", 401, next=next_url, email=email,
                              error="Wrong email or password.")
        throttle.succeeded(email)
        return await logged_in(user, next_url)

    async def logged_in(user: Any, next_url: str) -> Response:
        k = await keys()
        cookie, _ = await blocking(lambda: k.start_session(accounts, user))
        await blocking(lambda: accounts.purge_sessions(datetime.now(UTC)))  # forget stale
        response = redirect(next_url)
        response.set_cookie(SESSION_COOKIE, cookie, **cookie_options(
            secure(), int(settings.session_hours * 3600)))
        return response

    @route("/logout", "public", ("POST",))
    async def logout(who: Principal | None) -> Response:
        current = await principal()
        if current is not None and current.session_hash:
            await blocking(lambda: accounts.remove_session(current.session_hash))
        response = redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @route("/setup/<token>", "public", ("GET", "POST"))
    async def setup(who: Principal | None, token: str) -> Response:
        digest = token_hash(token)
        now = datetime.now(UTC)
        valid = len(token) < 200 and await blocking(
            lambda: accounts.setup_token_valid(digest, now))
        if not valid:
            raise Refusal(404, "This setup link has expired or was used. Add users with "
                          "`ferrite users add EMAIL --role admin`.")
        if request.method == "GET":
            return await page("setup.html", error="", email="")
        form = await request.form
        email = (form.get("email") or "").strip()
        password = form.get("password") or ""
        if password != (form.get("confirm") or ""):
            return await page("setup.html", 400, email=email, error="The passwords differ.")
        try:
            user = await blocking(lambda: service.new_user(email, password, "admin"))
        except service.AccountError as exc:
            return await page("setup.html", 400, email=email, error=str(exc))
        if not await blocking(lambda: accounts.create_first_admin(digest, user, now)):
            raise Refusal(404, "This setup link has expired or was used.")
        LOG.warning("the first admin was created through the setup link")
        return await logged_in(user, "/dashboard/")

    # --- sites overview -----------------------------------------------------------------

    @bp.route("/dashboard")
    async def dashboard_root() -> Response:
        return redirect("/dashboard/")
    access["dashboard.dashboard_root"] = "public"

    @route("/dashboard/", "user")
    async def overview(who: Principal) -> Response:
        names = await blocking(lambda: site_list(who))

        async def one(site: str, out: dict[str, Any]) -> None:
            # a visitor seen in two hours is one visitor today: the total is its own query
            hourly = await blocking(lambda: engine.answer(report.visitors_today_body(site)))
            total = await blocking(lambda: engine.answer(
                {"site_id": site, "metrics": ["visitors"], "date_range": "day"}))
            values = {r.dimensions[0]: r.metrics[0] for r in hourly.rows}
            series = [values.get(t, 0) for t in hourly.meta.get("time_labels", [])]
            out[site] = {"site": site, "today": total.rows[0].metrics[0] if total.rows else 0,
                         "spark": sparkline(series)}
        found: dict[str, Any] = {}
        async with trio.open_nursery() as nursery:
            for site in names:
                nursery.start_soon(one, site, found)
        rows = [found[s] for s in names]
        return await page("sites.html", who=who, sites=rows)

    # --- the site page --------------------------------------------------------------------

    async def site_page(who: Principal, site: str, base: str) -> Response:
        view = parse_view(request.args, settings.default_period)
        built, jobs = await blocking(lambda: report.plan_report(engine, site, view))
        answers: dict[str, Answer] = {}
        current: dict[str, int] = {}

        errors: list[QueryError] = []

        async def run(name: str, job: Callable[[], Any]) -> None:
            try:
                answers[name] = await blocking(job)
            except QueryTimeout:
                pass  # shown as too slow; the other parts still render
            except QueryError as exc:
                errors.append(exc)

        async def realtime() -> None:
            current["n"] = await blocking(lambda: realtime_visitors(site))

        # Answer before the server's read timeout cuts the connection: what is not counted
        # by then shows as too slow (a filtered view over a long range reads raw events).
        with trio.move_on_after(budget):
            async with trio.open_nursery() as nursery:
                for name, job in jobs.items():
                    nursery.start_soon(run, name, job)
                nursery.start_soon(realtime)
        if errors:
            raise errors[0]
        report.fill_report(built, answers)
        if built.slow:
            metrics.inc("rejected", reason="dashboard_slow")
        return await page(
            "site.html", who=who, site=site, r=built, view=view, base=base,
            current=current.get("n"), periods=PERIODS, metrics=METRICS, intervals=INTERVALS,
            comparisons=COMPARISONS, filter_label=filter_label,
            refresh=int(settings.realtime_refresh_seconds),
            shared=who.share is not None)

    def realtime_visitors(site: str) -> int:
        answer = engine.answer(report.realtime_body(site))
        return int(answer.rows[0].metrics[0]) if answer.rows else 0

    @route("/dashboard/<site>/", "site")
    async def site(who: Principal, site: str) -> Response:
        return await site_page(who, site_name(site), f"/dashboard/{quote(site_name(site))}/")

    @route("/dashboard/<site>/realtime", "site")
    async def site_realtime(who: Principal, site: str) -> Response:
        n = await blocking(lambda: realtime_visitors(site_name(site)))
        return json_response({"visitors": n})

    @route("/dashboard/<site>/export.csv", "site")
    async def site_export(who: Principal, site: str) -> Response:
        return await export(site_name(site))

    async def export(site: str) -> Response:
        view = parse_view(request.args, settings.default_period)
        panel = request.args.get("panel")
        if panel:
            text = await blocking(lambda: panel_csv(site, view, panel))
            return attachment(text.encode("utf-8"), "text/csv; charset=utf-8",
                              f"{site}-{panel.replace(':', '-')}.csv")
        data = await blocking(lambda: period_zip(site, view))
        return attachment(data, "application/zip", f"{site}-{view.period}.zip")

    def panel_csv(site: str, view: Any, key: str) -> str:
        spec = report.find_panel(engine, site, key)
        answer = engine.answer(report.panel_body(view, site, spec, report.EXPORT_ROWS))
        return rows_csv([spec.column, *spec.metrics],
                        ([r.dimensions[0], *r.metrics]
                         for r in report.visible(spec, answer.rows)))

    def period_zip(site: str, view: Any) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            series = engine.answer(view.body(site, report.TOP_METRICS, ["time:day"]))
            archive.writestr("visitors.csv", rows_csv(
                ["date", *report.TOP_METRICS], ([*r.dimensions, *r.metrics]
                                                 for r in series.rows)))
            for spec in report.panels(engine, site, view.prop):
                answer = engine.answer(report.panel_body(view, site, spec,
                                                         report.EXPORT_ROWS))
                name = "".join(c if c.isalnum() or c in "._-" else "_"
                               for c in spec.key.replace(":", "-"))[:100]
                archive.writestr(f"{name}.csv", rows_csv(
                    [spec.column, *spec.metrics],
                    ([r.dimensions[0], *r.metrics]
                     for r in report.visible(spec, answer.rows))))
        return out.getvalue()

    # --- shared links ---------------------------------------------------------------------

    @route("/share/<token>/", "share")
    async def shared(who: Principal, token: str) -> Response:
        assert who.share is not None
        return await site_page(who, who.share.site, f"/share/{quote(token)}/")

    @bp.route("/share/<token>/unlock", methods=["POST"])
    async def share_unlock(token: str) -> Response:
        try:
            await check_csrf()
        except Refusal as refusal:
            return await finish(await refused(refusal, {}))
        share: Share | None = await blocking(lambda: accounts.find_share(token_hash(token)))
        if share is None or share.revoked is not None or not share.password_hash:
            return await finish(await page("message.html", 404, title="Not available",
                                           message="This shared link does not exist or "
                                           "was revoked."))
        form = await request.form
        from_client = client()
        wait = throttle.wait("share:" + share.id, from_client)
        if wait:
            metrics.inc("rejected", reason="dashboard_login_throttled")
            return await finish(await page("share_password.html", 429, token=token,
                                           error=f"Too many tries; wait {wait} s."))
        password = form.get("password") or ""
        if not await blocking(lambda: passwords.verify(share.password_hash, password)):
            throttle.failed("share:" + share.id, from_client)
            metrics.inc("rejected", reason="dashboard_login_failed")
            return await finish(await page("share_password.html", 401, token=token,
                                           error="Wrong password."))
        k = await keys()
        response = redirect(f"/share/{quote(token)}/")
        response.set_cookie(SHARE_COOKIE, k.share_pass(share), **cookie_options(
            secure(), int(settings.session_hours * 3600), path=f"/share/{quote(token)}/"))
        return await finish(response)
    access["dashboard.share_unlock"] = "public"

    @route("/share/<token>/realtime", "share")
    async def share_realtime(who: Principal, token: str) -> Response:
        assert who.share is not None
        site_ = who.share.site
        return json_response({"visitors": await blocking(lambda: realtime_visitors(site_))})

    @route("/share/<token>/export.csv", "share")
    async def share_export(who: Principal, token: str) -> Response:
        assert who.share is not None
        return await export(who.share.site)

    @route("/dashboard/<site>/settings", "admin")
    async def site_settings(who: Principal, site: str, created: str = "") -> Response:
        name = site_name(site)
        shares = await blocking(lambda: accounts.list_shares(name))
        return await page("site_settings.html", who=who, site=name, shares=shares,
                          created=created)

    @route("/dashboard/<site>/shares", "admin", ("POST",))
    async def share_create(who: Principal, site: str) -> Response:
        form = await request.form
        name = site_name(site)
        try:
            token, _ = await blocking(lambda: service.create_share(
                accounts, name, form.get("name") or "", form.get("password") or None))
        except service.AccountError as exc:
            raise ViewError(exc.field or "password", str(exc)) from None
        url = f"{request.host_url.rstrip('/')}/share/{quote(token)}/"
        return await site_settings.__wrapped__(who, site, created=url)  # type: ignore

    @route("/dashboard/<site>/shares/<share_id>/revoke", "admin", ("POST",))
    async def share_revoke(who: Principal, site: str, share_id: str) -> Response:
        await blocking(lambda: accounts.revoke_share(share_id, site_name(site)))
        return redirect(f"/dashboard/{quote(site_name(site))}/settings")

    # --- API keys ---------------------------------------------------------------------

    @route("/dashboard/keys", "admin", ("GET", "POST"))
    async def api_key_page(who: Principal) -> Response:
        created = ""
        error = ""
        if request.method == "POST":
            form = await request.form
            chosen = form.getlist("site")
            known = site_list(who)
            if not chosen:
                error = "Choose at least one site the key may read."
            elif any(site_name(s) not in known for s in chosen):
                error = "Choose sites from the list."
            else:
                created, _ = await blocking(lambda: api_keys.create(
                    stats, chosen, (form.get("name") or "")[:200]))
        records = await blocking(stats.list_keys)
        names = await blocking(lambda: site_list(who))
        return await page("keys.html", 400 if error else 200, who=who, keys=records,
                          sites=names, created=created, error=error)

    @route("/dashboard/keys/<key_id>/revoke", "admin", ("POST",))
    async def api_key_revoke(who: Principal, key_id: str) -> Response:
        await blocking(lambda: stats.revoke_key(key_id))
        return redirect("/dashboard/keys")

    app.register_blueprint(bp)


def json_response(body: Any) -> Response:
    response = Response(json.dumps(body), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def attachment(data: bytes, mimetype: str, filename: str) -> Response:
    response = Response(data, mimetype=mimetype)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:150]
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    return response


def rows_csv(header: list[str], rows: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([spreadsheet_safe(v) for v in row])
    return out.getvalue()


def sparkline(values: list[float | int], width: int = 100, height: int = 24) -> str:
    """SVG polyline points for today's visitors by hour."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - (v or 0) / top * (height - 2) - 1:.1f}"
                    for i, v in enumerate(values))
