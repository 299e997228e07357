"""The trained Rasa model: trained only when nlu/ changed (content hash)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from bot.settings import REPO_ROOT, Settings

# What the model is trained from; tests/, prompts.yml and the channel code do not change it.
TRAINING_INPUTS = ("config.yml", "domain", "data", "jieba")
RASA_ENV = {
    "RASA_TELEMETRY_ENABLED": "false",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONHASHSEED": "0",
}


def rasa_bin() -> Path:
    return REPO_ROOT / ".venv-rasa" / "bin" / "rasa"


def rasa_env() -> dict[str, str]:
    env = {**os.environ, **RASA_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "nlu"), str(REPO_ROOT)])
    return env


def nlu_hash(nlu_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in TRAINING_INPUTS:
        root = nlu_dir / name
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            digest.update(str(path.relative_to(nlu_dir)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def model_path(settings: Settings) -> Path:
    return settings.models_dir / f"hotline-{nlu_hash(settings.nlu_dir)}.tar.gz"


def ensure_trained(settings: Settings, force: bool = False) -> Path:
    """Train unless a model for exactly this nlu/ content exists."""
    target = model_path(settings)
    if target.exists() and not force:
        print(f"dialogue model up to date: {target.name}", file=sys.stderr)
        return target
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    print(f"training the dialogue model ({target.name}) …", file=sys.stderr)
    nlu = settings.nlu_dir
    subprocess.run(
        [
            str(rasa_bin()), "train",
            "--config", str(nlu / "config.yml"),
            "--domain", str(nlu / "domain"),
            "--data", str(nlu / "data"),
            "--out", str(settings.models_dir),
            "--fixed-model-name", target.name.removesuffix(".tar.gz"),
        ],
        cwd=REPO_ROOT, env=rasa_env(), check=True,
    )
    for old in settings.models_dir.glob("hotline-*.tar.gz"):
        if old != target:
            old.unlink()
    return target


def test_dialogue(settings: Settings) -> int:
    """Rasa test stories for every A-branch; custom actions are not run there, so the
    stories state the slots the actions would set (actions have their own tests)."""
    model = ensure_trained(settings)
    out = REPO_ROOT / "var" / "dialogue-test"
    result = subprocess.run(
        [
            str(rasa_bin()), "test", "core",
            "--model", str(model),
            "--stories", str(settings.nlu_dir / "tests"),
            "--out", str(out),
            "--fail-on-prediction-errors",
        ],
        cwd=REPO_ROOT, env=rasa_env(), check=False,
    )
    failed = out / "failed_test_stories.yml"
    if failed.exists() and "stories: []" not in failed.read_text(encoding="utf-8"):
        print(failed.read_text(encoding="utf-8")[:5000], file=sys.stderr)
    return result.returncode


def nlu_report(report_path: Path) -> str:
    """A readable summary of `rasa test nlu` (its exit code does not reflect F1)."""
    import json

    report = json.loads(report_path.read_text(encoding="utf-8"))
    lines = [f"{'intent':28} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for name, row in sorted(report.items()):
        if isinstance(row, dict) and "f1-score" in row and name not in ("macro avg", "weighted avg", "micro avg"):
            lines.append(f"{name:28} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1-score']:6.3f} {row['support']:8}")
    for name in ("accuracy", "macro avg", "weighted avg"):
        row = report.get(name)
        if isinstance(row, dict):
            lines.append(f"{name:28} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1-score']:6.3f}")
        elif row is not None:
            lines.append(f"{name:28} {row:.3f}")
    return "\n".join(lines)


NATURAL_SETS = ("natural_zh.yml", "natural_en.yml")


def natural_report(settings: Settings, out_dir: Path, cv_report: Path | None = None, folds: int = 5) -> str:
    """Issue 13 item 7: the trained model on the held-out natural test sets (tests/nlu/),
    scored as the README's table; with the cross-validation weighted F1 when given."""
    import json

    from bot.nlu_natural import score_by_language, table

    model = ensure_trained(settings)
    sets = [str(REPO_ROOT / "tests" / "nlu" / name) for name in NATURAL_SETS]
    predictions = out_dir / "natural_predictions.json"
    done = subprocess.run(
        [str(REPO_ROOT / ".venv-rasa" / "bin" / "python"), "-m", "bot.nlu_natural", str(model), str(predictions), *sets],
        cwd=REPO_ROOT, env=rasa_env(), check=False, capture_output=True, text=True,
    )
    if done.returncode != 0:  # Rasa's warnings only when it failed
        print(done.stderr[-5000:], file=sys.stderr)
        done.check_returncode()
    scores = score_by_language(json.loads(predictions.read_text(encoding="utf-8")))
    errors = {lang: s.pop("errors") for lang, s in scores.items()}
    (out_dir / "natural_scores.json").write_text(json.dumps(scores, indent=1), encoding="utf-8")
    (out_dir / "natural_errors.json").write_text(json.dumps(errors, ensure_ascii=False, indent=1), encoding="utf-8")
    cv = None
    if cv_report is not None and cv_report.exists():
        cv = json.loads(cv_report.read_text(encoding="utf-8")).get("weighted avg", {}).get("f1-score")
    return table(scores, cv, folds)
