"""The import contracts of .importlinter hold: layers point down, services and admin queue jobs by name."""

from __future__ import annotations

from pathlib import Path

from importlinter.application import use_cases
from importlinter.configuration import configure

CONFIG = Path(__file__).resolve().parent.parent / ".importlinter"


def test_every_import_contract_is_kept():
    # Given the project's contracts (a broken one is printed above the failure, with its import chain)
    configure()

    # When import-linter checks the project's imports
    kept = use_cases.lint_imports(config_filename=str(CONFIG), cache_dir=None, no_logo=True)

    # Then none is broken
    assert kept, "an import contract of .importlinter is broken: see the report printed above"


def test_the_contracts_cover_the_layers_and_the_named_jobs():
    options = use_cases.read_user_options(config_filename=str(CONFIG))

    contracts = {contract["id"]: contract for contract in options.contracts_options}

    assert contracts["layers"]["layers"] == ["config", "reports", "orders", "mail", "workers"]
    untied = set(contracts["services-untied-from-actors"]["source_modules"])
    assert {"mail.services", "orders.services", "reports.services"} <= untied
    assert {"mail.admin", "orders.admin", "reports.admin"} <= set(contracts["admin-calls-services"]["source_modules"])
