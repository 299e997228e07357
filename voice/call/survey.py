"""U3: the satisfaction survey's call, once the reporter answered the bot's call
(purpose ``survey``, voice/outbound.py): the same phone conversation as an inbound call
(keys, speech, the recorded comment, silence as ``/no_input``), opened with the survey
the call is for (``/start_survey{"survey_id"}``) instead of the main menu. The dialogue
is the designers' survey in Rasa (nlu/domain/survey.yml); the answers are stored by its
actions as they are given, and a hang-up ends the conversation, which keeps them and
where it stopped (bot.store.surveys.conversation_ended).

Unlike a caller who dialled in, a surveyed reporter is never put through to the
operator queue when the dialogue is out of reach: the bot says sorry and hangs up, and
the attempt counts as not reached (bot/survey/caller.py calls again later).
"""

from __future__ import annotations

import contextlib

from bot.chat.prompts import Language
from bot.chat.service import ChatInput
from voice.call.conversation import CallSession
from voice.call.media_session import CallDeps, Outcome
from voice.call.outbound import OutboundLine
from voice.esl import EslCallConnection, EslError


class SurveyCallSession(CallSession):
    def __init__(self, conn: EslCallConnection, deps: CallDeps, line: OutboundLine, survey_id: int,
                 language: Language = "zh") -> None:
        super().__init__(conn, deps)
        self.line = line
        self.survey_id = survey_id
        self.language = language

    def first_input(self) -> ChatInput:
        return ChatInput(event="start_survey", survey_id=self.survey_id,
                         metadata={"call_id": self.call_id, "survey_id": str(self.survey_id)})

    async def run(self) -> Outcome:
        await self.line.started(self.call_id)
        try:
            return await super().run()
        finally:
            info = self.conn.hangup_info
            self.line.ended(info.cause if info else None)

    async def _apologise_and_transfer(self, reason: str) -> None:
        assert self._ep is not None
        self._barge_allowed = False
        await self._ep.play_stream(self.deps.speech_out.speak(APOLOGY_SURVEY[self.language], self.language,
                                                              self.fmt.sample_rate))
        with contextlib.suppress(EslError):
            await self.conn.hangup()


# Said when the dialogue cannot go on (Rasa or the action server down): the designers'
# prompts are out of reach then, so this one lives with the channel (as APOLOGY does).
APOLOGY_SURVEY: dict[Language, str] = {
    "zh": "对不起，系统暂时出现问题，我们稍后再联系您，再见。",
    "en": "Sorry, we are having a technical problem. We will call you again later. Goodbye.",
}
