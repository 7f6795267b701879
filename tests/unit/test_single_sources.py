"""Things spelled once (issue 9, defect 5): task names, the settings, the database URL.

Reference: the source tree itself, read with `ast` (no import of the modules checked).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from pydantic_settings import BaseSettings

from auditor.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("auditor", "workers", "reports")


@cache  # parsed once per run: the tests only read the trees
def sources() -> dict[Path, ast.Module]:
    return {
        path: ast.parse(path.read_text(), filename=str(path))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    }


def string_literals(tree: ast.Module) -> list[str]:
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_each_celery_task_name_is_spelled_once() -> None:
    names = ("auditor.start", "auditor.advance", "auditor.sweep", "auditor.run_calls")
    literals = {path: string_literals(tree) for path, tree in sources().items()}
    for name in names:
        places = [
            str(path.relative_to(ROOT))
            for path, found in literals.items()
            for literal in found
            if literal == name
        ]
        assert len(places) == 1, f"{name!r} spelled in {places}"


def settings_classes() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path, tree in sources().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                (isinstance(base, ast.Name) and base.id.endswith("Settings"))
                or (isinstance(base, ast.Attribute) and base.attr.endswith("Settings"))
                for base in node.bases
            ):
                found[node.name] = path
    return found


def test_settings_classes_live_in_one_module_and_are_built_there_only() -> None:
    home = ROOT / "auditor" / "settings.py"
    classes = settings_classes()
    elsewhere = {name: str(p.relative_to(ROOT)) for name, p in classes.items() if p != home}
    assert not elsewhere, f"settings classes outside auditor/settings.py: {elsewhere}"
    built = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}()"
        for path, tree in sources().items()
        if path != home
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in classes
    ]
    assert not built, f"settings read from the environment outside auditor/settings.py: {built}"


def environment_names(model: type[BaseSettings]) -> list[str]:
    prefix = str(model.model_config.get("env_prefix", ""))
    names = []
    for field_name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            names += environment_names(annotation)
        else:
            names.append(f"{prefix}{field_name}".upper())
    return names


def test_every_setting_is_declared_once_in_one_settings_tree() -> None:
    names = environment_names(Settings)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates
    for documented in (
        "AUDITOR_DATABASE_URL",
        "AUDITOR_BROKER_URL",
        "AUDITOR_BATCH_SIZE",
        "AUDITOR_SIGNING_KEY_PATH",
        "AUDITOR_WEBHOOK_MAX_ATTEMPTS",
        "AUDITOR_MAX_STREAM_BYTES",
        "AUDITOR_ALLOWED_API_BASES",
    ):
        assert documented in names


def test_no_module_other_than_settings_declares_a_database_url() -> None:
    declared = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in sources().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == "database_url"
    ]
    assert declared == []


def assigned_names(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return names


def test_the_provenance_package_list_is_defined_once() -> None:
    places = [
        str(path.relative_to(ROOT))
        for path, tree in sources().items()
        if "SOFTWARE_PACKAGES" in assigned_names(tree)
    ]
    assert places == ["auditor/schemas/result.py"]


def test_every_table_is_declared_in_the_tables_module() -> None:
    places = {
        str(path.relative_to(ROOT))
        for path, tree in sources().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(
            isinstance(statement, ast.Assign | ast.AnnAssign)
            and "__tablename__" in ast.unparse(statement).split("=")[0]
            for statement in node.body
        )
    }
    assert places == {"auditor/storage/tables.py"}
