"""Every route has an access decision, and every decision holds: anonymous visitors,
viewers of one site, admins and shared links each reach exactly what they may."""

from __future__ import annotations

import re

from ferrite.stats import keys as api_keys

from .dashboard_helpers import csrf_of, dashboard, log_in

DECISIONS = {"public", "user", "site", "admin", "share", "api-key"}


def concrete(rule: str, site: str, token: str, share_id: str = "s", key_id: str = "k") -> str:
    return (rule.replace("<site>", site).replace("<token>", token)
            .replace("<share_id>", share_id).replace("<key_id>", key_id)
            .replace("<name>", "dashboard.js").replace("<path:path>", "x"))


async def test_every_route_has_an_access_decision(tmp_path):
    async with dashboard(tmp_path) as dash:
        access = dash.app.extensions["ferrite_access"]
        rules = list(dash.app.url_map.iter_rules())
        assert len(rules) > 20
        assert not undecided(dash.app), f"routes without an access decision: " \
            f"{undecided(dash.app)}"
        assert set(access.values()) <= DECISIONS
        # the dashboard's own routes are all listed (none were added around the wrapper)
        assert {r.endpoint for r in rules if r.endpoint.startswith("dashboard.")} == \
            {name for name in access if name.startswith("dashboard.")}


def undecided(app) -> list[str]:
    access = app.extensions["ferrite_access"]
    return [r.rule for r in app.url_map.iter_rules() if r.endpoint not in access]


async def test_a_route_added_without_a_decision_is_caught(tmp_path):
    async with dashboard(tmp_path) as dash:
        @dash.app.get("/dashboard/sneaky")
        async def sneaky() -> str:
            return "no check"
        assert undecided(dash.app) == ["/dashboard/sneaky"]


def routes(app, *decisions):
    access = app.extensions["ferrite_access"]
    for rule in app.url_map.iter_rules():
        if access.get(rule.endpoint) in decisions:
            yield rule, sorted(rule.methods - {"HEAD", "OPTIONS"})


async def test_anonymous_visitors_reach_no_protected_route(tmp_path):
    async with dashboard(tmp_path) as dash:
        client = dash.client()
        csrf = await csrf_of(client)
        checked = 0
        for rule, methods in routes(dash.app, "user", "site", "admin"):
            url = concrete(rule.rule, "a.example", dash.share_token)
            for method in methods:
                form = {"csrf": csrf} if method == "POST" else None
                response = await client.open(url, method=method, form=form)
                assert response.status_code == 302, (method, url)
                assert response.headers["Location"].startswith("/login?next="), url
                checked += 1
        assert checked >= 10


async def test_a_viewer_reaches_only_their_site(tmp_path):
    async with dashboard(tmp_path) as dash:
        client = dash.client()
        assert (await log_in(client, "viewer@example.com")).status_code == 302
        csrf = await csrf_of(client, "/dashboard/")
        for rule, methods in routes(dash.app, "site", "admin"):
            url = concrete(rule.rule, "b.example", dash.share_token)
            for method in methods:
                form = {"csrf": csrf} if method == "POST" else None
                response = await client.open(url, method=method, form=form)
                assert response.status_code == 403, (method, url)
                body = await response.get_data(as_text=True)
                assert "b.example" not in body or "no access to b.example" in body
        for rule, _ in routes(dash.app, "site"):
            url = concrete(rule.rule, "a.example", dash.share_token)
            assert (await client.get(url)).status_code == 200, url
        for rule, methods in routes(dash.app, "admin"):
            url = concrete(rule.rule, "a.example", dash.share_token)
            for method in methods:
                form = {"csrf": csrf} if method == "POST" else None
                assert (await client.open(url, method=method, form=form)).status_code == 403
        overview = await (await client.get("/dashboard/")).get_data(as_text=True)
        assert 'data-site="a.example"' in overview and "b.example" not in overview
        # and the site's name is normalised before the check: www. and case do not help
        assert (await client.get("/dashboard/WWW.B.example/")).status_code == 403


async def test_an_admin_reaches_every_site_and_admin_page(tmp_path):
    async with dashboard(tmp_path) as dash:
        client = dash.client()
        await log_in(client, "admin@example.com")
        for site in ("a.example", "b.example"):
            for rule, _ in routes(dash.app, "site"):
                assert (await client.get(concrete(rule.rule, site, ""))).status_code == 200
        assert (await client.get("/dashboard/keys")).status_code == 200
        assert (await client.get("/dashboard/b.example/settings")).status_code == 200
        # a site the node does not serve is not an empty dashboard but a 404
        assert (await client.get("/dashboard/typo.example/")).status_code == 404
        assert (await client.get("/dashboard/typo.example/settings")).status_code == 404


