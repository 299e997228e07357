"""The FreeSWITCH configuration tree (freeswitch/) and the production compose file.

FreeSWITCH cannot run here, so these tests check what can be checked without it:
every file is well-formed XML, the tree assembles the way FreeSWITCH's preprocessor
assembles it (line-based includes, ``$${var}`` expansion, ``set``/``env-set``), and the
properties the hotline relies on hold: the bot is reached by ``socket … async full``
with a fallback after it, the event socket never uses "ClueCon" and is behind an ACL,
and nothing in the dialplan can dial out (toll fraud).
"""

from __future__ import annotations

import glob
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FS = ROOT / "freeswitch"
XML_FILES = sorted(FS.rglob("*.xml"))
PRE = re.compile(r"<X-PRE-PROCESS\s+cmd=\"([^\"]+)\"\s+data=\"([^\"]*)\"\s*/>", re.IGNORECASE)
GLOBAL_VAR = re.compile(r"\$\$\{([^}]+)\}")

# What FreeSWITCH computes itself before reading vars.xml (stand-ins).
CORE_VARS = {"local_ip_v4": "192.0.2.10", "log_dir": "/var/log/freeswitch",
             "sounds_dir": "/usr/share/freeswitch/sounds", "hostname": "fs1"}


def assemble(env: dict[str, str], exec_output: str | None = "Rand0mSecret") -> tuple[str, dict[str, str]]:
    """Assemble freeswitch.xml as FreeSWITCH's preprocessor does (src/switch_xml.c):
    line by line, ``$${var}`` expanded first (unknown variables become empty), lines
    with <include>/</include>/<? dropped, one preprocessor command per line, include
    globs relative to the including file's folder. ``exec_output`` stands for what the
    exec-set shell command prints (None: the command failed)."""
    variables = dict(CORE_VARS)
    out: list[str] = []

    def expand(line: str) -> str:
        return GLOBAL_VAR.sub(lambda m: variables.get(m.group(1), ""), line)

    def run(path: Path) -> None:
        for raw in path.read_text(encoding="utf-8").splitlines(keepends=True):
            line = expand(raw)
            if "<include>" in line or "</include>" in line or "<?" in line:
                continue
            if "x-pre-process" in line.lower():
                m = PRE.search(line)
                assert m, f"{path}: unparsable preprocessor line {raw!r}"
                cmd, data = m.group(1).lower(), m.group(2)
                name, _, value = data.partition("=")
                if cmd == "set":
                    variables[name.strip()] = value.strip()
                elif cmd == "env-set":
                    assert value.startswith("$"), f"{path}: env-set needs name=$ENV: {raw!r}"
                    if value[1:] in env:
                        variables[name] = env[value[1:]]
                elif cmd == "exec-set":
                    if exec_output:
                        variables[name.strip()] = exec_output
                elif cmd == "include":
                    for inc in sorted(glob.glob(str(path.parent / data))):
                        run(Path(inc))
                else:
                    raise AssertionError(f"{path}: unexpected preprocessor command {cmd}")
                continue
            out.append(line)

    run(FS / "freeswitch.xml")
    return "".join(out), variables


PROD_ENV = {
    "HOTLINE_ESL_PASSWORD": "s3cretEslPassw0rd",
    "HOTLINE_FS_DOMAIN": "sip.hotline.example",
    "HOTLINE_FS_TRUNK_CIDR": "203.0.113.0/28,198.51.100.7/32",
    "HOTLINE_FS_SERVICE_NUMBER": "112",
    **{f"HOTLINE_FS_OPERATOR_PASSWORD_{ext}": f"op{ext}pw" for ext in
       ("2001", "2002", "2003", "2004", "3001", "3002")},
}


@pytest.fixture(scope="module")
def tree() -> ET.Element:
    text, _ = assemble(PROD_ENV)
    return ET.fromstring(text)


@pytest.fixture(scope="module")
def variables() -> dict[str, str]:
    return assemble(PROD_ENV)[1]


def config(tree: ET.Element, name: str) -> ET.Element:
    node = tree.find(f"./section[@name='configuration']/configuration[@name='{name}']")
    assert node is not None, f"{name} is not in the assembled configuration"
    return node


def params(node: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in node.iter("param")}


