"""Repository-wide pytest setup: the CDK standard suite's hooks (scenarios from acceptance-test-config.yml)."""

pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]
