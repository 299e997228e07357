"""NLU quality on the held-out natural test sets (issue 13 item 7; `make nlu-report`).

Two halves, because Rasa lives in its own virtualenv:

- ``python -m bot.nlu_natural MODEL OUT.json SET.yml…`` runs in ``.venv-rasa``: it parses
  every utterance of the test sets with the trained model and writes the predictions;
- :func:`score` and :func:`table` (stdlib only) turn predictions into the numbers the
  README shows: intent accuracy, per-intent F1, entity precision/recall, numbers extracted
  exactly, symptom category (A8) accuracy, and out-of-scope text taken as yes / a number /
  a symptom (which must never happen).

Numbers: where the model itself gives no ``fault_number``/``contact_number`` entity, the
digits the actions would take from the text (``telnum.extract_digits``, a run of at
least 7 digits) count as a number without a role, as the dialogue does today.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from telnum import extract_digits

NUMBER_ENTITIES = ("fault_number", "contact_number")
SYMPTOM_PREFIX = "symptom_"
# Out-of-scope text must never be taken as one of these (issue 13 item 7).
FALSE_ACCEPT_INTENTS = {"affirm", "inform_number", "dtmf"}
UNSURE = "nlu_fallback"
_ANNOTATION = re.compile(r"\[([^\]]+)\](\{[^}]*\}|\(([^)]+)\))")


@dataclass
class Example:
    text: str
    intent: str
    entities: list[dict[str, str]] = field(default_factory=list)
    language: str = ""

    @property
    def symptom(self) -> str | None:
        if self.intent.startswith(SYMPTOM_PREFIX):
            return self.intent.removeprefix(SYMPTOM_PREFIX)
        return next((e["value"] for e in self.entities if e["entity"] == "symptom"), None)


def parse_annotated(line: str) -> tuple[str, list[dict[str, str]]]:
    """Rasa's ``[text]{"entity": …, "value": …}`` / ``[text](entity)`` markup → plain text + entities."""
    entities: list[dict[str, str]] = []
    out, pos = [], 0
    for match in _ANNOTATION.finditer(line):
        out.append(line[pos:match.start()])
        surface = match.group(1)
        if match.group(3):
            entity, value = match.group(3), surface
        else:
            spec = json.loads(match.group(2))
            entity, value = spec["entity"], str(spec.get("value", surface))
        entities.append({"entity": entity, "value": value})
        out.append(surface)
        pos = match.end()
    out.append(line[pos:])
    return "".join(out), entities


def load_examples(path: Path) -> list[Example]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    language = "en" if path.stem.endswith("_en") else "zh"
    examples = []
    for block in data.get("nlu") or []:
        if "intent" not in block:
            continue
        for raw in str(block["examples"]).splitlines():
            raw = raw.strip()
            if not raw.startswith("- "):
                continue
            text, entities = parse_annotated(raw[2:].strip())
            examples.append(Example(text, block["intent"], entities, language))
    return examples


def training_texts(nlu_data: Path) -> dict[str, str]:
    """Normalised training text → intent, for the held-out check."""
    texts = {}
    for path in sorted(nlu_data.rglob("*.yml")):
        for example in load_examples(path):
            texts[normalise(example.text)] = example.intent
    return texts


def normalise(text: str) -> str:
    """Case, spaces and sentence punctuation do not make a different utterance."""
    squeezed = re.sub(r"\s+", "", text.lower())
    return squeezed.rstrip(",.!?，。！？、~") or squeezed


# ---------------------------------------------------------------- predicting (Rasa venv)

def predict(model: Path, sets: list[Path]) -> list[dict[str, Any]]:
    import asyncio

    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    rows = []
    for path in sets:
        for example in load_examples(path):
            parsed = asyncio.run(agent.parse_message(example.text))
            rows.append({
                "language": example.language,
                "text": example.text,
                "intent": example.intent,
                "entities": example.entities,
                "predicted_intent": (parsed.get("intent") or {}).get("name") or "",
                "confidence": (parsed.get("intent") or {}).get("confidence") or 0.0,
                "ranking": [[r.get("name"), round(float(r.get("confidence") or 0.0), 3)]
                            for r in (parsed.get("intent_ranking") or [])[:3]],
                "predicted_entities": [
                    {"entity": e.get("entity"), "value": str(e.get("value"))}
                    for e in parsed.get("entities") or []
                ],
            })
    return rows


# ---------------------------------------------------------------- scoring (either venv)

def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def predicted_numbers(row: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(e["entity"], _digits(e["value"])) for e in row["predicted_entities"] if e["entity"] in NUMBER_ENTITIES]
    if found:
        return found
    digits = extract_digits(row["text"])
    return [("number", digits)] if len(digits) >= 7 else []


