"""Routes of the recovery blueprint: parse the form, call the service, render or redirect."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("recovery", __name__, url_prefix="/recovery")
