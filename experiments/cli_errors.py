"""One-line errors for a bad command line or config: the file (or option) that holds the mistake, and the fix.

jsonargparse reports a config mistake as a nested message: the union of types a key accepts, each
alternative's complaint, the value given, all after 50 lines of usage, and without the file. Its
complaints have a fixed wording ("Option 'x' is not accepted", "module 'm' has no attribute 'C'",
"Subcommand 'fit' does not accept option 'k'"...); :func:`explain` reads them, finds which ``--config``
file sets the key (:func:`locate`), and suggests the nearest valid key or class name with difflib, so a
typo costs one line: ``lab.yaml: data.init_args.batchsize is not an option of FolderSegmentation; did
you mean batch_size?``. A message it does not recognise is passed on whole (still without the usage).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ArgumentParser


class UsageError(ValueError):
    """A command line or config that cannot work; the message names the file or key and the fix."""


def config_files(args: Sequence[str]) -> list[Path]:
    """The ``--config``/``-c`` files of a command line, in the order given (the last one wins)."""
    files = []
    for i, arg in enumerate(args):
        flag, sep, value = arg.partition("=")
        if sep and flag in ("--config", "-c"):
            files.append(Path(value))
        elif i > 0 and args[i - 1] in ("--config", "-c"):
            files.append(Path(arg))
    return files


def _holds(tree: Any, path: Sequence[str], option: str | None) -> bool:
    """True when ``tree`` has ``path`` (dotted keys) and, under it at any depth, the key ``option``."""
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    if option is None:
        return True
    if isinstance(tree, dict):
        return option in tree or any(_holds(v, [], option) for v in tree.values())
    return isinstance(tree, list) and any(_holds(v, [], option) for v in tree)


def locate(key: str, files: Iterable[Path], option: str | None = None) -> str | None:
    """The last of ``files`` that sets ``key`` (with ``option`` somewhere below it), or None."""
    for path in reversed(list(files)):
        try:
            tree = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            continue
        if _holds(tree, key.split("."), option):
            return str(path)
    return None


def with_source(message: str, files: Sequence[Path]) -> str:
    """Prefix an error that starts with a config key (``data.init_args.classes[2] ...``) with its file."""
    found = re.match(r"((?:data|model|trainer)(?:\.\w+)+)", message)
    source = locate(found.group(1), files) if found else None
    return f"{source}: {message}" if source else message


def _suggest(word: str, options: Iterable[str]) -> str:
    options = sorted(set(options))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else f"valid: {', '.join(options)}"


def _import(class_path: str) -> Any:
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _class_options(class_path: str) -> list[str]:
    """The arguments jsonargparse accepts for a class (``**kwargs`` followed to the base class, as it does)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(_import(class_path))
    return list(parser.get_defaults().keys())


def _class_names(module: str) -> list[str]:
    """Dotted names of the classes a module offers (``datamodules.Super1``, ...)."""
    imported = importlib.import_module(module)
    names = getattr(imported, "__all__", None) or dir(imported)
    return [f"{module}.{n}" for n in names if inspect.isclass(getattr(imported, n, None))]


def _subclass_names(message: str) -> list[str]:
    """Class names a bare ``class_path`` may take: the known subclasses of the types the message lists."""
    names: set[str] = set()
    for base in re.findall(r"<class '([\w.]+)'>", message):
        try:
            todo = [_import(base)]
        except (ImportError, AttributeError, ValueError):
            continue
        while todo:
            cls = todo.pop()
            names.add(cls.__name__)
            todo += cls.__subclasses__()
    return sorted(names - {"NoneType"})


@dataclass(frozen=True)
class _Context:
    """What every rule may need: the whole message, its top key, the subcommand's keys, the config files."""

    message: str
    key: str
    valid_keys: list[str]
    files: Sequence[Path]

    def init_arg(self, class_path: str, option: str) -> str:
        """``data.init_args.batch_size``; in a list (``trainer.callbacks``) ``trainer.callbacks[ModelCheckpoint]...``."""
        in_list = re.search(r"Subtypes: \[[^\n]*\blist\[", self.message)
        name = f"[{class_path.rpartition('.')[2]}]" if in_list else ""
        return f"{self.key}{name}.init_args.{option}"

    def where(self, key: str, option: str | None = None, flag: str | None = None) -> str:
        """``<file>: `` for the config file holding the key, else ``--<flag> (command line): ``."""
        found = locate(key, self.files, option)
        return f"{found}: " if found else f"--{flag or key} (command line): "


