"""Packaging step that pyproject.toml cannot express on its own.

A wheel must run without the checkout around it, so building one puts
templates/, static/ and migrations/ inside the recovery_app package and
compiles every translation catalog (.po) into the .mo file the app loads.
An editable install keeps reading them from the checkout instead
(scripts/setup.sh compiles the catalogs there).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("templates", "static", "migrations")


class BuildWithResources(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        package = Path(self.build_lib) / "recovery_app"
        for name in BUNDLED:
            target = package / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".gitkeep"))
        self.compile_catalogs(package)

    def compile_catalogs(self, package: Path) -> None:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in sorted((ROOT / "recovery_app").rglob("translations/*/LC_MESSAGES/*.po")):
            with po.open("rb") as fh:
                catalog = read_po(fh, locale=po.parent.parent.name)
            if catalog.fuzzy:  # as `pybabel compile` does: a catalog marked fuzzy is not used
                continue
            mo = package / po.relative_to(ROOT / "recovery_app").with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            with mo.open("wb") as fh:
                write_mo(fh, catalog)


setup(cmdclass={"build_py": BuildWithResources})
