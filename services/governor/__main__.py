"""``python -m services.governor``."""

from helm.logs import setup_logging
from helm.runner import main
from helm.settings import load
from services.governor.app import build_app
from services.governor.settings import GovernorSettings

settings = load(GovernorSettings)
setup_logging("governor", settings.log_level, settings.log_json)
main(lambda: build_app(settings))