def context(tree: ET.Element, name: str) -> ET.Element:
    node = tree.find(f"./section[@name='dialplan']/context[@name='{name}']")
    assert node is not None, f"dialplan context {name} missing"
    return node


def extension(ctx: ET.Element, name: str) -> ET.Element:
    node = ctx.find(f"extension[@name='{name}']")
    assert node is not None, f"extension {name} missing in {ctx.get('name')}"
    return node


def actions(ext: ET.Element) -> list[tuple[str, str]]:
    return [(a.get("application", ""), a.get("data", "")) for a in ext.iter("action")]


# ---- every file on its own ----

def test_the_tree_is_curated() -> None:
    names = {p.relative_to(FS).as_posix() for p in XML_FILES}
    assert names == {
        "freeswitch.xml", "vars.xml",
        "autoload_configs/modules.conf.xml", "autoload_configs/event_socket.conf.xml",
        "autoload_configs/acl.conf.xml", "autoload_configs/sofia.conf.xml",
        "autoload_configs/switch.conf.xml", "autoload_configs/logfile.conf.xml",
        "autoload_configs/console.conf.xml", "autoload_configs/opus.conf.xml",
        "sip_profiles/internal.xml", "sip_profiles/external.xml",
        "directory/default.xml", "directory/default/operators.xml",
        "dialplan/public.xml", "dialplan/default.xml",
    }
    assert (FS / "README.md").is_file()


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: p.relative_to(FS).as_posix())
def test_each_file_is_well_formed_xml(path: Path) -> None:
    ET.parse(path)  # $${…} and ${…} are plain text to an XML parser


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: p.relative_to(FS).as_posix())
def test_preprocessor_lines_are_safe(path: Path) -> None:
    """FreeSWITCH acts on a preprocessor tag even inside a comment, drops a line that
    mentions it without the leading '<', and drops whole lines holding <include>."""
    in_comment = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.relative_to(FS)}:{number}"
        if "x-pre-process" in line.lower():
            assert not in_comment and "<!--" not in line, f"{where}: preprocessor tag in a comment"
            assert line.strip().startswith("<X-PRE-PROCESS"), f"{where}: one tag per line, nothing before it"
            assert len(PRE.findall(line)) == 1, f"{where}: one preprocessor command per line"
        if "<include>" in line or "</include>" in line:
            assert line.strip() in ("<include>", "</include>"), f"{where}: <include> must be alone on its line"
        opened, closed = line.count("<!--"), line.count("-->")
        in_comment = (in_comment or opened > closed) and not (closed > opened or (closed and line.rfind("-->") > line.rfind("<!--")))


# ---- the assembled configuration ----

def test_the_tree_assembles_into_one_document(tree: ET.Element) -> None:
    assert tree.tag == "document"
    for name in ("modules.conf", "event_socket.conf", "acl.conf", "sofia.conf", "switch.conf",
                 "logfile.conf", "console.conf"):
        config(tree, name)
    profiles = [p.get("name") for p in config(tree, "sofia.conf").iter("profile")]
    assert sorted(profiles) == ["external", "internal"]
    assert {c.get("name") for c in tree.iter("context")} == {"public", "default"}


def test_no_global_variable_is_left_unset(tree: ET.Element) -> None:
    """A $${var} that vars.xml does not define expands to nothing: find any."""
    _, variables = assemble({})
    used: set[str] = set()
    for path in XML_FILES:
        used |= set(GLOBAL_VAR.findall(path.read_text(encoding="utf-8")))
    missing = sorted(v for v in used if not variables.get(v))
    assert not missing, f"used but never set (or empty): {missing}"


def test_modules_are_the_minimal_set(tree: ET.Element) -> None:
    loaded = {m.get("module") for m in config(tree, "modules.conf").iter("load")}
    required = {"mod_console", "mod_logfile", "mod_event_socket", "mod_sofia", "mod_commands",
                "mod_dptools", "mod_dialplan_xml", "mod_sndfile", "mod_native_file",
                "mod_tone_stream"}
    assert required <= loaded
    assert loaded - required <= {"mod_loopback", "mod_opus"}, f"unexpected modules: {loaded - required}"


# ---- the event socket ----

def test_event_socket_password_comes_from_the_environment(variables: dict[str, str]) -> None:
    raw = ET.parse(FS / "autoload_configs/event_socket.conf.xml").getroot()
    assert params(raw)["password"] == "$${hotline_esl_password}"
    assert "ClueCon" not in params(raw).values()
    assert variables["hotline_esl_password"] == PROD_ENV["HOTLINE_ESL_PASSWORD"]


