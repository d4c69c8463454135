"""Paths and facts the deploy tests share: the repository, the services' console scripts and
settings classes (from the workspace's own pyproject files and settings modules)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic_settings import BaseSettings

from ripple_translator.settings import TranslatorSettings
from ripple_watcher.settings import WatcherSettings
from ripple_xds.settings import XdsSettings
from scripts.settings_doc import env_names

REPO_DIR = Path(__file__).resolve().parents[3]
DEPLOY_DIR = REPO_DIR / "deploy"
K8S_DIR = DEPLOY_DIR / "k8s"
IMAGES_DIR = DEPLOY_DIR / "images"
SERVICES = ("watcher", "translator", "xds")
SETTINGS: dict[str, type[BaseSettings]] = {
    "watcher": WatcherSettings,
    "translator": TranslatorSettings,
    "xds": XdsSettings,
}


def console_scripts() -> dict[str, str]:
    """Console script name -> its workspace member directory, from every pyproject.toml."""
    root = tomllib.loads((REPO_DIR / "pyproject.toml").read_text())
    scripts: dict[str, str] = {}
    for member in root["tool"]["uv"]["workspace"]["members"]:
        project = tomllib.loads((REPO_DIR / member / "pyproject.toml").read_text())["project"]
        for name in project.get("scripts", {}):
            scripts[name] = member
    return scripts


def known_variables() -> dict[str, str]:
    """Every RIPPLE_<SERVICE>_* environment variable a service reads -> the service."""
    return {var: svc for svc, cls in SETTINGS.items() for var in env_names(cls)}
