from actions.interpret import (
    INVALID_CHOICE,
    NO_INPUT,
    NOT_UNDERSTOOD,
    SYMPTOM_INTENTS,
    SYMPTOM_KEYS,
    YES_NO_INTENTS,
    YES_NO_KEYS,
    Rejection,
    choose,
    read_input,
    symptom_from,
)


def msg(text, intent, entities=None):
    return {"text": text, "intent": {"name": intent}, "entities": entities or []}


def test_keypad_digits_come_from_the_entity():
    ui = read_input(msg('/dtmf{"digits":"057187654321#"}', "dtmf", [{"entity": "digits", "value": "057187654321#"}]))
    assert ui.keys == "057187654321#" and ui.digits == "057187654321" and not ui.silent


def test_a_typed_key_means_the_same_as_a_pressed_one():
    assert choose(read_input(msg("1", "dtmf")), YES_NO_KEYS, YES_NO_INTENTS) is True
    assert choose(read_input(msg("按2", "affirm")), YES_NO_KEYS, YES_NO_INTENTS) is False


def test_silence_and_nonsense_are_never_yes():
    assert choose(read_input(msg("/no_input", "no_input")), YES_NO_KEYS, YES_NO_INTENTS) == Rejection(NO_INPUT)
    for text, intent in [("今天天气怎么样", "out_of_scope"), ("asdfgh", "nlu_fallback")]:
        assert choose(read_input(msg(text, intent)), YES_NO_KEYS, YES_NO_INTENTS) == Rejection(NOT_UNDERSTOOD)


def test_a_key_that_is_not_offered_is_invalid():
    assert choose(read_input(msg("/dtmf", "dtmf", [{"entity": "digits", "value": "7"}])), YES_NO_KEYS) == Rejection(INVALID_CHOICE)


def test_words_for_numbers():
    assert read_input(msg("我的电话是幺三八 零零幺三 八零零零", "inform_number")).digits == "13800138000"


def test_symptoms_by_key_by_intent_and_free_words():
    assert symptom_from(read_input(msg("/dtmf", "dtmf", [{"entity": "digits", "value": "5"}]))) == "broadband_down"
    assert symptom_from(read_input(msg("电话里全是沙沙声", "symptom_noise"))) == "noise"
    assert symptom_from(read_input(msg("电话时好时坏说不上来", "nlu_fallback"))) == "other"
    assert isinstance(symptom_from(read_input(msg("asdfgh", "nlu_fallback"))), Rejection)
    assert isinstance(symptom_from(read_input(msg("今天天气怎么样", "out_of_scope"))), Rejection)
    assert set(SYMPTOM_KEYS.values()) == set(SYMPTOM_INTENTS.values())


def test_typed_key_words_count_as_keys():
    for text in ("一", "按一", "幺", "１", "one", "按1键"):
        assert choose(read_input(msg(text, "dtmf")), YES_NO_KEYS, YES_NO_INTENTS) is True, text
    assert read_input(msg("帮我查一下", "out_of_scope")).keys == ""


def test_a_polite_goodbye_answers_an_offer_with_no():
    from actions.interpret import OFFER_INTENTS

    assert choose(read_input(msg("不用了谢谢", "goodbye")), YES_NO_KEYS, OFFER_INTENTS) is False


def test_fault_words_the_nlu_placed_elsewhere_are_kept_as_other():
    assert symptom_from(read_input(msg("电话不太正常啊", "report_fault"))) == "other"
    assert symptom_from(read_input(msg("以上都不是的问题", "deny"))) == "other"
