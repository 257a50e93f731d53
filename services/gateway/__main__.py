"""``python -m services.gateway``: the dashboard, REST API and WebSocket."""

from helm.logs import setup_logging
from helm.runner import main
from helm.settings import load
from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings

settings = load(GatewaySettings)
setup_logging("gateway", settings.log_level, settings.log_json)
main(lambda: build_app(settings))