@pytest.mark.parametrize("exec_output", ["Rand0mSecret", None], ids=["random", "no-shell"])
def test_event_socket_password_is_never_empty_or_cluecon(exec_output: str | None) -> None:
    """mod_event_socket uses "ClueCon" when the password is empty: without the
    environment variable (and even without a working shell) it must not be empty."""
    text, _ = assemble({}, exec_output=exec_output)
    password = params(config(ET.fromstring(text), "event_socket.conf"))["password"]
    assert password and password.lower() != "cluecon"
    if exec_output:
        assert password == exec_output


def test_cluecon_is_not_a_value_anywhere(tree: ET.Element) -> None:
    for el in tree.iter():
        for value in el.attrib.values():
            assert "cluecon" not in value.lower(), f"{el.tag} {el.attrib}"


def test_event_socket_is_behind_an_acl(tree: ET.Element) -> None:
    settings = params(config(tree, "event_socket.conf"))
    assert settings["listen-ip"] == "127.0.0.1"
    acl_name = settings["apply-inbound-acl"]
    lists = {lst.get("name"): lst for lst in config(tree, "acl.conf").iter("list")}
    assert acl_name in lists and lists[acl_name].get("default") == "deny"


def test_acl_lists_deny_by_default_and_take_cidrs_from_the_environment(tree: ET.Element) -> None:
    lists = {lst.get("name"): lst for lst in config(tree, "acl.conf").iter("list")}
    assert set(lists) == {"esl_clients", "sip_trunks", "operator_phones"}
    for lst in lists.values():
        assert lst.get("default") == "deny"
    trunks = [n.get("cidr") for n in lists["sip_trunks"].iter("node")]
    assert trunks == [PROD_ENV["HOTLINE_FS_TRUNK_CIDR"]]


# ---- SIP profiles ----

def test_sip_profiles_apply_acls_and_authentication(tree: ET.Element) -> None:
    profiles = {p.get("name"): p for p in config(tree, "sofia.conf").iter("profile")}
    acl_names = {lst.get("name") for lst in config(tree, "acl.conf").iter("list")}
    external = params(profiles["external"].find("settings"))
    assert external["apply-inbound-acl"] == "sip_trunks" and "sip_trunks" in acl_names
    assert external["auth-calls"] == "false"  # so a source outside the ACL gets 403
    assert external["context"] == "public"
    assert external["disable-register"] == "true" and external["disable-transfer"] == "true"
    internal = params(profiles["internal"].find("settings"))
    assert internal["auth-calls"] == "true"
    # apply-register-acl would let its addresses register without a password
    assert "apply-register-acl" not in internal
    domain = tree.find("./section[@name='directory']/domain")
    assert domain is not None and params(domain.find("params"))["auth-acl"] == "operator_phones"
    assert "apply-inbound-acl" not in internal  # no IP bypasses digest authentication
    for profile in profiles.values():
        assert profile.find("gateways") is None or len(profile.find("gateways")) == 0


def test_operators_are_in_the_directory_with_passwords_from_the_environment(tree: ET.Element) -> None:
    domain = tree.find("./section[@name='directory']/domain")
    assert domain is not None and domain.get("name") == PROD_ENV["HOTLINE_FS_DOMAIN"]
    users = {u.get("id"): u for u in domain.iter("user") if u.get("type") != "pointer"}
    assert sorted(users) == ["2001", "2002", "2003", "2004", "3001", "3002"]
    for ext, user in users.items():
        assert params(user)["password"] == f"op{ext}pw"
    raw = (FS / "directory/default/operators.xml").read_text(encoding="utf-8")
    assert re.findall(r'name="password" value="([^"]*)"', raw) == [
        f"$${{hotline_operator_password_{ext}}}" for ext in sorted(users)]
    groups = {g.get("name"): sorted(u.get("id") for u in g.iter("user")) for g in domain.iter("group")}
    assert groups["junior"] == ["2001", "2002", "2003", "2004"]
    assert groups["senior"] == ["3001", "3002"]


# ---- the dialplan ----

