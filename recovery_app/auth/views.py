"""Routes of the auth blueprint: parse the form, call the service, render or redirect."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__)
