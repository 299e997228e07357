"""The Rasa action server (rasa_sdk 3.6, Python 3.10): thin actions over bot/ services."""

from actions.flow import *  # noqa: F401,F403  (rasa_sdk registers Action subclasses on import)
from actions.forms import *  # noqa: F401,F403
