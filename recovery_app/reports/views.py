"""Routes of the reports blueprint: parse the form, call the service, render or redirect."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/reports")
