"""test_dashboards_list.py - GET /api/v1/dashboards: summaries, order, owner
filter (1 to 255 characters, else 422 naming owner), keyset pagination, and
bad limit or cursor (400 naming the parameter)."""

import pytest

from support import assert_problem, error_fields

SUMMARY_FIELDS = {"id", "name", "description", "is_default", "owner", "version",
                  "created_at", "updated_at", "widget_count"}


def list_page(api, **params):
    response = api.get("/api/v1/dashboards", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def walk_pages(api, **params):
    """Every item of every page, following next_cursor; and the page sizes."""
    items, sizes, cursor = [], [], None
    for _ in range(100):
        page = list_page(api, **dict(params, **({"cursor": cursor} if cursor else {})))
        items += page["items"]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return items, sizes
    raise AssertionError("pagination did not end after 100 pages")


def documented_order(dashboards):
    """Default first, then by name, then by id."""
    return sorted(dashboards, key=lambda d: (not d["is_default"], d["name"], d["id"]))


def test_list_of_no_dashboards_is_empty_with_null_cursor(api):
    assert list_page(api) == {"items": [], "next_cursor": None}


def test_list_items_are_summaries_with_widget_count(api, make_dashboard):
    widget = {"type": "gauge", "title": "G"}
    created = make_dashboard(name="Ops", description="d", owner="alice",
                             widgets=[widget, widget, widget])
    page = list_page(api)
    assert len(page["items"]) == 1
    item = page["items"][0]
    assert set(item) == SUMMARY_FIELDS
    assert item["widget_count"] == 3
    assert {k: item[k] for k in SUMMARY_FIELDS - {"widget_count"}} == {
        k: created[k] for k in SUMMARY_FIELDS - {"widget_count"}}


def test_list_orders_default_first_then_name_then_id(api, make_dashboard):
    created = [make_dashboard(name=n) for n in ("bravo", "alpha", "charlie", "alpha")]
    created.append(make_dashboard(name="zulu", is_default=True))
    created = [api.get("/api/v1/dashboards/%s" % d["id"]).json() for d in created]
    page = list_page(api)
    assert [i["id"] for i in page["items"]] == [d["id"] for d in documented_order(created)]
    assert page["items"][0]["name"] == "zulu"
    assert page["next_cursor"] is None


def test_list_walks_all_pages_with_limit_2_without_duplicates(api, make_dashboard):
    created = [make_dashboard(name=n) for n in ("e", "b", "d", "a", "c", "b", "f")]
    created.append(make_dashboard(name="m", is_default=True))
    created = [api.get("/api/v1/dashboards/%s" % d["id"]).json() for d in created]
    items, sizes = walk_pages(api, limit=2)
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)) == 8
    assert ids == [d["id"] for d in documented_order(created)]
    assert all(size == 2 for size in sizes[:4]) and sum(sizes) == 8


def test_list_page_has_next_cursor_while_more_remain(api, make_dashboard):
    for name in ("a", "b", "c"):
        make_dashboard(name=name)
    page = list_page(api, limit=2)
    assert [i["name"] for i in page["items"]] == ["a", "b"]
    assert isinstance(page["next_cursor"], str) and page["next_cursor"]


def test_list_defaults_to_50_items_per_page(api, make_dashboard):
    for i in range(51):
        make_dashboard(name="d%02d" % i)
    page = list_page(api)
    assert len(page["items"]) == 50
    assert page["next_cursor"] is not None
    rest = list_page(api, cursor=page["next_cursor"])
    assert [i["name"] for i in rest["items"]] == ["d50"]
    assert rest["next_cursor"] is None


def test_list_accepts_limit_100(api, make_dashboard):
    for i in range(3):
        make_dashboard(name="d%d" % i)
    assert len(list_page(api, limit=100)["items"]) == 3


def test_list_filters_by_owner(api, make_dashboard):
    make_dashboard(name="a", owner="alice")
    make_dashboard(name="b", owner="bob")
    make_dashboard(name="c", owner="alice")
    make_dashboard(name="d")
    page = list_page(api, owner="alice")
    assert [(i["name"], i["owner"]) for i in page["items"]] == [("a", "alice"), ("c", "alice")]


def test_list_owner_filter_pages_within_the_owner(api, make_dashboard):
    for name in ("a", "b", "c", "d", "e"):
        make_dashboard(name=name, owner="alice" if name in "ace" else "bob")
    items, _ = walk_pages(api, owner="alice", limit=1)
    assert [i["name"] for i in items] == ["a", "c", "e"]


def test_list_owner_filter_with_no_match_is_empty(api, make_dashboard):
    make_dashboard(name="a", owner="alice")
    assert list_page(api, owner="carol") == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("owner", ["", "o" * 256, "\u00e9" * 256],
                         ids=["empty", "256 characters", "256 two-byte characters"])
def test_list_refuses_an_owner_outside_1_to_255_characters_with_422(api, db, make_dashboard,
                                                                     owner):
    make_dashboard(name="a", owner="alice")
    with db.unchanged():
        response = api.get("/api/v1/dashboards", params={"owner": owner})
    assert error_fields(response) == {"owner"}
    assert response.json()["errors"][0]["message"] == "must be 1 to 255 characters long"


def test_list_takes_an_owner_of_255_characters_counted_as_characters(api, make_dashboard):
    owner = "\u00e9" * 255        # 510 bytes
    make_dashboard(name="a", owner=owner)
    assert [i["name"] for i in list_page(api, owner=owner)["items"]] == ["a"]


def test_list_cursor_survives_deletion_of_the_last_seen_item(api, make_dashboard):
    created = [make_dashboard(name=n) for n in ("a", "b", "c", "d")]
    page = list_page(api, limit=2)
    assert api.delete("/api/v1/dashboards/%s" % created[1]["id"]).status_code == 204
    rest = list_page(api, limit=2, cursor=page["next_cursor"])
    assert [i["name"] for i in rest["items"]] == ["c", "d"]


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", "10x",
                                   "99999999999999999999"])
def test_list_refuses_bad_limit_with_400_naming_limit(api, db, make_dashboard, limit):
    make_dashboard()
    with db.unchanged():
        response = api.get("/api/v1/dashboards", params={"limit": limit})
    body = assert_problem(response, 400, "bad-request")
    assert "limit" in body["detail"]


@pytest.mark.parametrize("cursor", ["garbage", "%%%", "eyJ4IjoxfQ", "a" * 300])
def test_list_refuses_bad_cursor_with_400_naming_cursor(api, db, make_dashboard, cursor):
    make_dashboard()
    with db.unchanged():
        response = api.get("/api/v1/dashboards", params={"cursor": cursor})
    body = assert_problem(response, 400, "bad-request")
    assert "cursor" in body["detail"]


def test_list_answers_a_tampered_cursor_without_a_server_error(api, db, make_dashboard):
    for name in ("a", "b", "c"):
        make_dashboard(name=name)
    cursor = list_page(api, limit=1)["next_cursor"]
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    with db.unchanged():
        response = api.get("/api/v1/dashboards", params={"cursor": tampered, "limit": 1})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert "cursor" in assert_problem(response, 400, "bad-request")["detail"]