async def test_a_shared_link_reaches_one_site_read_only(tmp_path):
    async with dashboard(tmp_path) as dash:
        client = dash.client()
        for rule, _ in routes(dash.app, "share"):
            url = concrete(rule.rule, "a.example", dash.share_token)
            response = await client.get(url)
            assert response.status_code == 200, url
        page = await (await client.get(f"/share/{dash.share_token}/")).get_data(as_text=True)
        assert "a.example" in page and "b.example" not in page
        assert "Log out" not in page and "/settings" not in page
        # the link opens nothing else: not another site, not the signed-in pages
        assert (await client.get("/dashboard/a.example/")).status_code == 302
        assert (await client.get("/dashboard/b.example/export.csv")).status_code == 302
        assert (await client.get("/share/not-a-token/")).status_code == 404
        csv = await (await client.get(f"/share/{dash.share_token}/export.csv?period=all"
                                      f"&panel=pages")).get_data(as_text=True)
        assert csv.splitlines()[0] == "Page,visitors,pageviews"
        # a revoked link is dead at once
        assert dash.store.revoke_share(dash.share_id, "a.example")
        assert (await client.get(f"/share/{dash.share_token}/")).status_code == 404
        assert (await client.get(f"/share/{dash.share_token}/realtime")).status_code == 404


async def test_a_password_protected_link_asks_for_it(tmp_path):
    from ferrite.accounts import service

    async with dashboard(tmp_path) as dash:
        token, _ = service.create_share(dash.store, "a.example", "secret", "link-password")
        client = dash.client()
        response = await client.get(f"/share/{token}/")
        assert response.status_code == 401
        assert 'type="password"' in await response.get_data(as_text=True)
        assert (await client.get(f"/share/{token}/export.csv")).status_code == 401
        csrf = await csrf_of(client, f"/share/{token}/")
        wrong = await client.post(f"/share/{token}/unlock", form={"csrf": csrf,
                                                                  "password": "nope"})
        assert wrong.status_code == 401
        right = await client.post(f"/share/{token}/unlock",
                                  form={"csrf": csrf, "password": "link-password"})
        assert right.status_code == 302
        assert (await client.get(f"/share/{token}/")).status_code == 200
        # the pass is for this link only
        other = await client.get(f"/share/{dash.other_share_token}/")
        assert other.status_code == 200  # (no password on that one)


async def test_state_changes_need_the_csrf_token(tmp_path):
    async with dashboard(tmp_path) as dash:
        client = dash.client()
        await log_in(client, "admin@example.com")
        csrf = await csrf_of(client, "/dashboard/keys")
        posts = [(r, m) for r, ms in routes(dash.app, "admin", "public") for m in ms
                 if m == "POST"]
        assert len(posts) >= 5
        for rule, _ in posts:
            url = concrete(rule.rule, "a.example", dash.share_token)
            for form in ({}, {"csrf": "forged"}, {"csrf": csrf + "0"}):
                response = await client.post(url, form=form)
                assert response.status_code == 403, (url, form)
        # the right token from a foreign origin is refused too
        response = await client.post("/dashboard/keys", form={"csrf": csrf, "site": "a.example"},
                                     headers={"Origin": "https://evil.example"})
        assert response.status_code == 403
        response = await client.post("/dashboard/keys", form={"csrf": csrf, "site": "a.example",
                                                              "name": "ci"})
        assert response.status_code == 200
        key = re.search(r"data-new-key>([^<]+)<", await response.get_data(as_text=True))[1]
        assert api_keys.lookup(dash.app.extensions["ferrite"]["pipeline"].plugins.hook
                               .ferrite_stats_store(), key).sites == ("a.example",)


async def test_every_dashboard_answer_carries_the_security_headers(tmp_path):
    async with dashboard(tmp_path) as dash:
        client = dash.client()
        await log_in(client, "admin@example.com")
        for url in ("/login", "/dashboard/", "/dashboard/a.example/", "/dashboard/keys",
                    f"/share/{dash.share_token}/", "/dashboard/nope.example/?period=x"):
            response = await client.get(url)
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert response.headers["Cache-Control"] == "no-store"
            body = await response.get_data(as_text=True)
            inline = [tag for tag in re.findall(r"<script[^>]*>", body)
                      if "src=" not in tag and "application/json" not in tag]
            assert not inline, url
            assert not re.search(r"<[^>]+\son[a-z]+\s*=", body), url  # no handler attributes
            assert not re.search(r"<[^>]+\sstyle\s*=", body), url  # CSP forbids them anyway