def test_service_number_goes_to_the_bot_with_a_fallback(tree: ET.Element, variables: dict[str, str]) -> None:
    ext = extension(context(tree, "public"), "hotline_bot")
    condition = ext.find("condition")
    assert condition is not None and condition.get("field") == "destination_number"
    pattern = re.compile(condition.get("expression", ""))
    for number in ("1000", "112", "+112", variables["hotline_test_did"]):
        assert pattern.match(number), number
    assert not pattern.match("0018005550100")

    steps = actions(ext)
    apps = [app for app, _ in steps]
    sock = apps.index("socket")
    host_port, *mode = steps[sock][1].split()
    assert mode == ["async", "full"]
    assert host_port == "127.0.0.1:8084"
    assert "answer" not in apps[:sock], "the bot answers, not the dialplan"
    fallback = steps[sock + 1:]
    fallback_apps = [app for app, _ in fallback]
    assert "playback" in fallback_apps, "an apology must follow the socket"
    apology = dict(fallback)["playback"]
    assert apology == variables["hotline_apology_prompt"] and apology
    assert fallback[-1] == ("transfer", "operators XML default")
    assert fallback_apps.index("playback") < len(fallback) - 1


def test_unknown_numbers_are_refused(tree: ET.Element) -> None:
    for name in ("public", "default"):
        last = context(tree, name).findall("extension")[-1]
        assert actions(last)[-1] == ("hangup", "UNALLOCATED_NUMBER")


def test_operator_queue_and_handoff_target_exist(tree: ET.Element) -> None:
    default = context(tree, "default")
    queue = extension(default, "operators")
    steps = actions(queue)
    apps = [app for app, _ in steps]
    assert apps.count("bridge") >= 1
    set_vars = dict(data.split("=", 1) for app, data in steps if app == "set")
    assert set_vars["ringback"] and set_vars["transfer_ringback"], "the caller hears something while waiting"
    assert set_vars["continue_on_fail"] == "true"
    handoff = extension(default, "handoff")
    handoff_steps = actions(handoff)
    assert handoff_steps[-1] == ("transfer", "operators XML default")
    exported = " ".join(data for app, data in handoff_steps if app == "export")
    for var in ("hotline_handoff_id", "hotline_conversation_id", "hotline_handoff_reason"):
        assert "${" + var + "}" in exported


def _bridge_targets(data: str) -> list[str]:
    """The legs of a bridge string: ',' (together) and '|' (one after another), each
    optionally prefixed by {channel vars} or [leg vars]."""
    targets = []
    for leg in re.split(r"[,|]", re.sub(r"^\{[^}]*\}", "", data)):
        targets.append(re.sub(r"^\[[^\]]*\]", "", leg.strip()))
    return targets


def test_no_route_out_of_the_switch(tree: ET.Element) -> None:
    """Toll fraud: no dialplan action may reach a carrier. The only bridges go to
    operator accounts in the directory (user/…)."""
    for ctx in tree.iter("context"):
        for app, data in ((a.get("application", ""), a.get("data", "")) for a in ctx.iter("action")):
            lowered = data.lower()
            assert "sofia/" not in lowered and "gateway" not in lowered and "loopback/" not in lowered, (
                f"{ctx.get('name')}: {app} {data}")
            assert app not in {"originate", "enum", "lcr", "execute_extension"}, f"{ctx.get('name')}: {app}"
            if app == "bridge":
                for target in _bridge_targets(data):
                    assert re.fullmatch(r"user/(\d+|\$1)@[\w.-]+", target), f"{ctx.get('name')}: bridge to {target}"
            if app == "transfer":
                dest, _, rest = data.partition(" ")
                assert rest in {"XML default", "XML public"}, f"{ctx.get('name')}: transfer {data}"
    # The bot's context (public) has no bridge at all.
    assert not [a for a in context(tree, "public").iter("action") if a.get("application") == "bridge"]
    # And no SIP profile has a gateway or includes gateway files.
    for path in (FS / "sip_profiles").glob("*.xml"):
        assert "<gateway " not in path.read_text(encoding="utf-8")


# ---- the production compose file ----

@pytest.fixture(scope="module")
def compose() -> dict:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_has_the_stack(compose: dict) -> None:
    assert set(compose["services"]) == {"freeswitch", "rasa", "actions", "bot", "linetest",
                                        "postgres", "redis"}
    for name, svc in compose["services"].items():
        assert "image" in svc or "build" in svc, name


