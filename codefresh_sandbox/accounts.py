"""Accounts family: the current user, the account's users, teams, account settings and API keys.

GET /user                          object (the key's user; `account[]` lists every account of the user)
GET /accounts/{accountId}/users    bare array            (the limited key gets 403)
GET /team                          bare array
GET /account-settings              object
GET /auth/keys                     bare array (never the key values)
"""

from __future__ import annotations

from typing import Any, Dict, List

from .common import DAY_MS, Collection, Gen, Request, Response, iso, json_response, not_found, raw_json, route

ACCOUNT_NAME = "acme-sandbox"
OTHER_ACCOUNT_NAME = "acme-legacy"

FEATURES = {
    "newBuildsView": True,
    "pipelineScopes": True,
    "gitopsArgoCdAddon": False,
    "abac": True,
    "csdpIntegration": False,
    "injectClusterCredentials": True,
}


IDP_IDS = {
    "google": "5b7018a3c3567008431464d6",
    "github": "5b701851c3567008431464d3",
    "gitlab": "5b70186fc3567008431464d4",
    "okta": "5d1b5a2be3f4a40011c5ae2b",
}


def _logins(g: Gen, p: Dict[str, str]) -> List[Dict[str, Any]]:
    """`logins[]` as in a real answer (S4): `{userId, userName?, personalGit, permissions, idp: {id}}`."""
    providers = g.sample(list(IDP_IDS), g.randint(1, 2))
    return [
        {
            "userId": str(g.randint(10**7, 10**21)),
            **({"userName": p["userName"]} if idp != "google" else {}),
            "personalGit": False,
            "permissions": [],
            "idp": {"id": IDP_IDS[idp]},
        }
        for idp in providers
    ]


def _settings(g: Gen) -> Dict[str, Any]:
    settings = {
        "sendWeeklyReport": g.chance(0.7),
        "allowAdminToLogin": True,
        "filterInaccessibleKubernetes": g.chance(0.5),
    }
    if g.chance(0.4):
        settings["notifyMyChanges"] = True
    return settings


def _user_data(g: Gen, p: Dict[str, str]) -> Dict[str, Any]:
    return {
        "emails": [p["email"]],
        "email": p["email"],
        "image": p["avatar"] if g.chance(0.8) else None,
        "name": p["name"],
    }


def make_account_user(g: Gen, i: int, account_ids: List[str]) -> Dict[str, Any]:
    """An item of GET /accounts/{id}/users, in the shape of a real answer saved by Codefresh support ([SUPPORT]
    `users.json` in docs/api-notes.md): `status` "new", string `user_data.emails`, mail `notifications`, `logins` by
    identity provider."""
    p = g.person(i)
    registered = g.past_ms(700, 95)
    invited = i > 0 and g.chance(0.15)
    return {
        "_id": g.oid(registered),
        "userName": p["userName"],
        "email": p["email"],
        "notificationEmail": p["email"],
        "roles": ["User", "Admin"] if i == 0 or g.chance(0.2) else ["User"],
        "defaultAccount": 0,
        "account": list(account_ids),
        "status": "new",
        "user_data": _user_data(g, p),
        "register_date": iso(registered),
        "last_login_date": None if invited else iso(g.past_ms(30)),
        "hasPassword": g.chance(0.2),
        "notifications": [
            {"events": ["build-success", "build-failure"] if g.chance(0.3) else [], "type": "mail", "mail": {}}
        ],
        "shortProfile": {"userName": p["userName"]},
        "settings": _settings(g),
        "logins": [] if invited else _logins(g, p),
    }


