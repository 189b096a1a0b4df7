"""webgatos: a color per user session, kept in memory, Redis or Hazelcast (`webgatos:create_app()`)."""

from webgatos.settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError", "create_app"]


def create_app(settings: Settings | None = None):
    """The WSGI application. Imported lazily: gunicorn.conf.py reads the settings in the master
    process, which must not import prometheus_client before PROMETHEUS_MULTIPROC_DIR is set."""
    from webgatos.app import create_app as factory

    return factory(settings)