def _unknown_option(m: re.Match, c: _Context) -> str:
    class_path, option = m.groups()
    arg = c.init_arg(class_path, option)
    return (
        f"{c.where(c.key, option, f'{c.key}.init_args.{option}')}{arg} is not an option of {class_path}; "
        + _suggest(option, _class_options(class_path))
    )


def _bad_value(m: re.Match, c: _Context) -> str:
    class_path, option, problem = m.groups()
    where = c.where(c.key, option, f"{c.key}.init_args.{option}")
    return f"{where}{c.init_arg(class_path, option)} ({class_path}): {_plain(problem.strip())}"


def _unknown_class(m: re.Match, c: _Context) -> str:
    class_path, module = m.groups()
    return f"{c.where(c.key, 'class_path')}{c.key}: class_path {class_path} does not exist; " + _suggest(
        class_path, _class_names(module)
    )


def _unknown_bare_class(m: re.Match, c: _Context) -> str:
    return (
        f"{c.where(c.key, 'class_path')}{c.key}: class_path {m.group(1)} is not a known class; "
        + _suggest(m.group(1), _subclass_names(c.message))
    )


def _unknown_key(m: re.Match, c: _Context) -> str:
    """A top-level key (``datta``) or a key below one (``trainer.max_epoch``) that the subcommand lacks."""
    bad = m.group(1)
    first, _, rest = bad.partition(".")
    known = {k.split(".")[0] for k in c.valid_keys}
    if first not in known:
        return f"{c.where(first)}unknown key {first}; " + _suggest(first, known)
    siblings = [k.removeprefix(first + ".") for k in c.valid_keys if k.startswith(first + ".")]
    return f"{c.where(bad)}unknown key {bad}; " + _suggest(rest, siblings)


def _unknown_flag(m: re.Match, c: _Context) -> str:
    return f"{m.group(1)} (command line): not an option; " + _suggest(
        m.group(1), {f"--{k}" for k in c.valid_keys}
    )


def _missing_section(m: re.Match, c: _Context) -> str:
    kind = m.group(1)
    example = (
        "models/unet.yaml, models/cs_unet.yaml, ..." if kind == "model" else "super1.yaml, my_lab.yaml, ..."
    )
    return f"no {kind} chosen: add a config with a `{kind}:` section (--config {example}) or --{kind} CLASS"


#: jsonargparse's wording -> the rule that words it in one line (the first match wins)
RULES: list[tuple[str, Callable[[re.Match, _Context], str]]] = [
    (r"File does not exist: '([^']+)'", lambda m, c: f"--config {m.group(1)}: file not found; give a path, or "
     "a name in experiments/configs/"),
    (r"Problems parsing config", lambda m, c: _yaml_error(c.files) or _plain(c.message)),
    (r"Problem with given class_path '([^']+)':\s+Option '([^']+)' is not accepted", _unknown_option),
    (r"Problem with given class_path '([^']+)':\s+module '([^']+)' has no attribute", _unknown_class),
    (r"Expected a dot import path string: (\S+)", _unknown_bare_class),
    (r"Problem with given class_path '([^']+)':\s+Parser key \"([^\"]+)\":\s+(.+)", _bad_value),
    (r"does not accept option '([^']+)'", _unknown_key),
    (r"unrecognized arguments: (--[\w.]+)", _unknown_flag),
    (r"arguments are required: \w+\.(model|data)\b", _missing_section),
]  # fmt: skip


def explain(message: str, valid_keys: Iterable[str], files: Sequence[Path]) -> str:
    """One line for jsonargparse's ``message``; ``valid_keys``: the subcommand's keys (``trainer.max_epochs``...)."""
    top = re.search(r'Parser key "([^"]+)"', message)
    context = _Context(message, top.group(1) if top else "", list(valid_keys), files)
    for pattern, rule in RULES:
        if found := re.search(pattern, message):
            try:
                return rule(found, context)
            except Exception:  # e.g. a class that cannot be imported: never hide the error being explained
                return _plain(message)
    return _plain(message)


def _plain(message: str) -> str:
    """A jsonargparse message with ``<class 'int'>`` written ``int``."""
    return re.sub(r"<class '([\w.]+)'>", r"\1", message)


def _yaml_error(files: Sequence[Path]) -> str | None:
    """The first config file that is not valid YAML, with the line and column of the problem."""
    for path in files:
        try:
            yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(err, "problem", None) or "invalid YAML"
            return f"{path}:{at}: {problem}; fix the YAML syntax (indentation, brackets, quotes)"
        except OSError:
            continue
    return None