def make_team(g: Gen, i: int, account_id: str, users: List[Dict[str, Any]]) -> Dict[str, Any]:
    """An item of GET /team."""
    kinds = [("users", "default"), ("admins", "admin")]
    name, kind = (
        kinds[i]
        if i < len(kinds)
        else (g.pick(["backend", "frontend", "sre", "data", "qa", "mobile"]) + f"-{i}", "custom")
    )
    members = (
        users
        if kind == "default"
        else [u for u in users if "Admin" in u["roles"]]
        if kind == "admin"
        else g.sample(users, g.randint(1, max(1, len(users) // 2)))
    )
    return {
        "_id": g.oid(g.past_ms(600, 100)),
        "name": name,
        "type": kind,
        "account": account_id,
        "tags": g.sample(["oncall", "eu", "us", "platform"], g.randint(0, 2)),
        "users": [{"_id": u["_id"], "userName": u["userName"]} for u in members],
    }


def make_api_key(g: Gen, i: int, user_id: str) -> Dict[str, Any]:
    """An item of GET /auth/keys: never the key itself, only its prefix."""
    created = g.past_ms(500, 1)
    scopes = (
        None
        if i == 1
        else sorted(
            g.sample(
                [
                    "agent",
                    "audit",
                    "build",
                    "environments-v2",
                    "pipeline",
                    "project",
                    "repos",
                    "step-type",
                    "view",
                    "workflow",
                ],
                g.randint(2, 6),
            )
        )
    )
    return {
        "_id": g.oid(created),
        "name": ["sandbox", "ci-readonly", "airbyte", "terraform", "grafana-exporter"][i % 5]
        + ("" if i < 5 else f"-{i}"),
        "tokenPrefix": g.hex(6),
        "created": iso(created),
        "subject": {"type": "user", "ref": user_id},
        "scopes": scopes,
        "scopeSnapshot": None if scopes is None else {"scopes": scopes, "_id": g.oid(created), "date": iso(created)},
    }


def generate(g: Gen, cfg: Any, data: Any) -> None:
    created = g.past_ms(900, 700)
    data.account_id = g.oid(created)
    data.account_name = ACCOUNT_NAME
    other_id = g.oid(created - 30 * DAY_MS)
    users = [
        make_account_user(g, i, [other_id, data.account_id] if i == 0 else [data.account_id])
        for i in range(max(1, cfg.account_users))
    ]
    data.users = Collection(users)
    me = users[0]
    runtime_name = f"{ACCOUNT_NAME}/default"
    data.current_user = {
        "_id": me["_id"],
        "userName": me["userName"],
        "email": me["email"],
        "roles": me["roles"],
        "status": me["status"],
        "register_date": me["register_date"],
        "activeAccountName": ACCOUNT_NAME,
        "defaultAccount": 1,
        "user_data": me["user_data"],
        "settings": me["settings"],
        "notifications": me["notifications"],
        "shortProfile": {"userName": me["userName"]},
        "logins": me["logins"],
        # the active account is deliberately not the first entry: look it up by `activeAccountName`
        "account": [
            {
                "_id": other_id,
                "id": other_id,
                "name": OTHER_ACCOUNT_NAME,
                "admins": [],
                "features": {k: False for k in FEATURES},
                "runtimeEnvironment": None,
            },
            {
                "_id": data.account_id,
                "id": data.account_id,
                "name": ACCOUNT_NAME,
                "admins": [me["_id"]],
                "features": dict(FEATURES),
                "runtimeEnvironment": runtime_name,
            },
        ],
    }
    data.teams = Collection([make_team(g, i, data.account_id, users) for i in range(cfg.teams)])
    settings_created = created + DAY_MS
    data.account_settings = {  # modules as strings, schemaVersion a string (Airbyte's schema of real answers)
        "_id": g.oid(settings_created),
        "accountId": data.account_id,
        "createdAt": iso(settings_created),
        "updatedAt": iso(g.past_ms(60, 2)),
        "schemaVersion": "2",
        "settings": {"modules": ["classic", "artifacts", "analytics"]},
        "__v": 0,
    }
    data.api_keys = Collection([make_api_key(g, i, me["_id"]) for i in range(cfg.api_keys)])


# ---------------------------------------------------------------------------------------------------------------
# handlers
# ---------------------------------------------------------------------------------------------------------------
def get_user(req: Request) -> Response:
    return json_response(req.data.current_user)


def get_account_users(req: Request) -> Response:
    if req.params["accountId"] != req.data.account_id:
        raise not_found(f"Account {req.params['accountId']} not found")
    users = req.data.users
    return raw_json(users.array(range(len(users))))


def get_teams(req: Request) -> Response:
    teams = req.data.teams
    return raw_json(teams.array(range(len(teams))))


def get_account_settings(req: Request) -> Response:
    return json_response(req.data.account_settings)


def get_api_keys(req: Request) -> Response:
    keys = req.data.api_keys
    return raw_json(keys.array(range(len(keys))))


ROUTES = [
    route("GET", "/user", get_user),
    route("GET", "/accounts/{accountId}/users", get_account_users, restricted=True),
    route("GET", "/team", get_teams),
    route("GET", "/account-settings", get_account_settings),
    route("GET", "/auth/keys", get_api_keys),
]
