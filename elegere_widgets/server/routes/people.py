"""Who the caller is, which workspaces it administers, and granting that right."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from ... import models
from ..deps import PeopleDep

router = APIRouter(tags=["people"])


@router.get("/me", response_model=models.Me)
def me(people: PeopleDep) -> models.Me:
    return people.me()


@router.get("/workspaces", response_model=list[models.Workspace])
def workspaces(people: PeopleDep) -> list[models.Workspace]:
    """The workspaces the caller may administer."""
    return people.administered_workspaces()


@router.put("/workspaces/{ws}/admins/{user}", status_code=status.HTTP_204_NO_CONTENT)
def grant_admin(ws: str, user: str, people: PeopleDep) -> Response:
    people.grant_admin(ws, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/workspaces/{ws}/admins/{user}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_admin(ws: str, user: str, people: PeopleDep) -> Response:
    people.revoke_admin(ws, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
