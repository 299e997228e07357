"""The one typed settings object. Every value can be set by an environment variable
``HOTLINE_<NAME>`` (e.g. ``HOTLINE_DATABASE_URL``); nested values use ``__``."""

from __future__ import annotations

import re
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_nested_delimiter="__", extra="ignore")

    # --- the bot's HTTP server (chat API, ticket API, inventory, web chat) ---
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # how actions reach the bot; default http://host:port

    # --- stores ---
    database_url: str = f"sqlite:///{REPO_ROOT / 'var' / 'hotline.db'}"

    # --- the dialogue ---
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_port: int = 5005
    action_port: int = 5055
    rasa_timeout_s: float = 20.0
    # One turn at a time per conversation: a second input waits this long for the one
    # still running, then gets 409 "a reply is still on its way" (issue 14).
    chat_turn_wait_s: float = Field(default=5.0, ge=0)
    # Web-chat inputs in the dialogue at once, per bot process; more wait (the turn wait), then 429.
    dialogue_max_turns: int = Field(default=8, ge=1)
    nlu_dir: Path = REPO_ROOT / "nlu"
    models_dir: Path = REPO_ROOT / "models" / "dialogue"
    tracker_db: Path = REPO_ROOT / "var" / "rasa-tracker.db"  # Rasa's conversations (SQLite)

    # --- the line-test unit (the simulator by default; a real unit by URL) ---
    linetest_url: str = "http://127.0.0.1:8090"
    linetest_host: str = "127.0.0.1"
    linetest_port: int = 8090
    linetest_duration_s: float = 3.0  # how long the simulator takes for one test
    line_test_max_wait_s: float = 20.0  # A8: the dialogue stops waiting after this

    # --- numbers ---
    local_area_code: str = "0571"  # A2: fixed-line numbers entered without area code

    # --- operator seats (A3 note 1: transfer when the centre is open, else goodbye) ---
    centre_open_hours: str = "00:00-24:00"  # local time, HH:MM-HH:MM
    timezone: str = "Asia/Shanghai"

    # --- the world ---
    world_file: Path = REPO_ROOT / "bot" / "world" / "demo.yml"
    # The world last loaded, copied here by `world load` so the line-test simulator
    # (a separate process) follows the same world as the stores.
    current_world_file: Path = REPO_ROOT / "var" / "world.yml"

    # --- the operator desk (bot/desk/) ---
    desk_session_hours: float = Field(default=12, gt=0)  # a sign-in lasts this long at most
    desk_secure_cookies: bool = False  # True behind HTTPS; False lets the cookie work on http://127.0.0.1
    # M3: compensation for our own overdue faults; the branch pays. Overdue by more than
    # this many hours past the centre's completion deadline → eligible, amount by customer
    # type (HOTLINE_COMPENSATION_AMOUNTS='{"residential": 20, "business": 100}').
    compensation_after_overdue_hours: float = Field(default=24, ge=0)
    compensation_amounts: dict[str, float] = Field(default_factory=lambda: {"residential": 20.0, "business": 100.0})
    compensation_big_customer_amount: float = Field(default=200, ge=0)
    compensation_currency: str = "CNY"

    # --- statistics and reports (T1–T5, bot/stats/) ---
    # A day's rollup is recounted until it was refreshed this many days after it ended
    # (late changes: a fault classified at dispatch, a receipt); then it is only read.
    stats_settle_days: float = Field(default=7, ge=0)
    stats_dashboard_fresh_s: float = Field(default=30, ge=0)  # the dashboard recounts today at most this often
    stats_font_file: Path | None = None  # a CJK TrueType font for charts and PDFs (default: found on the system)
    stats_rollup_at: str = Field(default="01:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # local time of the nightly recount of the last days (HH:MM)
    stats_reports_at: str = Field(default="06:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # local time of the daily check for due reports (HH:MM)
    # --- Q1-Q8: quality inspection (bot/quality/) ---
    qa_sample_rate: float = Field(default=0.05, gt=0, le=1)  # Q1: the daily sample's share of each post's work (at least one)
    qa_sample_at: str = Field(default="03:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # local time of the daily draw of the day before (HH:MM)
    qa_seed: str = Field(default="hotline-qa", min_length=1, max_length=40)  # the draw's random seed (with the day and post)
    qa_scorecards_file: Path = REPO_ROOT / "bot" / "quality" / "scorecards.yml"  # the posts' scorecards (designers edit it)
    qa_handoff_max_passes: int = Field(default=3, ge=1)  # Q6: a contact passed between posts more often is flagged
    qa_handoff_max_wait_min: float = Field(default=30, gt=0)  # Q6: a contact waiting between posts longer is flagged
    # --- the job scheduler (bot/jobs/): one leader per database runs every job ---
    jobs_enabled: bool = True  # false: this process never leads (it can still schedule jobs)
    jobs_poll_s: float = Field(default=2.0, gt=0)  # how often the leader looks for due one-off jobs
    jobs_leader_retry_s: float = Field(default=5.0, gt=0)  # non-leaders try to take the lead this often
    jobs_max_attempts: int = Field(default=5, ge=1)  # a failed job is tried at most this often
    jobs_retry_base_s: float = Field(default=30.0, gt=0)  # first retry after this, then doubling …
    jobs_retry_max_s: float = Field(default=3600.0, gt=0)  # … up to this
    jobs_timeout_s: float = Field(default=600.0, gt=0)  # a run taking longer has failed
    jobs_max_concurrent: int = Field(default=8, ge=1)  # one-off jobs running at once on the leader
    jobs_history_days: float = Field(default=30, gt=0)  # finished runs are kept this long

    # --- U1-U2: the deadline watch (bot/sla/) ---
    sla_warn_at: float = Field(default=0.8, gt=0, lt=1)  # warn the centre at this share of its deadline
    sla_sweep_s: float = Field(default=60.0, gt=0)  # how often every dispatched ticket is looked at
    # --- D1: the nightly archive (a job at this hour, local time, archives the day before) ---
    archive_hour: int = Field(default=2, ge=0, le=23)

    # --- chat sessions ---
    chat_idle_timeout_s: float = 900.0  # a silent chat counts as abandoned after this

    # --- J1: a caller waiting for an operator (bot/store/handoffs.py; web chat and phone) ---
    handoff_offer_seconds: float = Field(default=15, gt=0)  # offer a return to the bot after/every this long
    handoff_poll_seconds: float = Field(default=1.0, gt=0)  # a call on hold checks its handoff this often
    handoff_chat_leave_grace_s: float = Field(default=10, ge=0)  # a closed chat left unless it polls again (reload)
    handoff_chat_gone_s: float = Field(default=90, gt=0)  # a waiting chat that stopped polling this long left

    # --- the phone (voice/): FreeSWITCH dials the ESL outbound server per call ---
    voice_enabled: bool = True
    esl_host: str = "127.0.0.1"
    esl_port: int = 8084
    esl_linger_s: int = 30
    # Our control connection to FreeSWITCH's inbound event socket (health on /healthz);
    # off while no password is set. The same HOTLINE_ESL_PASSWORD FreeSWITCH reads
    # (freeswitch/vars.xml), and FreeSWITCH's listen address (docker-compose.yml).
    esl_password: SecretStr | None = None
    fs_esl_listen_ip: str = "127.0.0.1"
    fs_esl_listen_port: int = 8021
    # Our end of each call's unicast audio (UDP), and FreeSWITCH's end: every call
    # needs its own port on both sides (FreeSWITCH binds local-ip:local-port per call).
    media_ip: str = "127.0.0.1"
    media_port_min: int = 40000
    media_port_max: int = 40999
    fs_media_ip: str = "127.0.0.1"
    fs_media_port_min: int = 41000
    fs_media_port_max: int = 41999
    media_dead_after_s: float = 5.0  # no audio this long: the call is gone
    # Outbound calls the bot places (voice/outbound.py): originate over the control
    # connection, the answered call comes back to the ESL server above. {number} is the
    # callee's canonical digits; the carrier gateway is freeswitch/sip_profiles/external/.
    outbound_dial_string: str = "sofia/gateway/carrier/{number}"
    outbound_caller_id_number: str = "0000000000"
    outbound_caller_id_name: str = "Hotline"
    outbound_max_concurrent: int = Field(default=4, ge=1)  # one more is refused (429), not queued
    outbound_ring_timeout_s: int = Field(default=45, ge=1, le=600)  # originate_timeout
    handoff_extension: str = "handoff"  # freeswitch/dialplan/default.xml
    handoff_context: str = "default"
    # Speech models (python -m bot models fetch); a path overrides what models/ holds.
    speech_models_dir: Path = REPO_ROOT / "models"
    vosk_model_zh: Path | None = None
    vosk_model_en: Path | None = None
    piper_voice_zh: Path | None = None
    piper_voice_en: Path | None = None
    keypad_only: bool = False  # no speech recognition even when a model is there
    vad_aggressiveness: int = Field(default=2, ge=0, le=3)
    vad_min_speech_ms: int = 200  # speech this long is the caller talking (and barges in)
    vad_end_silence_ms: int = 700  # silence this long ends an utterance (free speech)
    vad_end_silence_choice_ms: int = 300  # … an answer to a menu or yes/no prompt
    vad_end_silence_digits_ms: int = 600  # … spoken digits (callers pause between groups)
    recording_silence_ms: int = 3000  # A11: silence this long ends a voice message
    tts_cache_dir: Path = REPO_ROOT / "var" / "tts-cache"
    recordings_dir: Path = REPO_ROOT / "var" / "recordings"
    # Q2: every bridged operator call is recorded by FreeSWITCH (record_session, stereo:
    # caller left, operator right, 8 kHz WAV). FreeSWITCH writes into fs_recordings_dir
    # (the folder as FreeSWITCH sees it; empty: call_recordings_dir itself, both on one
    # host) and the bot reads the same files from call_recordings_dir (a shared volume
    # with compose). Recordings older than the retention are deleted by a sweep.
    call_recording_enabled: bool = True
    call_recordings_dir: Path = REPO_ROOT / "var" / "call-recordings"
    fs_recordings_dir: str = ""
    call_recording_retention_days: float = Field(default=90, gt=0)
    call_recording_sweep_s: float = Field(default=3600, gt=0)  # how often the retention sweep runs

    # --- the satisfaction survey (U3–U5, bot/store/surveys.py, README "The survey") ---
    survey_attempts: int = Field(default=3, ge=1, le=10)  # calls to one reporter at most
    survey_retry_hours: float = Field(default=2, gt=0)  # between one attempt and the next
    survey_calling_hours: str = "09:00-20:00"  # local (HOTLINE_TIMEZONE); no calls outside
    survey_satisfied_from: int = Field(default=4, ge=1, le=5)  # a rating below this is dissatisfied (U4)
    survey_chat_wait_days: float = Field(default=3, gt=0)  # a chat reporter not back by then: called instead
    # The signed survey links' HMAC key; empty: one is made per install and stored.
    survey_link_secret: SecretStr | None = None
    survey_link_days: float = Field(default=7, gt=0)  # a link works this long (and once)
    survey_sweep_s: float = Field(default=600, gt=0)  # the survey sweep job (expired chats, due calls)

    # Staff API token: other systems' access to the staff APIs (acts as the "api" role).
    staff_api_token: SecretStr | None = None
    # What the action server sends to record reports, outcomes and handoffs and to read
    # lines and tickets (bot/api/auth.py); `make run` makes one per start when unset.
    internal_api_token: SecretStr | None = None

    log_level: str = "INFO"
    log_json: bool = True

    demo_mode: bool = Field(default=False, description="load the demo world on start")

    # The simulated line-test unit's test heads: tests beyond this many wait (A8).
    linetest_heads: int = Field(default=4, ge=1)

    @property
    def bot_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @model_validator(mode="after")
    def _call_recordings_have_their_own_folder(self) -> Settings:
        # The retention sweep deletes old WAVs in call_recordings_dir: never the callers' messages.
        if self.call_recordings_dir.resolve() == self.recordings_dir.resolve():
            raise ValueError("HOTLINE_CALL_RECORDINGS_DIR must not be HOTLINE_RECORDINGS_DIR "
                             "(old call recordings are deleted there after the retention)")
        return self

    @model_validator(mode="after")
    def _survey_calling_hours_read(self) -> Settings:
        parse_hours(self.survey_calling_hours)
        return self

    @property
    def fs_recordings_path(self) -> str:
        """Where FreeSWITCH writes call recordings, as FreeSWITCH sees the folder."""
        return self.fs_recordings_dir.rstrip("/") or str(self.call_recordings_dir.resolve())


_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_hours(text: str) -> tuple[time, time | None]:
    """``"09:00-20:00"`` → (09:00, 20:00); an end of 24:00 is None (midnight). For
    HOTLINE_SURVEY_CALLING_HOURS (bot/store/surveys.py)."""
    m = _HOURS.match(text or "")
    if m is None:
        raise ValueError(f"calling hours {text!r}: write HH:MM-HH:MM, e.g. 09:00-20:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise ValueError(f"calling hours {text!r}: not a time of day")
    start, end = time(h1, m1), None if h2 == 24 else time(h2, m2)
    if end is not None and end <= start:
        raise ValueError(f"calling hours {text!r}: the end must come after the start")
    return start, end


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def _settings_key() -> web.AppKey[Settings]:
    from aiohttp import web

    return web.AppKey("settings", Settings)


SETTINGS_KEY = _settings_key()

