"""``python -m services.runtime``."""

from helm.logs import setup_logging
from helm.runner import main
from helm.settings import load
from services.runtime.app import build_app
from services.runtime.settings import RuntimeSettings

settings = load(RuntimeSettings)
setup_logging("runtime", settings.log_level, settings.log_json)
main(lambda: build_app(settings))
