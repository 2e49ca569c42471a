"""An API user grants only what it holds (issue 11, defect 5): with `teams.users:invite`/`:update` it could
invite a person as Administrator or promote one, handing out every action it lacks itself."""

from __future__ import annotations

import pytest

from console.models import User
from console.roles import Role, role_actions
from console.scoping import Principal
from console.services.teams import api_user_create
from products.models import ProductMembership
from products.services import product_team
from tests.support.api import Api
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TEAM = ["teams.users:list", "teams.users:invite", "teams.users:update", "teams.users:remove"]


def _robot(cast, scopes: list[str]) -> Api:
    _, token = api_user_create(principal=Principal.for_user(cast.owner), team=product_team(cast.product),
                               friendly_name="hr robot", scopes=scopes)
    return Api(token)


def _team_url(cast) -> str:
    return f"/v1/products/{cast.product.pk}/team"


@pytest.mark.parametrize("role", ["Administrator", "Developer", "Support", "View-only"])
def test_team_scopes_alone_grant_no_role(cast, role):
    robot = _robot(cast, TEAM)
    invitee = UserFactory(email="new@example.com")
    r = robot.post(_team_url(cast), {"username": invitee.email, "role": role})
    assert r.status_code == 403, r.content
    assert "cannot grant the role" in r.json()["error_description"]
    assert not ProductMembership.objects.filter(product=cast.product, user=invitee).exists()


def test_the_default_role_is_bounded_too(cast):
    robot = _robot(cast, TEAM)
    r = robot.post(_team_url(cast), {"username": UserFactory(email="new@example.com").email})
    assert r.status_code == 403, r.content  # api-js sends no role: Developer, which the robot cannot grant


def test_a_robot_holding_a_roles_actions_may_grant_it_and_no_more(cast):
    viewer_scopes = sorted(role_actions(Role.VIEWER) | set(TEAM))
    robot = _robot(cast, viewer_scopes)
    invitee = UserFactory(email="new@example.com")
    r = robot.post(_team_url(cast), {"username": invitee.email, "role": "View-only"})
    assert r.status_code == 200, r.content
    assert ProductMembership.objects.get(product=cast.product, user=invitee).role == Role.VIEWER
    r = robot.put(f"{_team_url(cast)}/{invitee.email}", {"role": "Support"})
    assert r.status_code == 403, r.content
    assert ProductMembership.objects.get(product=cast.product, user=invitee).role == Role.VIEWER


def test_promoting_a_member_past_the_robots_scopes_is_refused(cast):
    robot = _robot(cast, TEAM)
    r = robot.put(f"{_team_url(cast)}/{cast.support.email}", {"role": "Administrator"})
    assert r.status_code == 403, r.content
    assert ProductMembership.objects.get(product=cast.product, user=cast.support).role == Role.SUPPORT


def test_people_who_may_manage_the_team_still_grant_any_role(cast):
    invitee = UserFactory(email="new@example.com")
    r = cast.api("owner").post(_team_url(cast), {"username": invitee.email, "role": "Administrator"})
    assert r.status_code == 200, r.content
    assert User.objects.get(email="new@example.com").productmembership_set.get().role == Role.ADMINISTRATOR
