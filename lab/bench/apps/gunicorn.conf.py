"""gunicorn settings for the benchmark's reference apps: webgatos's server settings (one gthread
worker with webgatos's threads, the same response writer) without its life-cycle hooks."""

from service_common import gunicorn as lifecycle
from webgatos.settings import Settings

_settings = lifecycle.load_settings(Settings.from_env, "bench reference app")
lifecycle.install_single_write_response()
globals().update(lifecycle.server_config(_settings, timeout=30, grace_after_drain=25))
