"""``python -m services.worker``: run one agent instance."""

from helm.logs import setup_logging
from helm.runner import main
from helm.settings import load
from services.worker.app import build_app
from services.worker.settings import WorkerSettings

settings = load(WorkerSettings)
setup_logging(f"worker.{settings.agent}", settings.log_level, settings.log_json)
main(lambda: build_app(settings))
