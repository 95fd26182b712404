"""`ferrite users`: add, list, remove and change the password of dashboard accounts."""

from __future__ import annotations

import getpass
import json
import sys
from dataclasses import replace
from typing import TextIO

from ferrite.accounts import service
from ferrite.core.config import Config
from ferrite.core.sites import sites_of
from ferrite.stats.command import safe


def read_password(stdin: bool, confirm: bool = True) -> str:
    if stdin:
        line = sys.stdin.readline()
        if not line:
            raise service.AccountError("--password-stdin read nothing; pipe the password in")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise service.AccountError("no terminal to ask for the password on; pass "
                                   "--password-stdin and pipe it in")
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise service.AccountError("the two passwords differ; try again")
    return first


def users_command(config: Config, action: str, *, email: str | None, role: str | None,
                  sites: list[str], password_stdin: bool, as_json: bool,
                  out: TextIO = sys.stdout) -> int:
    store = service.open_accounts(config)
    try:
        if action == "list":
            users = store.list_users()
            if as_json:
                json.dump([{"email": u.email, "role": u.role, "sites": list(u.sites),
                            "created": u.created.isoformat()} for u in users], out, indent=2)
                out.write("\n")
            elif not users:
                out.write("no users; add one with `ferrite users add EMAIL --role admin`, "
                          "or open the setup link `ferrite serve` prints\n")
            for u in users if not as_json else []:
                scope = "all sites" if u.role == "admin" else \
                    ", ".join(safe(s) for s in u.sites) or "no sites"
                out.write(f"{safe(u.email)}  {u.role:<6}  {scope}\n")
            return 0
        if not email:
            raise service.AccountError(f"users {action} needs the user's EMAIL")
        if action == "add":
            role = role or "viewer"
            known = sites_of(config).names()
            service.check_sites(sites, known or None)
            if role == "viewer" and not sites:
                raise service.AccountError("a viewer needs at least one --site DOMAIN (or "
                                           "use --role admin)", "sites")
            service.check_email(email)
            user = service.add_user(store, email, read_password(password_stdin), role, sites)
            out.write(f"added {user.role} {safe(user.email)}\n")
            return 0
        user = store.find_user(email)
        if user is None:
            raise service.AccountError(f"no user has the email {email!r}; see "
                                       f"`ferrite users list`")
        if action == "edit":
            known = sites_of(config).names()
            new_role = service.check_role(role or user.role)
            new_sites = service.check_sites(sites, known or None) if sites else user.sites
            if new_role == "viewer" and not new_sites:
                raise service.AccountError("a viewer needs at least one --site DOMAIN",
                                           "sites")
            store.update_user(replace(user, role=new_role, sites=new_sites))
            scope = "all sites" if new_role == "admin" else ", ".join(new_sites)
            out.write(f"{safe(user.email)} is now {new_role} of {safe(scope)}\n")
            return 0
        if action == "remove":
            store.remove_user(user.id)
            out.write(f"removed {safe(user.email)} and ended their sessions\n")
            return 0
        service.set_password(store, user, read_password(password_stdin))
        out.write(f"changed the password of {safe(user.email)}; their sessions ended\n")
        return 0
    finally:
        store.close()
