"""Repository-wide pytest setup: the CDK standard suite's hooks (scenarios from acceptance-test-config.yml), and the
test harness's environment (codefresh_sandbox.HARNESS_ENV: the sandbox listens on plain http on this machine)."""

import os

from codefresh_sandbox import HARNESS_ENV

os.environ.update(HARNESS_ENV)

pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]
