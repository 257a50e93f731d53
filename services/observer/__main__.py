"""``python -m services.observer``."""

import gc

from helm.logs import setup_logging
from helm.runner import main
from helm.settings import load
from services.observer.app import build_app
from services.observer.settings import ObserverSettings

settings = load(ObserverSettings)
setup_logging("observer", settings.log_level, settings.log_json)
gc.freeze()  # one model per event is garbage at once: full collections skip the imported heap
main(lambda: build_app(settings))
