"""What a line-test result means, in plain words for a caller, in both languages.

One place for these texts: the inventory API (A6, the last test on an open fault), the
ticket store (A10, the result played after recording) and the line-test simulator all
read them from here, so the caller hears the same words wherever the result comes from.
"""

from __future__ import annotations

from bot.world.schema import LineTestResultCode

RESULT_SUMMARIES: dict[str, dict[str, str]] = {
    LineTestResultCode.ok.value: {
        "zh": "测试结果：线路正常。如果仍有问题，可能是您的话机或设备故障。",
        "en": "The test found the line in good order; if the problem continues, "
        "it may be your telephone or equipment.",
    },
    LineTestResultCode.open_circuit.value: {
        "zh": "测试结果：线路断线，我们会尽快派人维修。",
        "en": "The test found a break in the line; we will send a repairman.",
    },
    LineTestResultCode.short_circuit.value: {
        "zh": "测试结果：线路短路，我们会尽快派人维修。",
        "en": "The test found a short circuit on the line; we will send a repairman.",
    },
    LineTestResultCode.earth_fault.value: {
        "zh": "测试结果：线路接地故障，我们会尽快派人维修。",
        "en": "The test found the line touching earth; we will send a repairman.",
    },
    LineTestResultCode.high_resistance.value: {
        "zh": "测试结果：线路接触不良，我们会尽快派人维修。",
        "en": "The test found a poor connection on the line; we will send a repairman.",
    },
    LineTestResultCode.foreign_voltage.value: {
        "zh": "测试结果：线路上有外来电压，可能与其他线路碰线，我们会尽快派人维修。",
        "en": "The test found a stray voltage on the line, perhaps touching another line; "
        "we will send a repairman.",
    },
    LineTestResultCode.cpe_fault.value: {
        "zh": "测试结果：外线正常，故障可能在您的话机或室内设备，请检查设备连接。",
        "en": "The test found the outside line in good order; the fault is probably in your "
        "telephone or indoor equipment, please check how it is connected.",
    },
    LineTestResultCode.cannot_test.value: {
        "zh": "这条线路暂时无法自动测试，我们会安排人员检查。",
        "en": "The line could not be tested automatically; someone will check it.",
    },
}

_UNKNOWN = {
    "zh": "测试结果暂时无法说明，我们会安排人员检查。",
    "en": "The test result could not be read; someone will check the line.",
}


def summary_for(code: str) -> dict[str, str]:
    """The caller-facing summary of a result code (a copy; unknown codes get a neutral text)."""
    return dict(RESULT_SUMMARIES.get(code, _UNKNOWN))
