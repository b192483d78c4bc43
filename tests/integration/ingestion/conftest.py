"""Fixtures every ingestion test module uses: the HTTP client of the stack and a signed-up owner."""

from __future__ import annotations

import pytest
from segops.localstack import LocalStack

from tests.support.api import Account, Api


@pytest.fixture
def api(stack: LocalStack) -> Api:
    return Api(stack)


@pytest.fixture
def account(api: Api) -> Account:
    return api.signup()
