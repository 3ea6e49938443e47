"""Routes of the review blueprint: parse the form, call the service, render or redirect."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("review", __name__, url_prefix="/review")
