"""horde's command line: Locust 2.47's options, defaults, environment variables and config files.

Every option can come from five places; the first one in this list that sets it wins: the command
line, a ``LOCUST_*`` environment variable, the ``--config`` file, ``./locust.conf`` and
``~/.locust.conf``, ``[tool.locust]`` in ``./pyproject.toml``. Values from the environment and the
files are turned into command-line words, so argparse checks and converts them like typed ones.
"""

from __future__ import annotations

import argparse
import ast
import atexit
import difflib
import glob
import json
import math
import os
import platform
import re
import shutil
import socket
import sys
import tempfile
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, NoReturn, Protocol, cast
from urllib.parse import urlparse
from uuid import uuid4

import horde
from horde.util.timespan import parse_timespan

if sys.version_info >= (3, 11):
    import tomllib
else:
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

version = horde.__version__

#: The Locust release whose command line this module reproduces.
LOCUST_VERSION = "2.47.0"

#: Config files read when present, from the home directory and the working directory.
DEFAULT_CONFIG_FILES = ("~/.locust.conf", "locust.conf", "pyproject.toml")

# Prefix of the environment variable given to options that locustfiles add without naming one.
AUTO_ENV_VAR_PREFIX = "LOCUST_"

_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")
_WEB_UI_KEYWORDS = ("include_in_web_ui", "is_secret", "is_required", "is_multiple")


class LocustArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` that also reads config files and environment variables.

    ``add_argument`` takes, besides argparse's keywords, Locust's: ``env_var`` (the environment
    variable that sets the option), ``is_config_file_arg`` (the option names a config file), and
    for the web UI ``include_in_web_ui`` (default True), ``is_secret``, ``is_required`` and
    ``is_multiple`` (default False). They are stored as attributes of the returned action.

    Args:
        default_config_files: Config files to read when they exist (``~`` and globs allowed);
            a later ``.conf`` file wins over an earlier one, and TOML files lose to ``.conf`` files.
        auto_env_var_prefix: When set, options added afterwards without ``env_var`` get
            ``<prefix><DEST>`` as their environment variable.
        ignore_unknown_config_file_keys: Skip config keys that name no option instead of
            failing in ``parse_args``.
    """

    def __init__(
        self,
        *args: Any,
        default_config_files: Iterable[str] = (),
        auto_env_var_prefix: str | None = None,
        ignore_unknown_config_file_keys: bool = False,
        add_env_var_help: bool = False,
        add_config_file_help: bool = False,
        **kwargs: Any,
    ) -> None:
        # argparse's __init__ already adds -h through add_argument, which reads these.
        self._default_config_files = list(default_config_files)
        self._auto_env_var_prefix = auto_env_var_prefix
        self._ignore_unknown_config_file_keys = ignore_unknown_config_file_keys
        self._unknown_config_keys: list[tuple[str, str]] = []
        super().__init__(*args, **kwargs)

    # -- declaring options -------------------------------------------------------------------

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """argparse's ``add_argument`` plus ``env_var``, ``is_config_file_arg``,
        ``include_in_web_ui``, ``is_secret``, ``is_required`` and ``is_multiple``."""
        return _add_argument(self, super().add_argument, args, kwargs, in_web_ui=True)

    def add_argument_group(self, *args: Any, **kwargs: Any) -> argparse._ArgumentGroup:
        group = _ArgumentGroup(self, *args, **kwargs)
        self._action_groups.append(group)
        return group

    def add_mutually_exclusive_group(self, **kwargs: Any) -> argparse._MutuallyExclusiveGroup:
        group = _MutuallyExclusiveGroup(self, self, **kwargs)
        self._mutually_exclusive_groups.append(group)
        return group

    @property
    def args_included_in_web_ui(self) -> dict[str, argparse.Action]:
        return {a.dest: a for a in self._actions if getattr(a, "include_in_web_ui", False)}

    @property
    def secret_args_included_in_web_ui(self) -> dict[str, argparse.Action]:
        return {d: a for d, a in self.args_included_in_web_ui.items() if getattr(a, "is_secret", False)}

    @property
    def required_args_included_in_web_ui(self) -> dict[str, argparse.Action]:
        return {d: a for d, a in self.args_included_in_web_ui.items() if getattr(a, "is_required", False)}

    @property
    def multiple_args_included_in_web_ui(self) -> dict[str, argparse.Action]:
        return {d: a for d, a in self.args_included_in_web_ui.items() if getattr(a, "is_multiple", False)}

    # -- parsing -----------------------------------------------------------------------------

    def parse_known_args(  # type: ignore[override]
        self,
        args: Sequence[str] | str | None = None,
        namespace: argparse.Namespace | None = None,
        env_vars: dict[str, str] | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        """argparse's ``parse_known_args`` over the command line plus the values of the
        environment (``env_vars``, default ``os.environ``) and the config files."""
        if args is None:
            words = sys.argv[1:]
        elif isinstance(args, str):
            words = args.split()
        else:
            words = list(args)
        words = self._with_other_sources(words, os.environ if env_vars is None else env_vars)
        return super().parse_known_args(words, namespace)

    def parse_args(  # type: ignore[override]
        self,
        args: Sequence[str] | str | None = None,
        namespace: argparse.Namespace | None = None,
        env_vars: dict[str, str] | None = None,
    ) -> argparse.Namespace:
        """Parses every source; an unknown option, in a config file or on the command line,
        is an error (exit code 2)."""
        parsed, extras = self.parse_known_args(args, namespace, env_vars)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        if self._unknown_config_keys:
            path, key = self._unknown_config_keys[0]
            known = [k for a in self._actions for k in _config_keys(a) if not k.startswith("-")]
            self.exit(2, f"{self.prog}: error: unknown option '{key}' in config file {path}{_hint(key, known)}\n")
        return parsed

    # configargparse's short names, used by Locust's runners and some plugins.
    def parse(self, args: Sequence[str] | str | None = None, namespace: Any = None, **kw: Any) -> Any:
        return self.parse_args(args, namespace, **kw)

    def parse_known(self, args: Sequence[str] | str | None = None, namespace: Any = None, **kw: Any) -> Any:
        return self.parse_known_args(args, namespace, **kw)

    def error(self, message: str) -> NoReturn:
        """Prints ``horde: error: <message>`` (and a close option name for a misspelt one), then
        exits with code 2, as Locust does (without argparse's usage line)."""
        if message.startswith("unrecognized arguments:"):
            bad = message.split(":", 1)[1].split()[0].split("=", 1)[0]
            shown = [o for a in self._actions if a.help != argparse.SUPPRESS for o in a.option_strings]
            message += _hint(bad, shown, prefix="\n")
        self.exit(2, f"{self.prog}: error: {message}\n")

    # -- the other sources -------------------------------------------------------------------

    def _with_other_sources(self, words: list[str], env_vars: Any) -> list[str]:
        """The command line with the environment's and the config files' values inserted before
        its first option, for the options it does not set itself."""
        self._unknown_config_keys = []
        end = words.index("--") if "--" in words else len(words)
        typed = words[:end]
        if any(isinstance(a, argparse._HelpAction) for a in self._actions) and ("-h" in typed or "--help" in typed):
            return words  # help is shown even when a config file is broken

        taken = {action for action in map(self._action_named_by, typed) if action is not None}
        extra: list[str] = []

        from_env: set[argparse.Action] = set()
        action: argparse.Action | None
        for action in self._actions:
            if not action.option_strings or action in taken or _is_help_or_version(action):
                continue
            name = next((n for n in _env_var_names(action) if n in env_vars), None)
            if name is None:
                continue
            value: Any = env_vars[name]
            if value == "" and action.nargs:
                continue
            if (action.nargs or isinstance(action, argparse._AppendAction)) and _looks_like_list(value):
                value = _parse_list(value)
            extra += self._words_for(action, name, value)
            from_env.add(action)
        taken |= from_env

        keys = {key: action for action in self._actions for key in _config_keys(action)}
        for path, items in self._read_config_files(typed):
            from_file: set[argparse.Action] = set()
            for key, value in items.items():
                action = keys.get(key)
                if action is None:
                    if not self._ignore_unknown_config_file_keys:
                        self._unknown_config_keys.append((path, key))
                    continue
                if action in taken or (value == "" and action.nargs):
                    continue
                extra += self._words_for(action, f"{key} (in {path})", value)
                from_file.add(action)
            taken |= from_file

        if not extra:
            return words
        # Before the first option, so that a list option from a file cannot swallow the user
        # classes at the end of the command line.
        at = next((i for i, w in enumerate(typed) if w[:1] in self.prefix_chars and w != "-"), end)
        return words[:at] + extra + words[at:]

    def _action_named_by(self, word: str) -> argparse.Action | None:
        """The optional action a command-line word names (``--users``, ``--users=3``, ``-u3``, an
        unambiguous abbreviation such as ``--use``), or None."""
        if len(word) < 2 or word[0] not in self.prefix_chars:
            return None
        table = self._option_string_actions
        name = word.split("=", 1)[0]
        if name in table:
            return table[name]
        if word[1] in self.prefix_chars:
            if self.allow_abbrev:
                found = {table[o] for o in table if o.startswith(name) and o[1] in self.prefix_chars}
                if len(found) == 1:
                    return found.pop()
            return None
        return table.get(word[:2])

    def _read_config_files(self, typed: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """Every config file that applies, the one that wins first: files named on the command
        line, then the default files."""
        named: list[str] = []
        for action in self._actions:
            if getattr(action, "is_config_file_arg", False):
                path = self._value_on_command_line(action, typed)
                if path:
                    named.append(os.path.expanduser(path))
        defaults = [
            found
            for entry in self._default_config_files
            for found in sorted(glob.glob(os.path.expanduser(os.fspath(entry))))
            if os.path.isfile(found)
        ]
        # What Locust 2.47 does (its docs say otherwise): a later default file wins, so
        # ~/.locust.conf < ./locust.conf < pyproject.toml < --config.
        files = named[::-1] + defaults[::-1]

        read = []
        for path in files:
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:
                self.error(f"Unable to open config file: {path}. Error: {e}")
            except UnicodeDecodeError as e:
                self.error(f"Unable to read config file: {path}. Error: {e}")
            read.append((path, self._parse_config(path, text)))
        return read

    def _value_on_command_line(self, action: argparse.Action, typed: list[str]) -> str | None:
        value = None
        for i, word in enumerate(typed):
            if self._action_named_by(word) is not action:
                continue
            if "=" in word and word.startswith("--"):
                value = word.split("=", 1)[1]
            elif word.startswith("--") or len(word) == 2:
                value = typed[i + 1] if i + 1 < len(typed) else None
            else:
                value = word[2:]
        return value

    def _parse_config(self, path: str, text: str) -> dict[str, Any]:
        if path.endswith(".toml"):
            return self._parse_toml(path, text)
        try:
            return parse_config_text(text, path)
        except ValueError as e:
            self.error(str(e))

    def _parse_toml(self, path: str, text: str) -> dict[str, Any]:
        if tomllib is None:
            if re.search(r"^\s*\[\s*tool\.locust\s*\]", text, re.MULTILINE):
                self.error(f"{path} has a [tool.locust] section; reading it needs Python 3.11+ or 'pip install tomli'")
            return {}
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            self.error(f"Couldn't parse TOML file {path}: {e}")
        section = data.get("tool", {}).get("locust")
        if not isinstance(section, dict):
            return {}
        items: dict[str, Any] = {}
        for key, value in section.items():
            if isinstance(value, list):
                items[key] = value
            elif isinstance(value, bool):
                items[key] = "true" if value else "false"
            else:
                items[key] = str(value)
        return items

    def _words_for(self, action: argparse.Action, source: str, value: Any) -> list[str]:
        """The command-line words that give ``action`` a value from a file or the environment."""
        long_names = [o for o in action.option_strings if o[:2] == self.prefix_chars[0] * 2]
        option = long_names[0] if long_names else action.option_strings[-1]
        if action.nargs == 0:  # a flag: true adds it, false leaves it out
            word = value.strip().lower() if isinstance(value, str) else None
            if isinstance(action, argparse.BooleanOptionalAction) and word in _TRUE_WORDS + _FALSE_WORDS:
                negative = [o for o in action.option_strings if o.startswith("--no-")]
                return [option] if word in _TRUE_WORDS else negative[:1]
            if isinstance(action, argparse._CountAction) and word is not None and word.isdigit():
                return [option] * int(word)
            if word in _TRUE_WORDS:
                return [option]
            if word in _FALSE_WORDS:
                return []
            self.error(
                f"Unexpected value for {source}: {value!r}. "
                "Expecting 'true', 'false', 'yes', 'no', 'on', 'off', '1' or '0'"
            )
        if not isinstance(value, list):
            return [f"{option}={value}"]
        takes_many = action.nargs in ("*", "+") or (isinstance(action.nargs, int) and action.nargs > 1)
        if any(str(v) == "--" for v in value):
            self.error(f"{source} can't have '--' in its list, since it would end option parsing")
        if isinstance(action, argparse._AppendAction):
            words: list[str] = []
            for item in value:
                if takes_many and isinstance(item, list):
                    words += [option, *map(str, item)]
                else:
                    words.append(f"{option}={item}")
            return words
        if takes_many:
            return [option, *map(str, value)]
        self.error(f"{source} can't be set to a list {value!r}: {option} takes a single value")


class _ArgumentGroup(argparse._ArgumentGroup):
    """An argument group whose ``add_argument`` takes Locust's extra keywords. Options added to a
    group stay out of the web UI unless they say otherwise, as in Locust."""

    def __init__(self, parser: LocustArgumentParser, *args: Any, **kwargs: Any) -> None:
        super().__init__(parser, *args, **kwargs)
        self._root = parser

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        return _add_argument(self._root, super().add_argument, args, kwargs, in_web_ui=False)

    def add_mutually_exclusive_group(self, **kwargs: Any) -> argparse._MutuallyExclusiveGroup:
        group = _MutuallyExclusiveGroup(self, self._root, **kwargs)
        self._mutually_exclusive_groups.append(group)
        return group


class _MutuallyExclusiveGroup(argparse._MutuallyExclusiveGroup):
    def __init__(self, container: Any, parser: LocustArgumentParser, **kwargs: Any) -> None:
        super().__init__(container, **kwargs)
        self._root = parser

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        return _add_argument(self._root, super().add_argument, args, kwargs, in_web_ui=False)


def _add_argument(
    parser: LocustArgumentParser, add: Any, args: tuple[Any, ...], kwargs: dict[str, Any], in_web_ui: bool
) -> argparse.Action:
    ui = {name: kwargs.pop(name) for name in _WEB_UI_KEYWORDS if name in kwargs}
    env_var = kwargs.pop("env_var", None)
    is_config_file_arg = kwargs.pop("is_config_file_arg", False)
    _make_way_for(parser, [a for a in args if isinstance(a, str) and a[:1] in parser.prefix_chars])
    action = add(*args, **kwargs)
    action.include_in_web_ui = ui.get("include_in_web_ui", in_web_ui)
    action.is_secret = ui.get("is_secret", False)
    action.is_required = ui.get("is_required", False)
    action.is_multiple = ui.get("is_multiple", False)
    action.is_config_file_arg = is_config_file_arg
    if env_var is None and parser._auto_env_var_prefix is not None and _config_keys(action):
        if not is_config_file_arg and not _is_help_or_version(action):
            env_var = parser._auto_env_var_prefix + action.dest.upper().replace("-", "_")
    action.env_var = env_var
    return action


def _make_way_for(parser: LocustArgumentParser, option_strings: list[str]) -> None:
    """A locustfile that declares an option horde adds on its own (``--threshold``) gets it: a
    file written for Locust must not fail on a name Locust never had."""
    for option in option_strings:
        existing = parser._option_string_actions.get(option)
        if existing is None or not getattr(existing, "horde_only", False):
            continue
        for name in existing.option_strings:
            parser._option_string_actions.pop(name, None)
        for group in parser._action_groups:
            if existing in group._group_actions:
                group._remove_action(existing)
                break
        else:
            parser._remove_action(existing)


class _HordeOnlyAction(Protocol):
    """The attributes horde sets on the actions of its own options (see ``_make_way_for`` and
    ``_env_var_names``)."""

    horde_only: bool
    env_var_aliases: tuple[str, ...]


def _config_keys(action: argparse.Action) -> list[str]:
    """The keys that set an action in a config file: each long option with and without its
    dashes (``web-port``, ``--web-port``)."""
    if _is_help_or_version(action):
        return []
    return [key for o in action.option_strings if o[:1] == o[1:2] for key in (o[2:], o)]


def _env_var_names(action: argparse.Action) -> list[str]:
    names = [getattr(action, "env_var", None), *getattr(action, "env_var_aliases", ())]
    return [n for n in names if n]


def _is_help_or_version(action: argparse.Action) -> bool:
    return isinstance(action, (argparse._HelpAction, argparse._VersionAction))


def _hint(word: str, choices: list[str], prefix: str = "\n") -> str:
    match = difflib.get_close_matches(word, choices, n=1)
    return f"{prefix}Did you mean '{match[0]}'?" if match else ""


def _looks_like_list(text: str) -> bool:
    return text.startswith("[") and text.endswith("]")


def _parse_list(text: str) -> list[Any]:
    """``[a, b]`` or JSON ``["a", "b"]`` as a list."""
    try:
        value = json.loads(text)
        if isinstance(value, list):
            return value
    except ValueError:
        pass
    inner = text[1:-1].strip()
    return [item.strip() for item in inner.split(",")] if inner else []


_CONF_LINE = re.compile(r"(?P<key>[^:=;#\s]+)(?:\s*(?P<sep>[:=\s])\s*(?P<value>.*))?")


def parse_config_text(text: str, source: str = "config") -> dict[str, Any]:
    """Reads Locust's ``.conf`` format: ``key = value`` (or ``key: value``, ``key value``) per
    line, a bare ``key`` meaning true, ``[a, b]`` a list, ``#`` and ``;`` starting comments.

    Args:
        text: The file's contents.
        source: The file's name, for error messages.

    Returns:
        The keys (option names without dashes) and their values, a string or a list of them.

    Raises:
        ValueError: A line is neither a setting, a comment nor blank.
    """
    items: dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines()):
        line = raw.strip()
        if not line or line[0] in "#;[" or line.startswith("---"):
            continue
        match = _CONF_LINE.fullmatch(line)
        if match is None:
            raise ValueError(f"Unexpected line {number} in {source}: {line}")
        value: Any = match.group("value")
        if value is None:  # a bare key switches a flag on
            value = "true"
        else:
            value = _without_comment_and_quotes(value)
            if _looks_like_list(value):
                value = _parse_list(value)
        items[match.group("key")] = value
    return items


def _without_comment_and_quotes(value: str) -> str:
    quoted = re.match(r"""(['"])(.*)\1(?:\s+[#;].*)?$""", value)
    if quoted:
        return quoted.group(2)
    return re.split(r"\s[#;]", value, maxsplit=1)[0].strip()


# -- locustfiles -------------------------------------------------------------------------------


def is_url(text: str) -> bool:
    """True for an http(s) address of a locustfile to download."""
    try:
        parsed = urlparse(text)
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def exit_handler(filename: str) -> None:
    """Deletes a downloaded locustfile (and its temporary directory) when horde exits."""
    try:
        os.remove(filename)
    except OSError:
        pass  # another process on this machine may have removed it already
    shutil.rmtree(os.path.dirname(filename), ignore_errors=True)


def parse_locustfile_paths(paths: list[str]) -> list[str]:
    """Turns the ``-f`` entries into absolute paths of locustfiles.

    An entry may be a ``.py`` file, a module name whose ``.py`` file exists, a directory (every
    ``.py`` file under it whose name does not start with ``_``, sorted) or an http(s) URL
    (downloaded to a temporary file). An entry that is none of these ends the program with a
    message and exit code 1, as in Locust.

    Args:
        paths: The entries, e.g. ``"locustfile.py,more/"`` split on commas.

    Returns:
        The absolute paths, in the order given.
    """
    return [found for path in paths for found in _parse_locustfile_path(path)]


def _parse_locustfile_path(path: str) -> list[str]:
    if is_url(path):
        return [download_locustfile_from_url(path)]
    if os.path.isdir(path):
        found = sorted(
            os.path.abspath(os.path.join(root, name))
            for root, _dirs, names in os.walk(path)
            for name in names
            if name.endswith(".py") and not name.startswith("_")
        )
        if not found:
            sys.stderr.write(f"Could not find any locustfiles in directory '{path}'\n")
            sys.exit(1)
        return found
    if path.endswith(".py") and os.path.isfile(path):
        return [os.path.abspath(path)]
    if not path.endswith(".py") and os.path.isfile(path + ".py"):
        return [os.path.abspath(path + ".py")]
    sys.stderr.write(
        f"Could not find '{path}'. Ensure your locustfile ends with '.py' or is a directory with locustfiles. "
        "See --help for available options.\n"
    )
    sys.exit(1)


def download_locustfile_from_url(url: str) -> str:
    """Downloads a locustfile and returns the path of the local copy, which is deleted at exit.
    A failed download or a response that is not Python ends the program (exit code 1)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            text = response.read().decode("utf-8")
    except (OSError, ValueError) as e:
        sys.stderr.write(f"Failed to get locustfile from: {url}. Exception: {e}\n")
        sys.exit(1)
    try:
        ast.parse(text)
    except SyntaxError:
        sys.stderr.write(f"Failed to get locustfile from: {url}. Response was not valid python code: '{text[:100]}'\n")
        sys.exit(1)
    # The file keeps the URL's name (it becomes the module's name), in a directory of its own.
    name = urlparse(url).path.rsplit("/", 1)[-1] or "locustfile.py"
    path = os.path.join(tempfile.mkdtemp(prefix="horde-locustfile-"), name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    atexit.register(exit_handler, path)
    return path


def download_locustfile_from_master(master_host: str, master_port: int) -> list[Any]:
    """Asks a master for its locustfiles (``-f -`` on a worker), once a second until it answers,
    through a connection of its own as Locust's worker does. Returns the master's list of sources
    (``{"filename", "contents"}`` or URLs); exits with code 1 if the master refuses or never
    answers (within CONNECT_TIMEOUT * CONNECT_RETRY_COUNT seconds)."""
    import gevent

    from horde import runners
    from horde.rpc import Message, rpc

    client_id = f"{socket.gethostname()}_download_locustfile_{uuid4().hex}"
    client = rpc.Client(master_host, master_port, client_id)
    ask = Message("locustfile", {"version": runners.PROTOCOL_VERSION}, client_id)
    client.every(1.0, lambda: client.send(ask))
    client.start()
    client.send(ask)

    def warn() -> None:
        gevent.sleep(10)
        while True:
            sys.stderr.write("Waiting to connect to master to receive locustfile...\n")
            gevent.sleep(60)

    warning = gevent.spawn(warn)
    give_up = runners.CONNECT_TIMEOUT * runners.CONNECT_RETRY_COUNT
    try:
        msg = gevent.with_timeout(give_up, client.recv)
    except gevent.Timeout:
        sys.stderr.write(f"Got no locustfile response from master, gave up after {give_up}s\n")
        sys.exit(1)
    finally:
        warning.kill(block=False)
        client.close(linger=0)
    if msg.type != "locustfile":
        sys.stderr.write(f"Got wrong message type from master {msg.type}\n")
        sys.exit(1)
    if not isinstance(msg.data, dict) or "error" in msg.data:
        error = msg.data.get("error") if isinstance(msg.data, dict) else msg.data
        sys.stderr.write(f"Got error from master: {error}\n")
        sys.exit(1)
    return msg.data.get("locustfiles", [])


def parse_locustfiles_from_master(locustfile_sources: list[Any]) -> list[str]:
    """Writes the locustfiles a master sent (``{"filename", "contents"}``) to temporary files;
    an entry without contents is a path the worker already has. Returns the paths."""
    locustfiles = []
    for source in locustfile_sources:
        if isinstance(source, dict) and "contents" in source:
            path = os.path.join(tempfile.gettempdir(), source["filename"])
            with open(path, "w", encoding="utf-8") as f:
                f.write(source["contents"])
            locustfiles.append(path)
        else:
            locustfiles.append(source)
    return locustfiles


def retrieve_locustfiles_from_master(options: argparse.Namespace) -> list[str]:
    if not options.worker:
        sys.stderr.write(
            "locustfile was set to '-' (meaning to download from master) but --worker was not specified.\n"
        )
        sys.exit(1)
    sources = download_locustfile_from_master(options.master_host, options.master_port)
    return parse_locustfiles_from_master(sources)


def get_locustfiles_locally(options: argparse.Namespace) -> list[str]:
    """The absolute paths of the locustfiles that ``options.locustfile`` names (comma-separated
    files, directories, URLs; ``-`` downloads them from the master). Exits with code 1 when one
    cannot be found."""
    if options.locustfile == "-":
        return retrieve_locustfiles_from_master(options)
    return parse_locustfile_paths([part.strip() for part in options.locustfile.split(",")])


# -- the parsers -------------------------------------------------------------------------------


def get_empty_argument_parser(
    add_help: bool = True, default_config_files: Iterable[str] = DEFAULT_CONFIG_FILES
) -> LocustArgumentParser:
    """A parser that knows only ``-f/--locustfile`` and ``--config`` (and ``-h`` when
    ``add_help``); ``setup_parser_arguments`` adds the rest."""
    parser = LocustArgumentParser(
        prog="horde",
        default_config_files=default_config_files,
        add_help=add_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage=argparse.SUPPRESS,
        description="Usage: horde [options] [UserClass ...]",
        epilog="""Examples:

    horde -f my_test.py -H https://www.example.com

    horde --headless -u 100 -t 20m MyHttpUser AnotherUser

    horde --headless -u 100 -r 10 -t 50 --print-stats --html "test_report_{u}_{r}_{t}.html"
    (writes test_report_100_10_50.html)

Every option can also be set in locust.conf, ~/.locust.conf, [tool.locust] in pyproject.toml, a
--config file or a LOCUST_* environment variable, exactly as for Locust:
https://docs.locust.io/en/stable/configuration.html""",
    )
    parser.add_argument(
        "-f",
        "--locustfile",
        metavar="<filename>",
        default="locustfile.py",
        help="The Python file with your test, e.g. 'my_test.py'. Also takes several comma-separated .py files, "
        "a directory (or package) of locustfiles, or the URL of a locustfile. Defaults to 'locustfile.py'.",
        env_var="LOCUST_LOCUSTFILE",
    )
    parser.add_argument(
        "--config",
        is_config_file_arg=True,
        metavar="<filename>",
        help="Read more options from this file (same format as locust.conf). "
        "See https://docs.locust.io/en/stable/configuration.html#configuration-file",
    )
    return parser


def parse_locustfile_option(args: Sequence[str] | None = None) -> argparse.Namespace:
    """First pass over the command line: finds the locustfile option (``-f``, from any source)
    and the worker settings needed to fetch it, ignoring every other option, so the locustfiles
    can be imported (and add options of their own) before the full parse.

    ``-h/--help`` and ``-V/--version`` are handled here: the full parser prints its text and
    the program exits.

    Args:
        args: The command-line words; ``sys.argv[1:]`` when None.

    Returns:
        A namespace with ``locustfile``, ``config``, ``help``, ``version``, ``worker``,
        ``master``, ``master_host`` and ``master_port``; pass it to ``get_locustfiles_locally``.
    """
    parser = get_empty_argument_parser(add_help=False)
    parser.add_argument("-h", "--help", action="store_true", default=False)
    parser.add_argument("--version", "-V", action="store_true", default=False)
    # Only needed to download the locustfile from a master (-f -).
    parser.add_argument("--worker", action="store_true", env_var="LOCUST_MODE_WORKER")
    # Known here only so that argparse does not call --master an ambiguous --master-host/-port.
    parser.add_argument("--master", action="store_true", env_var="LOCUST_MODE_MASTER")
    parser.add_argument("--master-host", default="127.0.0.1", env_var="LOCUST_MASTER_NODE_HOST")
    parser.add_argument("--master-port", type=int, default=5557, env_var="LOCUST_MASTER_NODE_PORT")
    parser._ignore_unknown_config_file_keys = True
    options, _ = parser.parse_known_args(args=args)
    if options.help or options.version:
        get_parser().parse_args(args=args)  # prints the help or the version and exits
    return options


def raise_argument_type_error(err_msg: str) -> type[argparse.Action]:
    """An action class that rejects its option with ``err_msg`` (for retired options)."""

    class ErrorRaisingAction(argparse.Action):
        def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
            raise argparse.ArgumentError(self, err_msg)

    return ErrorRaisingAction


def timespan(time_str: str) -> int:
    """argparse type for ``-t``/``-s``: a time span such as ``1h30m`` in seconds."""
    try:
        return parse_timespan(time_str)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive_integer(string: str) -> int:
    """argparse type for ``--expect-workers``: an int of at least 1."""
    try:
        value = int(string)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: '{string}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"Invalid --expect-workers argument ({value}), must be a positive number")
    return value


def gt_zero(t: Any) -> Any:
    """argparse type: ``t(value)``, which must be above zero."""

    def checker(value: str) -> Any:
        converted = t(value)
        if converted <= 0:
            raise argparse.ArgumentTypeError("must be > 0")
        return converted

    checker.__name__ = getattr(t, "__name__", "checker")  # argparse says "invalid float value"
    return checker


def json_user_config(string: str) -> list[dict[str, Any]]:
    """argparse type for ``--config-users``: JSON text or a ``.json`` file with one object, or a
    list of them, each naming its ``user_class_name``."""
    try:
        if string.endswith(".json"):
            with open(string, encoding="utf-8") as f:
                config = json.load(f)
        else:
            config = json.loads(string)
    except json.JSONDecodeError as e:
        message = f"The --config-users argument must be a valid JSON string or file: {e}"
        raise argparse.ArgumentTypeError(message) from None
    except OSError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    configs = config if isinstance(config, list) else [config]
    for item in configs:
        if not isinstance(item, dict) or "user_class_name" not in item:
            raise argparse.ArgumentTypeError("The user config must specify a user_class_name")
    return configs


def setup_parser_arguments(parser: LocustArgumentParser) -> None:
    """Adds every Locust 2.47 option (and horde's own) to a parser from
    ``get_empty_argument_parser``."""
    parser._optionals.title = "Common options"
    parser.add_argument(
        "-H",
        "--host",
        metavar="<base url>",
        help="The system under test, as a base URL such as https://www.example.com",
        env_var="LOCUST_HOST",
    )
    parser.add_argument(
        "-u",
        "--users",
        type=int,
        dest="num_users",
        metavar="<int>",
        help="Peak number of users running at once; mainly for --headless or --autostart. While running, "
        "keys w/W add 1/10 users and s/S remove 1/10",
        env_var="LOCUST_USERS",
    )
    parser.add_argument(
        "-r",
        "--spawn-rate",
        type=gt_zero(float),
        metavar="<float>",
        help="How many users to start per second; mainly for --headless or --autostart",
        env_var="LOCUST_SPAWN_RATE",
    )
    parser.add_argument(
        "-t",
        "--run-time",
        type=timespan,
        metavar="<time string>",
        help="Stop after this long, e.g. 300s, 20m, 3h, 1h30m (a bare number is seconds). Only with --headless "
        "or --autostart; runs until stopped by default.",
        env_var="LOCUST_RUN_TIME",
    )
    parser.add_argument(
        "-l",
        "--list",
        action="store_true",
        dest="list_commands",
        help="Print the User classes that can run, then exit",
    )
    parser.add_argument(
        "--config-users",
        type=json_user_config,
        nargs="*",
        help="Settings for User classes as JSON text or a .json file (an object with user_class_name and the "
        "attributes to set, or a list of them); may be given several times",
        env_var="LOCUST_CONFIG_USERS",
    )

    web_ui = parser.add_argument_group("Web UI options")
    web_ui.add_argument(
        "--web-host",
        default="",
        metavar="<ip>",
        help="Interface the web UI listens on. Defaults to 127.0.0.1 (this machine only; Locust's default is "
        "all of them); '*' or 0.0.0.0 for all",
        env_var="LOCUST_WEB_HOST",
    )
    web_ui.add_argument(
        "--web-host-display-name", type=str, help=argparse.SUPPRESS, env_var="LOCUST_WEB_HOST_DISPLAY_NAME"
    )
    web_ui.add_argument(
        "--web-port",
        "-P",
        type=int,
        default=8089,
        metavar="<port number>",
        help="Port of the web UI",
        env_var="LOCUST_WEB_PORT",
    )
    web_ui.add_argument(
        "--headless",
        action="store_true",
        help="Run without the web UI and start the test at once; -u and -t set the users and the duration",
        env_var="LOCUST_HEADLESS",
    )
    web_ui.add_argument(
        "--autostart",
        action="store_true",
        help="Start the test at once, as --headless does, but keep the web UI",
        env_var="LOCUST_AUTOSTART",
    )
    web_ui.add_argument(
        "--autoquit",
        type=int,
        default=-1,
        metavar="<seconds>",
        help="With --autostart: exit this many seconds after the test ends. By default the process keeps "
        "running until Ctrl+C",
        env_var="LOCUST_AUTOQUIT",
    )
    # Undoes a headless = true from a config file, since a flag cannot be switched off otherwise.
    web_ui.add_argument("--headful", action="store_true", help=argparse.SUPPRESS, env_var="LOCUST_HEADFUL")
    web_ui.add_argument(
        "--web-auth",
        type=str,
        dest="web_auth",
        default=None,
        metavar="<username:password>",
        help=argparse.SUPPRESS,
        env_var="LOCUST_WEB_AUTH",
        action=raise_argument_type_error(
            "The --web-auth parameters has been replaced with --web-login. "
            "See https://docs.locust.io/en/stable/extending-locust.html#authentication for details"
        ),
    )
    web_ui.add_argument(
        "--web-login",
        action="store_true",
        default=False,
        help="Require credentials for the web UI: HTTP Basic auth with HORDE_WEB_USER/HORDE_WEB_PASSWORD, "
        "or the token in HORDE_WEB_TOKEN (a random one, logged, if neither is set)",
        env_var="LOCUST_WEB_LOGIN",
    )
    web_ui.add_argument(
        "--tls-cert",
        default="",
        metavar="<filename>",
        help="TLS certificate for serving the web UI over HTTPS",
        env_var="LOCUST_TLS_CERT",
    )
    web_ui.add_argument(
        "--tls-key",
        default="",
        metavar="<filename>",
        help="TLS private key for serving the web UI over HTTPS",
        env_var="LOCUST_TLS_KEY",
    )
    web_ui.add_argument(
        "--class-picker",
        action="store_true",
        default=False,
        help="Let the web UI choose which User classes and Shape class to run",
        env_var="LOCUST_USERCLASS_PICKER",
    )
    web_ui.add_argument("--build-path", type=str, default="", help=argparse.SUPPRESS, env_var="LOCUST_BUILD_PATH")
    # Locust 2.x's switch to the (now only) React UI; accepted and ignored, as horde has one UI.
    web_ui.add_argument("--modern-ui", action="store_true", default=False, help=argparse.SUPPRESS)
    web_ui.add_argument(
        "--legacy-ui",
        default=False,
        nargs=0,
        action=raise_argument_type_error("--legacy-ui is no longer supported, remove the parameter to continue"),
        help=argparse.SUPPRESS,
        env_var="LOCUST_LEGACY_UI",
    )

    master = parser.add_argument_group(
        "Master options",
        "For the master of a distributed run: workers connect to it, and it runs the test through them.",
    )
    master.add_argument(
        "--master",
        action="store_true",
        help="Run as the master node, which worker nodes connect to.",
        env_var="LOCUST_MODE_MASTER",
    )
    master.add_argument(
        "--master-bind-host",
        default="*",
        metavar="<ip>",
        help="Interface the master listens on, e.g. '192.168.1.1'. Defaults to * (all of them).",
        env_var="LOCUST_MASTER_BIND_HOST",
    )
    master.add_argument(
        "--master-bind-port",
        type=int,
        default=5557,
        metavar="<port number>",
        help="Port the master listens on. Defaults to 5557.",
        env_var="LOCUST_MASTER_BIND_PORT",
    )
    master.add_argument(
        "--expect-workers",
        type=positive_integer,
        default=1,
        metavar="<int>",
        help="With --headless or --autostart: wait for this many workers before starting the test.",
        env_var="LOCUST_EXPECT_WORKERS",
    )
    master.add_argument(
        "--expect-workers-max-wait",
        type=int,
        default=0,
        metavar="<int>",
        help="Give up after waiting this many seconds for the workers. By default waits forever",
        env_var="LOCUST_EXPECT_WORKERS_MAX_WAIT",
    )
    master.add_argument(
        "--enable-rebalancing",
        action="store_true",
        default=False,
        dest="enable_rebalancing",
        help="Spread the users again when workers join or leave during a test. Experimental.",
    )
    master.add_argument(
        "--expect-slaves",
        action=raise_argument_type_error("The --expect-slaves parameter has been renamed --expect-workers"),
        nargs=0,
        help=argparse.SUPPRESS,
    )

    worker = parser.add_argument_group(
        "Worker options",
        "For the workers of a distributed run.\n"
        "Workers usually need only these options (and --locustfile): the master decides -u, -r, -t and the rest.",
    )
    worker.add_argument(
        "--worker",
        action="store_true",
        help="Run as a worker node of a distributed run. With --locustfile - the locustfile comes from the master.",
        env_var="LOCUST_MODE_WORKER",
    )
    worker.add_argument(
        "--processes",
        type=int,
        metavar="<int>",
        help="Fork this many worker processes (-1: one per CPU). Alone it also makes this process their "
        "master; with --worker they connect to another master. Not on Windows. Experimental.",
        env_var="LOCUST_PROCESSES",
    )
    worker.add_argument(
        "--slave",
        action=raise_argument_type_error("The --slave parameter has been renamed --worker"),
        nargs=0,
        help=argparse.SUPPRESS,
    )
    worker.add_argument(
        "--master-host",
        default="127.0.0.1",
        metavar="<hostname>",
        help="Host of the master to connect to. Defaults to 127.0.0.1.",
        env_var="LOCUST_MASTER_NODE_HOST",
    )
    worker.add_argument(
        "--master-port",
        type=int,
        default=5557,
        metavar="<port number>",
        help="Port of the master to connect to. Defaults to 5557.",
        env_var="LOCUST_MASTER_NODE_PORT",
    )

    web_ui.add_argument(
        "--web-base-path",
        type=str,
        default="",
        metavar="<path>",
        help="URL path the web UI is served under (e.g. '/locust'). Empty by default (the root).",
        env_var="LOCUST_WEB_BASE_PATH",
    )

    tags = parser.add_argument_group(
        "Tag options",
        "Tasks can be tagged with the @tag decorator; these options choose which tagged tasks run.",
    )
    tags.add_argument(
        "-T",
        "--tags",
        nargs="*",
        metavar="<tag>",
        help="Run only the tasks that have at least one of these tags",
        env_var="LOCUST_TAGS",
    )
    tags.add_argument(
        "-E",
        "--exclude-tags",
        nargs="*",
        metavar="<tag>",
        help="Skip the tasks that have any of these tags",
        env_var="LOCUST_EXCLUDE_TAGS",
    )

    stats = parser.add_argument_group("Request statistics options")
    stats.add_argument(
        "--csv",
        dest="csv_prefix",
        metavar="<filename>",
        help="Write the statistics as CSV files named <filename>_stats.csv, <filename>_stats_history.csv, "
        "<filename>_failures.csv and <filename>_exceptions.csv; missing directories are created",
        env_var="LOCUST_CSV",
    )
    stats.add_argument(
        "--csv-full-history",
        action="store_true",
        default=False,
        dest="stats_history_enabled",
        help="Add a row per request name to _stats_history.csv, not only the total. Needs --csv.",
        env_var="LOCUST_CSV_FULL_HISTORY",
    )
    stats.add_argument(
        "--print-stats",
        action="store_true",
        help="Print the statistics table periodically in web UI runs too",
        env_var="LOCUST_PRINT_STATS",
    )
    stats.add_argument(
        "--only-summary",
        action="store_true",
        help="In --headless runs, print only the final summary, not the periodic table",
        env_var="LOCUST_ONLY_SUMMARY",
    )
    stats.add_argument(
        "--reset-stats",
        action="store_true",
        help="Reset the statistics once all users have started. In distributed runs, set it on the master and "
        "the workers",
        env_var="LOCUST_RESET_STATS",
    )
    stats.add_argument(
        "--html",
        dest="html_file",
        metavar="<filename>",
        help="Write an HTML report to this file at the end. {u}, {r} and {t} in the name become the user "
        "count, spawn rate and run time",
        env_var="LOCUST_HTML",
    )
    stats.add_argument(
        "--json",
        action="store_true",
        default=False,
        help="Print the final statistics as JSON on stdout, for other programs to read. With --headless and "
        "--skip-log-setup the output is only the JSON.",
    )
    stats.add_argument(
        "--json-file",
        dest="json_file",
        metavar="<filename>",
        help="Write the final statistics as JSON to <filename>.json",
    )

    logging_group = parser.add_argument_group("Logging options")
    logging_group.add_argument(
        "--skip-log-setup",
        action="store_true",
        dest="skip_log_setup",
        default=False,
        help="Leave logging alone: the locustfile or Python's defaults configure it instead",
        env_var="LOCUST_SKIP_LOG_SETUP",
    )
    logging_group.add_argument(
        "--loglevel",
        "-L",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        metavar="<level>",
        help="One of DEBUG, INFO, WARNING, ERROR, CRITICAL. Default is INFO.",
        env_var="LOCUST_LOGLEVEL",
    )
    logging_group.add_argument(
        "--logfile",
        metavar="<filename>",
        help="Write the log to this file instead of stderr",
        env_var="LOCUST_LOGFILE",
    )

    other = parser.add_argument_group("Other options")
    other.add_argument(
        "--show-task-ratio",
        action="store_true",
        help="Print how often each task of each User class runs, as a table, then exit. Give -u too when "
        "classes have a fixed_count.",
    )
    other.add_argument(
        "--show-task-ratio-json",
        action="store_true",
        help="Print how often each task of each User class runs, as JSON, then exit. Give -u too when classes "
        "have a fixed_count.",
    )
    other.add_argument(
        "--version",
        "-V",
        action="version",
        version=(
            f"horde {version} (locust {LOCUST_VERSION} compatible) from {os.path.dirname(__file__)} "
            f"(Python {platform.python_version()})"
        ),
        help="Print the version and exit",
    )
    other.add_argument(
        "--exit-code-on-error",
        type=int,
        default=1,
        metavar="<int>",
        help="Exit code when the run had any failed request or user error. Defaults to 1.",
        env_var="LOCUST_EXIT_CODE_ON_ERROR",
    )
    other.add_argument(
        "-s",
        "--stop-timeout",
        action="store",
        type=timespan,
        dest="stop_timeout",
        default="0",
        metavar="<number>",
        help="How long users may take to finish their current task when the test stops (a time span, e.g. 30s). "
        "By default they stop at once. In distributed runs, only the master needs it.",
        env_var="LOCUST_STOP_TIMEOUT",
    )
    other.add_argument(
        "--equal-weights",
        action="store_true",
        default=False,
        dest="equal_weights",
        help="Give every task the same weight, whatever the locustfile says.",
    )
    other.add_argument("--profile", type=str, help="A label that groups test runs together")
    other.add_argument(
        "--otel",
        action="store_true",
        help="Send metrics, spans and logs to OpenTelemetry, configured by the OTEL_* variables as in Locust "
        "(needs pip install 'horde[otel]'). For precise percentiles in the backend set "
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=base2_exponential_bucket_histogram.",
        env_var="LOCUST_ENABLE_OPENTELEMETRY",
    )

    thresholds = parser.add_argument_group(
        "Threshold options (horde)",
        "Pass/fail criteria checked against the statistics; a broken threshold makes the exit code non-zero.",
    )
    threshold = thresholds.add_argument(
        "--threshold",
        action="append",
        dest="threshold",
        metavar="<expression>",
        help="A criterion such as 'p95<500' or 'fail_ratio<0.01'; repeat the option for more",
        env_var="HORDE_THRESHOLD",
    )
    threshold_abort = thresholds.add_argument(
        "--threshold-abort",
        action="store_true",
        default=False,
        help="Stop the test as soon as a threshold is broken",
        env_var="HORDE_THRESHOLD_ABORT",
    )
    for action, alias in ((threshold, "LOCUST_THRESHOLD"), (threshold_abort, "LOCUST_THRESHOLD_ABORT")):
        cast(_HordeOnlyAction, action).env_var_aliases = (alias,)
        cast(_HordeOnlyAction, action).horde_only = True

    open_model = parser.add_argument_group(
        "Open workload model (horde)",
        "Iterations arrive at a fixed rate whatever the server does (k6's arrival-rate executors, wrk2's -R). "
        "An iteration is one task of a free user from a pool that starts with -u users; wait_time does not apply. "
        "Response times are then measured from each iteration's scheduled start (corrected for coordinated "
        "omission), with the uncorrected service times beside them. Without --arrival-rate a response time is "
        "measured from the request written to its last byte read.",
    )
    arrival_rate = open_model.add_argument(
        "--arrival-rate",
        type=_arrival_rate,
        metavar="<rate>",
        dest="arrival_rate",
        default=None,
        help="Iterations started per second for the whole run (the open model); -u users are started first",
        env_var="HORDE_ARRIVAL_RATE",
    )
    max_users = open_model.add_argument(
        "--max-users",
        type=_max_users,
        metavar="<int>",
        dest="max_users",
        default=None,
        help="With --arrival-rate: the most users the pool may grow to when none is free (default: -u); an "
        "arrival that finds the pool full and busy is dropped and counted as a dropped iteration",
        env_var="HORDE_MAX_USERS",
    )
    distribution = open_model.add_argument(
        "--arrival-distribution",
        choices=["even", "poisson"],
        dest="arrival_distribution",
        default="even",
        help="With --arrival-rate: arrivals evenly spaced (default) or a Poisson process",
        env_var="HORDE_ARRIVAL_DISTRIBUTION",
    )
    max_wait = open_model.add_argument(
        "--arrival-max-wait",
        type=_seconds,
        metavar="<seconds>",
        dest="arrival_max_wait",
        default=1.0,
        help="With --arrival-rate: how long an arrival waits for a user to become free when the pool is full "
        "before it is dropped (default 1; 0 drops it at once, as k6 does). An iteration that waited is timed "
        "from its scheduled start",
        env_var="HORDE_ARRIVAL_MAX_WAIT",
    )
    for action in (arrival_rate, max_users, distribution, max_wait):
        cast(_HordeOnlyAction, action).horde_only = True

    reports = parser.add_argument_group("Precise statistics (horde)")
    precise = reports.add_argument(
        "--hdr-json",
        metavar="<filename>",
        dest="hdr_json",
        help="At the end, write every entry's percentiles from horde's HdrHistograms (microsecond "
        "resolution) as JSON to this file",
        env_var="HORDE_HDR_JSON",
    )
    cast(_HordeOnlyAction, precise).horde_only = True
    max_names = reports.add_argument(
        "--max-request-names",
        type=_row_limit,
        metavar="<int>",
        dest="max_request_names",
        default=10_000,
        help="Keep at most this many rows (request names) in the statistics (default 10000; 0: no limit). "
        "Requests with further names are counted in one row per method named 'Too many unique request "
        "names', with a warning: a URL with ids in it makes a new name per request unless given a name=",
        env_var="HORDE_MAX_REQUEST_NAMES",
    )
    cast(_HordeOnlyAction, max_names).horde_only = True

    metrics_out = parser.add_argument_group(
        "Prometheus (horde)",
        "The run's figures in Prometheus' format at /metrics: on the web UI's port, or when headless on "
        "--prometheus-port. At exit horde waits for one more scrape (at most one scrape interval).",
    )
    prometheus_port = metrics_out.add_argument(
        "--prometheus-port",
        type=_port,
        metavar="<port>",
        dest="prometheus_port",
        default=None,
        help="Serve /metrics on this port (also with the web UI; 0 picks a free port). On a master in a "
        "distributed run: the merged figures of all workers",
        env_var="HORDE_PROMETHEUS_PORT",
    )
    prometheus_host = metrics_out.add_argument(
        "--prometheus-host",
        metavar="<address>",
        dest="prometheus_host",
        default="127.0.0.1",
        help="The interface --prometheus-port listens on (default 127.0.0.1; 0.0.0.0 for every one)",
        env_var="HORDE_PROMETHEUS_HOST",
    )
    for action in (prometheus_port, prometheus_host):
        cast(_HordeOnlyAction, action).horde_only = True

    demo = parser.add_argument_group("Demo target (horde)")
    demo_target = demo.add_argument(
        "--demo-target",
        action="store_true",
        default=False,
        help="Start horde's bundled demo target in this process on 127.0.0.1 and use it as --host "
        "(unless --host is given), to try a locustfile without a server of your own",
        env_var="HORDE_DEMO_TARGET",
    )
    cast(_HordeOnlyAction, demo_target).horde_only = True

    user_classes = parser.add_argument_group("User classes")
    user_classes.add_argument(
        "user_classes",
        nargs="*",
        metavar="<UserClass1 UserClass2>",
        default=os.environ.get("LOCUST_USER_CLASSES", "").split(),
        help="User classes to run, at the end of the command line (--list shows them); the "
        "LOCUST_USER_CLASSES environment variable works too. By default every User class runs",
    )


def _arrival_rate(text: str) -> float:
    """``--arrival-rate``: a finite number of iterations per second above 0."""
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of iterations per second, not {text!r}") from None
    if not math.isfinite(rate) or rate <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of iterations per second above 0, not {text!r}")
    return rate


def _seconds(text: str) -> float:
    """A finite number of seconds, 0 or more."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, not {text!r}")
    return seconds


def _row_limit(text: str) -> int:
    """``--max-request-names``: a whole number, 0 or more."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no limit) or more, not {text!r}")
    return count


def _max_users(text: str) -> int:
    """``--max-users``: a whole number of users, at least 1."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of users, not {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return count


def _port(text: str) -> int:
    """A TCP port to listen on: 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, not {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, not {text!r}")
    return port


def get_parser(default_config_files: Iterable[str] = DEFAULT_CONFIG_FILES) -> LocustArgumentParser:
    """The full parser: every option, then those the locustfiles add through the
    ``init_command_line_parser`` event. Those get a ``LOCUST_<DEST>`` environment variable
    when they name none.

    Args:
        default_config_files: Config files to read when present.

    Returns:
        The parser; ``parser.parse_args()`` reads the command line, environment and files.
    """
    parser = get_empty_argument_parser(add_help=True, default_config_files=default_config_files)
    setup_parser_arguments(parser)
    parser._auto_env_var_prefix = AUTO_ENV_VAR_PREFIX
    horde.events.init_command_line_parser.fire(parser=parser)
    return parser


def parse_options(args: Sequence[str] | None = None) -> argparse.Namespace:
    """Deprecated in Locust: ``get_parser().parse_args(args)`` with the ``--csv`` check."""
    print("Warning: This function is deprecated and may be removed in a future version", file=sys.stderr)
    parser = get_parser()
    options = parser.parse_args(args=args)
    if options.stats_history_enabled and options.csv_prefix is None:
        parser.error("'--csv-full-history' requires '--csv'.")
    return options


def default_args_dict() -> dict[str, Any]:
    """Every built-in option's default, by dest (no config files, no locustfile options)."""
    parser = get_empty_argument_parser()
    setup_parser_arguments(parser)
    # Config files may set options of the locustfiles, which this parser does not know.
    parser._default_config_files = []
    return vars(parser.parse_args([]))


class UIExtraArgOptions(NamedTuple):
    default_value: str
    is_secret: bool
    is_required: bool
    help_text: str | None
    is_multiple: bool
    choices: Iterable[Any] | None = None


def ui_extra_args_dict(args: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """The options locustfiles added that the web UI shows, by dest, each with its current
    value (``default_value``), ``is_secret``, ``is_required``, ``help_text``, ``is_multiple``
    and ``choices``."""
    builtin = default_args_dict()
    parser = get_parser()
    values = vars(parser.parse_args(args))
    shown = parser.args_included_in_web_ui
    return {
        dest: UIExtraArgOptions(
            default_value=value,
            is_secret=dest in parser.secret_args_included_in_web_ui,
            is_required=dest in parser.required_args_included_in_web_ui,
            help_text=shown[dest].help,
            is_multiple=dest in parser.multiple_args_included_in_web_ui,
            choices=shown[dest].choices,
        )._asdict()
        for dest, value in values.items()
        if dest not in builtin and dest in shown
    }
