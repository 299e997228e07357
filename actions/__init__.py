"""The Rasa action server (rasa_sdk 3.6, Python 3.10): thin actions over bot/ services.

Empty on purpose: `rasa run actions --actions actions` imports every submodule. The
number rules live in the top-level package telnum/ (pure stdlib), which the bot, the
voice gateway and the NLU pipeline import too; the action server finds it on its
PYTHONPATH (the repository root: bot/dialogue_model.py rasa_env, docker/Dockerfile.rasa).
"""