def predicted_symptom(row: dict[str, Any]) -> str | None:
    intent = row["predicted_intent"]
    if intent.startswith(SYMPTOM_PREFIX):
        return str(intent.removeprefix(SYMPTOM_PREFIX))
    return next((e["value"] for e in row["predicted_entities"] if e["entity"] == "symptom"), None)


def _f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score(rows: list[dict[str, Any]]) -> dict[str, Any]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    support: Counter[str] = Counter()
    ent_tp = ent_fp = ent_fn = 0
    symptom_total = symptom_right = 0
    oos_total = oos_false_accepts = 0
    errors = []
    for row in rows:
        gold, guess = row["intent"], row["predicted_intent"]
        if gold == "out_of_scope" and guess == UNSURE:
            guess = gold  # both mean "not understood" to the dialogue (actions/interpret.py)
        support[gold] += 1
        if gold == guess:
            tp[gold] += 1
        else:
            fn[gold] += 1
            fp[guess] += 1
            errors.append({"text": row["text"], "intent": gold, "predicted": guess})
        expected = [(e["entity"], _digits(e["value"])) for e in row["entities"] if e["entity"] in NUMBER_ENTITIES]
        got = predicted_numbers(row)
        unmatched = list(got)
        for entity, digits in expected:
            hit = next((g for g in unmatched if g[1] == digits and g[0] in (entity, "number")), None)
            if hit:
                ent_tp += 1
                unmatched.remove(hit)
            else:
                ent_fn += 1
        ent_fp += len(unmatched)
        expected_symptom = Example(row["text"], gold, row["entities"]).symptom
        if expected_symptom:
            symptom_total += 1
            symptom_right += predicted_symptom(row) == expected_symptom
        if gold == "out_of_scope":
            oos_total += 1
            if guess in FALSE_ACCEPT_INTENTS or predicted_symptom(row) or got:
                oos_false_accepts += 1
    per_intent = {}
    for intent in sorted(support):
        p, r, f = _f1(tp[intent], fp[intent], fn[intent])
        per_intent[intent] = {"precision": p, "recall": r, "f1": f, "support": support[intent]}
    total = sum(support.values())
    ent_p, ent_r, _ = _f1(ent_tp, ent_fp, ent_fn)
    return {
        "examples": total,
        "intent_accuracy": sum(tp.values()) / total if total else 0.0,
        "weighted_f1": sum(v["f1"] * v["support"] for v in per_intent.values()) / total if total else 0.0,
        "entity_precision": ent_p,
        "entity_recall": ent_r,
        "numbers_exact": ent_tp / (ent_tp + ent_fn) if ent_tp + ent_fn else 1.0,
        "symptom_accuracy": symptom_right / symptom_total if symptom_total else 1.0,
        "oos_false_accepts": oos_false_accepts,
        "oos_total": oos_total,
        "per_intent": per_intent,
        "errors": errors,
    }


def score_by_language(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by[row["language"]].append(row)
    return {lang: score(by[lang]) for lang in sorted(by)}


def table(scores: dict[str, dict[str, Any]], cv_weighted_f1: float | None = None, folds: int = 5) -> str:
    """The README's table: one column per language."""
    langs = list(scores)
    head = "| | " + " | ".join(langs) + " |"
    lines = [head, "|---|" + "---:|" * len(langs)]

    def row(label: str, fmt: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(fmt(scores[lang]) for lang in langs) + " |")

    row("utterances", lambda s: str(s["examples"]))
    row("intent accuracy", lambda s: f"{s['intent_accuracy']:.3f}")
    row("intent weighted F1", lambda s: f"{s['weighted_f1']:.3f}")
    row("entity precision (numbers)", lambda s: f"{s['entity_precision']:.3f}")
    row("entity recall (numbers)", lambda s: f"{s['entity_recall']:.3f}")
    row("numbers extracted exactly", lambda s: f"{s['numbers_exact']:.3f}")
    row("symptom category (A8)", lambda s: f"{s['symptom_accuracy']:.3f}")
    row("out-of-scope taken as yes/number/symptom", lambda s: f"{s['oos_false_accepts']}/{s['oos_total']}")
    intents = sorted({i for s in scores.values() for i in s["per_intent"]})
    for intent in intents:
        row(f"F1 {intent}", lambda s, i=intent: f"{s['per_intent'][i]['f1']:.2f}" if i in s["per_intent"] else "–")
    if cv_weighted_f1 is not None:
        lines.append(f"\n{folds}-fold cross-validation weighted F1 (training data): {cv_weighted_f1:.3f}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: python -m bot.nlu_natural MODEL OUT.json SET.yml…", file=sys.stderr)
        return 2
    rows = predict(Path(argv[0]), [Path(p) for p in argv[2:]])
    Path(argv[1]).parent.mkdir(parents=True, exist_ok=True)
    Path(argv[1]).write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
