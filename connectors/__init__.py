"""Connectors: the outside world reached from service tasks and message events."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from connectors.registry import ConnectorRegistry
from engine.config import Settings


def build_registry(settings: Settings, factory: sessionmaker[Session]) -> ConnectorRegistry:
    """All operations available to service tasks under ``settings``."""
    from connectors import demo, documents, interagency, notify, postal

    registry = ConnectorRegistry()
    notify.register(registry, factory, settings)
    interagency.register(registry, factory, settings)  # RabbitMQ when MOTCUA_BROKER_URL is set
    postal.register(registry, factory, settings)  # the post's API when MOTCUA_POSTAL_URL is set
    documents.register(registry, factory, settings)  # PAdES signing of results
    if settings.sandbox or settings.env != "production":
        demo.register(registry, factory)
    return registry
