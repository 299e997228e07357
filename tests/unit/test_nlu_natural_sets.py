"""The natural NLU test sets (issue 13 item 7) stay held out, big enough, and complete."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.nlu_natural import load_examples, normalise, parse_annotated, score, table, training_texts

ROOT = Path(__file__).resolve().parents[2]
SETS = [ROOT / "tests" / "nlu" / "natural_zh.yml", ROOT / "tests" / "nlu" / "natural_en.yml"]


def _intents() -> set[str]:
    events = {"start", "start_survey", "dtmf", "no_input", "line_test_poll", "recorded", "return_to_bot"}
    names: set[str] = set()
    for path in (ROOT / "nlu" / "domain").glob("*.yml"):
        for intent in yaml.safe_load(path.read_text(encoding="utf-8")).get("intents") or []:
            names.add(intent if isinstance(intent, str) else next(iter(intent)))
    return (names - events) | {"dtmf"}  # typed keys are a real NLU intent in chat


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.stem)
def test_set_is_big_held_out_and_covers_every_intent(path: Path) -> None:
    examples = load_examples(path)
    assert len(examples) >= 300
    assert len({normalise(e.text) for e in examples}) == len(examples), "duplicates"
    training = training_texts(ROOT / "nlu" / "data" / "nlu")
    shared = [e.text for e in examples if normalise(e.text) in training]
    assert not shared, f"also in the training data (write a different test line): {shared}"
    assert _intents() <= {e.intent for e in examples}
    assert sum(1 for e in examples if e.symptom) >= 80
    assert sum(1 for e in examples for n in e.entities if n["entity"].endswith("_number")) >= 25


def test_annotations_become_text_and_entities() -> None:
    text, entities = parse_annotated('电话[0571 8765]{"entity": "fault_number", "value": "05718765"}坏了 [x](symptom)')
    assert text == "电话0571 8765坏了 x"
    assert entities == [{"entity": "fault_number", "value": "05718765"}, {"entity": "symptom", "value": "x"}]


def test_score_counts_numbers_symptoms_and_false_accepts() -> None:
    rows = [
        {"language": "zh", "text": "号码是0571 8765 0001", "intent": "inform_number",
         "entities": [{"entity": "fault_number", "value": "057187650001"}],
         "predicted_intent": "inform_number", "predicted_entities": []},
        {"language": "zh", "text": "没拨号音", "intent": "symptom_no_dial_tone", "entities": [],
         "predicted_intent": "symptom_noise", "predicted_entities": []},
        {"language": "zh", "text": "我今年七十三了", "intent": "out_of_scope", "entities": [],
         "predicted_intent": "affirm", "predicted_entities": []},
    ]
    result = score(rows)
    assert result["intent_accuracy"] == pytest.approx(1 / 3)
    assert result["numbers_exact"] == 1.0 and result["entity_precision"] == 1.0
    assert result["symptom_accuracy"] == 0.0
    assert (result["oos_false_accepts"], result["oos_total"]) == (1, 1)
    assert "| intent accuracy | 0.333 |" in table({"zh": result})
    unsure = {**rows[2], "predicted_intent": "nlu_fallback"}  # "not understood" either way
    assert score([unsure])["intent_accuracy"] == 1.0 and score([unsure])["oos_false_accepts"] == 0
