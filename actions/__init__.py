"""The Rasa action server (rasa_sdk 3.6, Python 3.10): thin actions over bot/ services.

Empty on purpose: `rasa run actions --actions actions` imports every submodule, and the
bot (another virtualenv, without rasa_sdk) imports actions.numbers from here.
"""