def test_compose_freeswitch_runs_on_the_host_network(compose: dict) -> None:
    fs = compose["services"]["freeswitch"]
    assert fs["network_mode"] == "host"
    image, _, tag = fs["image"].partition(":")
    assert image == "safarov/freeswitch" and tag and tag != "latest"
    assert "SYS_NICE" in fs["cap_add"]
    assert any(v.split(":")[:2] == ["./freeswitch", "/etc/freeswitch"] for v in fs["volumes"])
    test = " ".join(fs["healthcheck"]["test"])
    assert "fs_cli" in test and "-x status" in test
    # The bot's event-socket server must be reachable from FreeSWITCH at 127.0.0.1.
    assert compose["services"]["bot"]["network_mode"] == "host"


def test_compose_secrets_are_required_not_written(compose: dict) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for secret in ("HOTLINE_ESL_PASSWORD", "HOTLINE_PG_PASSWORD", "HOTLINE_REDIS_PASSWORD",
                   "HOTLINE_FS_OPERATOR_PASSWORD_2001"):
        assert re.search(r"\$\{" + secret + r":\?", text), f"{secret} must be required (${{VAR:?}})"
    env = compose["services"]["freeswitch"]["environment"]
    assert env["HOTLINE_ESL_PASSWORD"].startswith("${HOTLINE_ESL_PASSWORD:?")
    # every FreeSWITCH variable in vars.xml is passed through
    read = set(re.findall(r'cmd="env-set" data="[^=]+=\$(\w+)"', (FS / "vars.xml").read_text(encoding="utf-8")))
    assert read <= set(env), f"not passed to the container: {read - set(env)}"


def test_rasa_endpoints_use_postgresql_and_redis(compose: dict) -> None:
    endpoints = yaml.safe_load((ROOT / "docker/endpoints.yml").read_text(encoding="utf-8"))
    assert endpoints["tracker_store"]["type"] == "SQL"
    assert endpoints["tracker_store"]["dialect"] == "postgresql"
    assert endpoints["lock_store"]["type"] == "redis"
    assert endpoints["action_endpoint"]["url"] == "${HOTLINE_ACTION_URL}"
    referenced = set(re.findall(r"\$\{(\w+)\}", (ROOT / "docker/endpoints.yml").read_text(encoding="utf-8")))
    rasa_env = compose["services"]["rasa"]["environment"]
    assert referenced <= set(rasa_env), f"not set for rasa: {referenced - set(rasa_env)}"
    assert any(v.startswith("./docker/endpoints.yml:") for v in compose["services"]["rasa"]["volumes"])


def test_env_example_holds_no_real_secret() -> None:
    lines = (ROOT / "docker/.env.example").read_text(encoding="utf-8").splitlines()
    values = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    for name, value in values.items():
        if "PASSWORD" in name:
            assert value.startswith("change-me"), name
        assert value, f"{name} is empty: compose would pass an empty value"


def test_dockerfiles_pin_the_python_versions() -> None:
    rasa = (ROOT / "docker/Dockerfile.rasa").read_text(encoding="utf-8")
    bot = (ROOT / "docker/Dockerfile.bot").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.10", rasa, re.M) and "requirements-rasa.lock" in rasa
    assert re.search(r"^FROM python:3\.11", bot, re.M) and "requirements.lock" in bot


def test_the_carrier_gateway_is_only_a_disabled_template() -> None:
    """Calls the bot places (voice/outbound.py) leave through a carrier gateway that an
    operator enables by hand (freeswitch/README.md, "Outbound calls"). As shipped it is a
    template FreeSWITCH never reads: not an .xml file, and no profile includes its folder."""
    from bot.settings import Settings

    folder = FS / "sip_profiles" / "external"
    gateway = ET.fromstring((folder / "carrier.xml.example").read_text(encoding="utf-8")).find("gateway")
    assert gateway is not None and gateway.get("name") == "carrier"
    assert params(gateway)["register"] == "false" and params(gateway)["context"] == "public"
    assert list(folder.glob("*.xml")) == [], "an enabled gateway: the shipped tree must not dial out"
    for path in (FS / "sip_profiles").glob("*.xml"):
        assert "external/" not in path.read_text(encoding="utf-8"), f"{path.name} includes the gateway folder"
    assert Settings.model_fields["outbound_dial_string"].default == "sofia/gateway/carrier/{number}"
