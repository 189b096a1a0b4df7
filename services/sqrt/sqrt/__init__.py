"""sqrt: burns CPU like the php-apache example of the Kubernetes HPA walkthrough (`sqrt:create_app()`)."""

from sqrt.settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError", "create_app"]


def create_app(settings: Settings | None = None):
    """The WSGI application. Imported lazily: gunicorn.conf.py reads the settings in the master
    process, which must not import prometheus_client before PROMETHEUS_MULTIPROC_DIR is set."""
    from sqrt.app import create_app as factory

    return factory(settings)
