"""`python -m bot serve` (the bot alone) and `python -m bot run` (the whole stack)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import typer
from aiohttp import web

from bot.app import create_app
from bot.logging import configure_logging
from bot.settings import REPO_ROOT, get_settings


def serve_command() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)


MAX_RESTARTS = 5  # of dead services within RESTART_WINDOW_S, before `run` gives up
RESTART_WINDOW_S = 120.0


def run_command(
    world: Path = typer.Option(None, help="World file to load first (default: the demo world)."),
    no_world: bool = typer.Option(False, "--no-world", help="Keep the world already loaded."),
) -> None:
    from bot.stack import Stack
    from bot.world.loader import load_world_file

    settings = get_settings()
    if not no_world:
        from bot.world.parse import WorldFileError

        try:
            print(f"world: {load_world_file(world or settings.world_file, False, settings)}", file=sys.stderr)
        except WorldFileError as exc:
            print(str(exc), file=sys.stderr)
            raise typer.Exit(2) from exc
        from bot.desk.users import ensure_demo_users, is_demo_world
        from bot.store.db import Database

        if is_demo_world(world or settings.world_file):  # demo accounts only ever with the demo world
            db = Database.from_settings(settings)
            try:
                print(f"desk: demo accounts created: {', '.join(ensure_demo_users(db)) or 'none (all exist)'}",
                      file=sys.stderr)
            finally:
                db.dispose()
    log_dir = REPO_ROOT / "var" / "log"
    stack = Stack.build(settings, log_dir)

    def _stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print("starting Rasa, the action server, the line-test unit and the bot …", file=sys.stderr)
    stack.start()
    try:
        stack.wait_ready()
        s = settings
        print(
            f"""
hotline is running (logs in {log_dir}):
  web chat          {s.bot_url}/
  chat API          POST {s.bot_url}/api/chat/<conversation-id>
  ticket API        {s.bot_url}/tmf-api/troubleTicket/v5/troubleTicket
  metrics / health  {s.bot_url}/metrics  {s.bot_url}/healthz
  Rasa              {s.rasa_url}   actions http://127.0.0.1:{s.action_port}
  line-test unit    {s.linetest_url}
  phone (ESL)       {f"{s.esl_host}:{s.esl_port} (FreeSWITCH: socket … async full)" if s.voice_enabled else "off"}
  terminal chat     .venv/bin/python -m bot chat
Press Ctrl-C to stop.""",
            file=sys.stderr,
        )
        # A service that dies (a crash, a kill) is started again; conversations go on where
        # they were (README, "After a restart"). One that keeps dying stops the stack.
        restarts: list[float] = []
        while True:
            time.sleep(1)
            dead = [svc.name for svc in stack.services if svc.process and svc.process.poll() is not None]
            if not dead:
                continue
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < RESTART_WINDOW_S] + [now]
            if len(restarts) > MAX_RESTARTS:
                print(f"stopping: {', '.join(dead)} keeps exiting (see {log_dir})", file=sys.stderr)
                break
            print(f"{', '.join(dead)} exited; starting it again (see {log_dir})", file=sys.stderr)
            stack.start(set(dead))
            stack.wait_ready()
    except KeyboardInterrupt:
        print("\nstopping …", file=sys.stderr)
    finally:
        stack.stop()
